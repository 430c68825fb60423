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

export async function rolesAt(
  store: SqlRunner | null, user: string, moment: Moment, current: (user: string) => Promise<readonly string[]>,
): Promise<readonly string[]> {
  if (store !== null) {
    const { rows } = await store.query(RECORDED_ROLES_SQL, [user, moment.at]);
    const roles = rows[0]?.['roles'];
    if (Array.isArray(roles)) return roles.map(String);
  }
  return current(user).catch(() => []);
}

