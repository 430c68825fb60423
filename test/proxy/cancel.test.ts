import { describe, expect, it } from 'vitest';
import { eachUpstream, useTarget } from '../support/proxy-matrix.js';

describe('cancel and terminate [postgres]', () => {
  const t = useTarget('postgres');

  it('routes a CancelRequest to the backend running the statement', async () => {
    const sql = t.sql();
    const other = t.sql();
    try {
      const q = sql`SELECT pg_sleep(30)`;
      const started = Date.now();
      setTimeout(() => q.cancel(), 300);
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
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE cancel_lock IN ACCESS EXCLUSIVE MODE');
      const q = waiter`SELECT count(*) FROM cancel_lock`;
      setTimeout(() => q.cancel(), 300);
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
