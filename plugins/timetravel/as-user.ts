/**
 * The roles of the user a replay runs as: those recorded with that user's latest execution at or
 * before the moment (what the transforms saw then), or, when none was recorded by then, the
 * user's current membership.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { Moment } from './moment.js';

const RECORDED_ROLES_SQL = `
SELECT e.roles FROM provenance.execution e
 WHERE e.user_name OPERATOR(pg_catalog.=) $1 AND e.executed_at OPERATOR(pg_catalog.<=) $2::pg_catalog.timestamptz
 ORDER BY e.executed_at DESC LIMIT 1`;

// The user and every role it belongs to, directly or through others.
const MEMBERSHIP_SQL = `
WITH RECURSIVE m(id) AS (
  SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1
  UNION SELECT a.roleid FROM pg_catalog.pg_auth_members a JOIN m ON a.member OPERATOR(pg_catalog.=) m.id)
SELECT b.rolname::pg_catalog.text AS role FROM m JOIN pg_catalog.pg_roles b ON b.oid OPERATOR(pg_catalog.=) m.id ORDER BY 1`;

export async function rolesAt(
  store: SqlRunner | null, user: string, moment: Moment, current: (user: string) => Promise<readonly string[]>,
): Promise<readonly string[]> {
  if (store !== null) {
    const { rows } = await store.query(RECORDED_ROLES_SQL, [user, moment.at]);
    const roles = rows[0]?.['roles'];
    if (Array.isArray(roles)) return roles.map(String);
    // Read here, not from the proxy's memberships, which the embedded database reads at logins.
    return (await store.query(MEMBERSHIP_SQL, [user])).rows.map((r) => String(r['role']));
  }
  return current(user).catch(() => []);
}

