/**
 * Sessions of a dedicated role under guards: a guard holds for every session of the database
 * (the test cluster is shared by every suite), so suites exempt the superuser and registry admins
 * and make their refused reads as a role of their own, once the proxy applies the guard.
 */
import { beforeAll, describe, expect } from 'vitest';
import type pg from 'pg';
import { useTarget, type Target } from './proxy-matrix.js';
import { eventually } from './eventually.js';
import { ownDatabases } from './history.js';

/** Reads until the state shows, and fails if it never does. */
export async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const v = await eventually(read, ok);
  expect(ok(v), `last seen: ${JSON.stringify(v)}`).toBe(true);
  return v;
}

/** A new session of `role` once `sql` is refused in it (guards apply from the registry's next read on). */
export async function refusingSession(t: Target, role: string, sql: string): Promise<pg.Client> {
  let c: pg.Client | null = null;
  await until(async () => {
    await c?.end();
    c = await t.pg({ user: role, password: 'pw' });
    return c.query(sql).then(() => 'served', (e: pg.DatabaseError) => e.code);
  }, (r) => r === '42501');
  return c as unknown as pg.Client;
}

/** Guards exempt these roles in suites that share the cluster: the superuser and registry admins other suites log in as. */
export const SHARED_EXEMPT = ['postgres', 'provenance_admin'];

let statements = 0;

/** Runs a text with the simple protocol, and with the extended one (a named statement: Parse/Bind/Execute). */
export async function bothProtocols(c: pg.Client, sql: string): Promise<(pg.QueryResult | pg.DatabaseError)[]> {
  const simple = await c.query(sql).catch((e: pg.DatabaseError) => e);
  const extended = await c.query({ name: `both_${statements++}`, text: sql }).catch((e: pg.DatabaseError) => e);
  return [simple, extended];
}

function rows(r: pg.QueryResult | pg.DatabaseError): unknown {
  return r instanceof Error ? r.message : r.rows;
}

/** `sql` is refused (42501) in both protocols, with every part in its message (or its hint), and the session goes on. */
export async function expectRefused(c: pg.Client, sql: string, ...parts: (string | { readonly hint: string })[]): Promise<void> {
  for (const [i, r] of (await bothProtocols(c, sql)).entries()) {
    const protocol = i === 0 ? 'simple' : 'extended';
    expect(r, `${protocol}: ${sql}`).toBeInstanceOf(Error);
    expect((r as pg.DatabaseError).code, `${protocol}: ${sql}: ${(r as Error).message}`).toBe('42501');
    for (const p of parts) {
      if (typeof p === 'string') expect((r as Error).message, `${protocol}: ${sql}`).toContain(p);
      else expect((r as pg.DatabaseError).hint, `${protocol}: ${sql}`).toContain(p.hint);
    }
  }
  expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
}

/** `sql` is served these rows in both protocols. */
export async function expectServed(c: pg.Client, sql: string, want: unknown): Promise<void> {
  for (const r of await bothProtocols(c, sql)) expect(rows(r), sql).toEqual(want);
}

/**
 * `describe` once per upstream with a registry no other suite shares: on PostgreSQL a database of
 * its own, so that guards other suites set meanwhile do not rule over its sessions from their start.
 */
export function eachOwnRegistry(name: string, body: (t: () => Target) => void): void {
  for (const kind of ['embedded', 'postgres'] as const) {
    describe(`${name} [${kind}]`, () => {
      const own = kind === 'postgres' ? ownDatabases() : null;
      let database = 'postgres';
      beforeAll(async () => {
        if (own !== null) database = await own.create('guards');
      });
      const target = useTarget(kind, [], () => (own === null ? {} : { upstream: own.upstream(database) }));
      body(() => ({
        kind, database, proxy: target.proxy, port: target.port, user: target.user, password: target.password, cluster: target.cluster,
        url: () => target.url().replace(/\/postgres$/, `/${database}`),
        pg: (opts = {}) => target.pg({ database, ...opts }),
        sql: (opts = {}) => target.sql({ database, ...opts }),
        psql: (args, input) => target.psql(['-d', database, ...args], input),
      }));
    });
  }
}
