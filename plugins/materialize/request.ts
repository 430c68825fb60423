/**
 * A client's call of `provenance.materialize(target, as_of, as_user)` made into a request: the
 * table its name means, the moment (read as a SET of provenance.as_of reads it; now when omitted)
 * and the context (as_user, which takes provenance_admin unless it is the caller, or the caller).
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { SessionInfo } from '../hooks.js';
import type { SqlRunner } from '../registry/migrate.js';
import type { AsOfMoment, Services } from '../services.js';
import type { CallArg, MaterializeCall } from './call.js';

const ADMIN_ROLE = 'provenance_admin';

// The name as regclass input reads it; an unqualified one in any schema but the system's.
const TABLE_SQL = `
WITH p AS (SELECT pg_catalog.parse_ident($1) AS parts)
SELECT c.oid::pg_catalog.int8::pg_catalog.text AS oid, n.nspname::pg_catalog.text AS schema
  FROM p, pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relname OPERATOR(pg_catalog.=) p.parts[pg_catalog.array_length(p.parts, 1)]
   AND CASE WHEN pg_catalog.array_length(p.parts, 1) OPERATOR(pg_catalog.=) 2 THEN n.nspname OPERATOR(pg_catalog.=) p.parts[1]
            ELSE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relpersistence OPERATOR(pg_catalog.<>) 't' END`;

export interface ResolvedRequest {
  readonly oid: number;
  readonly moment: AsOfMoment;
}

function valueOf(arg: CallArg | null, params: readonly (Buffer | null)[] | null): string | null {
  if (arg === null) return null;
  if (arg.kind === 'const') return arg.value;
  if (params === null) throw new PgError('42P02', `there is no parameter $${arg.n}`);
  const v = params[arg.n - 1];
  if (v === undefined) throw new PgError('42P02', `there is no parameter $${arg.n}`);
  return v === null ? null : v.toString('utf8');
}

async function tableOid(store: SqlRunner, name: string): Promise<number> {
  let rows: Record<string, unknown>[];
  try {
    rows = (await store.query(TABLE_SQL, [name])).rows;
  } catch {
    throw new PgError('42602', `invalid name syntax: "${name}"`);
  }
  if (rows.length === 0) throw new PgError('42P01', `relation "${name}" does not exist`);
  if (rows.length > 1) {
    throw new PgError(SqlState.FeatureNotSupported, `"${name}" names tables in several schemas: the proxy cannot tell which one the search_path means`, 'ERROR', {
      hint: 'Qualify the table with its schema.',
    });
  }
  return Number(rows[0]!['oid']);
}

/** The request a call makes, checked: who may ask for whose context. Parameters (text format) for a call prepared with them. */
export async function resolveCall(
  services: Services, store: SqlRunner, s: SessionInfo, call: MaterializeCall, params: readonly (Buffer | null)[] | null,
): Promise<ResolvedRequest> {
  const target = valueOf(call.target, params);
  if (target === null) throw new PgError('22004', 'provenance.materialize() needs a table');
  const asOf = valueOf(call.asOf, params);
  const asUser = valueOf(call.asUser, params) ?? s.user;
  if (asUser !== s.user) {
    const mine = await services.roles(s.user);
    if (!mine.includes(ADMIN_ROLE) && s.serverParams.get('is_superuser') !== 'on') {
      throw new PgError(SqlState.InsufficientPrivilege, 'permission denied to materialise as another user', 'ERROR', {
        detail: `Only members of ${ADMIN_ROLE} may materialise what another user was served.`,
      });
    }
    const exists = (await store.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1', [asUser])).rows.length > 0;
    if (!exists) throw new PgError('42704', `role "${asUser}" does not exist`);
  }
  const oid = await tableOid(store, target);
  const timetravel = services.timetravel;
  if (timetravel?.momentOf === undefined) throw new PgError(SqlState.FeatureNotSupported, 'this proxy does not travel in time: nothing can be materialised');
  const moment = await timetravel.momentOf(s, asOf ?? 'now', asUser);
  return { oid, moment };
}
