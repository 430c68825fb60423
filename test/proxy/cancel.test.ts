import { describe, expect, it } from 'vitest';
import { eachUpstream, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

describe('cancel and terminate [postgres]', () => {
  const t = useTarget('postgres');

  it('routes a CancelRequest to the backend running the statement', async () => {
    const sql = t.sql();
    const other = t.sql();
    try {
      // postgres.js sends a query when it is awaited or executed.
      const q = sql`SELECT pg_sleep(30)`.execute();
      const started = Date.now();
      // Cancelled once the server runs it (a loaded machine may take longer than any fixed delay to get there).
      await eventually(() => other`SELECT count(*)::int AS n FROM pg_catalog.pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'`,
        (r) => r[0]?.['n'] === 1, 20_000);
      void q.cancel();
      await expect(q).rejects.toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(20_000);
      // Only that backend was cancelled: another session's work is untouched, and the cancelled one goes on.
      const [a] = await other`SELECT 1 AS one`;
      expect(a).toEqual({ one: 1 });
      const [b] = await sql`SELECT 2 AS two`;
      expect(b).toEqual({ two: 2 });
    } finally {
      await sql.end();
      await other.end();
    }
  });

  it('agrees with pg_terminate_backend on the process id', async () => {
    const victim = await t.pg();
    const killer = await t.pg();
    try {
      const pid = (victim as unknown as { processID: number }).processID;
      const errored = new Promise<Error>((resolve) => victim.on('error', resolve));
      const r = await killer.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
      expect(r.rows[0]!.ok).toBe(true);
      const err = (await errored) as Error & { code?: string };
      expect(err.code ?? err.message).toMatch(/57P01|terminat/);
      const again = await killer.query('SELECT 1 AS n');
      expect(again.rows[0]).toEqual({ n: 1 });
    } finally {
      await victim.end().catch(() => undefined);
      await killer.end();
    }
  });
});

eachUpstream('cancel while queued', (t) => {
  it('cancels a statement that waits behind another session\'s transaction (embedded) or on a lock (postgres)', async () => {
    const holder = await t().pg();
    // fetch_types off: postgres.js cannot cancel a query it still holds back behind its type lookup.
    const waiter = t().sql({ fetch_types: false });
    try {
      await holder.query('CREATE TABLE IF NOT EXISTS cancel_lock (a int)');
      // Connected before the wait starts, so the statement is sent at once.
      await waiter`SELECT 1`;
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE cancel_lock IN ACCESS EXCLUSIVE MODE');
      const q = waiter`SELECT count(*) FROM cancel_lock`.execute();
      if (t().kind === 'postgres') {
        await eventually(() => holder.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation
          WHERE c.relname = 'cancel_lock' AND NOT l.granted`), (r) => r.rows[0]?.n === 1, 20_000);
      } else {
        await new Promise((r) => setTimeout(r, 300));
      }
      void q.cancel();
      await expect(q).rejects.toMatchObject({ code: '57014' });
      await holder.query('COMMIT');
      const [row] = await waiter`SELECT count(*)::int AS n FROM cancel_lock`;
      expect(row).toEqual({ n: 0 });
    } finally {
      await holder.end();
      await waiter.end();
    }
  });
});
