/**
 * What a policy's versions are made in and weighed by: the session the making is recorded under
 * (the proxy's own, not a client's), and a table's stored versions as the budget sees them.
 */
import type { SessionInfo } from '../hooks.js';
import type { SqlRunner } from '../registry/migrate.js';
import type { Stored } from './decisions.js';

/** Names the sessions that make versions for a policy, in the records of their replays. */
export const POLICY_APPLICATION = 'provenance-proxy materialize policy';

let sessions = 0;

/** A session of the proxy's own, with `user`'s name, in which a version is made. */
export function policySession(user: string, database: string): SessionInfo {
  return {
    id: -++sessions,
    user,
    database,
    applicationName: POLICY_APPLICATION,
    clientAddress: 'local',
    clientPort: 0,
    serverParams: new Map(),
    startupParams: new Map([['user', user], ['database', database]]),
    backendPid: 0,
    pluginState: new Map(),
    statementPlugins: new Set(),
    statement: null,
  };
}

const STORED_SQL = `
SELECT m.id::pg_catalog.text AS id, coalesce(pg_catalog.pg_total_relation_size(pg_catalog.to_regclass(m.storage)), 0)::pg_catalog.text AS bytes,
       m.reads_served::pg_catalog.text AS reads, (pg_catalog.date_part('epoch', m.last_read) * 1000) AS last_read,
       (pg_catalog.date_part('epoch', m.created_at) * 1000) AS created_at, (pg_catalog.date_part('epoch', m.as_of) * 1000) AS as_of, m.reason
  FROM provenance.materialization m
 WHERE m.target_oid OPERATOR(pg_catalog.=) $1 AND m.complete`;

/** A table's complete materialised versions. */
export async function storedVersions(store: SqlRunner, oid: number): Promise<Stored[]> {
  return (await store.query(STORED_SQL, [oid])).rows.map((r) => ({
    id: Number(r['id']),
    bytes: Number(r['bytes']),
    readsServed: Number(r['reads']),
    lastRead: r['last_read'] === null ? null : Number(r['last_read']),
    createdAt: Number(r['created_at']),
    asOf: Number(r['as_of']),
    reason: String(r['reason']),
  }));
}
