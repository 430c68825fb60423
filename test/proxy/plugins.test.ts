import { expect, it } from 'vitest';
import pg from 'pg';
import { PgError } from '../../proxy/errors.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import type { Plugin, ResultInfo } from '../../plugins/hooks.js';
import { serialize } from 'pg-protocol';
import { eachUpstream } from '../support/proxy-matrix.js';
import { RawClient, sqlstate } from '../support/raw-client.js';

/** Plugins that exercise every kind of answer the seam allows. */
function testPlugins(): Plugin[] {
  const shoutColumn = (r: ResultInfo): number => r.fields.findIndex((f) => f.name === 'shout');
  const guard: Plugin = {
    name: 'guard',
    statement(_s, st) {
      const text = st.kind === 'bind' ? (st.text ?? '') : st.text;
      if (text.includes('forbidden_word')) return { action: 'deny', error: new PgError('42501', 'statement refused by policy') };
      if (st.kind === 'query' && /^\s*show\s+proxy\.test/i.test(text)) {
        return { action: 'answer', result: { columns: ['proxy.test'], rows: [['ok']], tag: 'SHOW' } };
      }
      if (text.includes("'rewrite_me'")) return { action: 'rewrite', text: text.replaceAll("'rewrite_me'", "'was rewritten'") };
      if (text.includes('plugin_boom')) throw new Error('kaboom');
      return { action: 'pass' };
    },
  };
  const upper: Plugin = {
    name: 'upper',
    rowDescription(_s, r) {
      if (r.fields.some((f) => f.name === 'explode')) throw new Error('cannot describe');
      return shoutColumn(r) >= 0 ? { action: 'watch' } : { action: 'pass' };
    },
    dataRows(_s, r, rows) {
      const i = shoutColumn(r);
      const values = rows.values();
      if (values.some((row) => row[i]?.toString() === 'fail-here')) throw new PgError('38000', 'transform failed on a row');
      return { action: 'rewrite', rows: RowBatch.fromValues(values.map((row) => row.map((v, j) => (j === i && v ? Buffer.from(v.toString().toUpperCase()) : v)))) };
    },
  };
  const ended: number[] = [];
  const lifecycle: Plugin = {
    name: 'lifecycle',
    sessionStart(s) {
      s.pluginState.set('lifecycle', 'started');
    },
    sessionEnd(s) {
      ended.push(s.id);
    },
    commandComplete(s, _r, tag) {
      return tag === 'SELECT 3' && s.pluginState.get('lifecycle') === 'started' ? { action: 'rewrite', tag: 'SELECT 3' } : { action: 'pass' };
    },
  };
  // The first batch of each result is the slowest: the ones after it are handed over and finish
  // while it is still at work. late_fail fails its first batch, late_fail_second its second.
  const batchNumber = new WeakMap<ResultInfo, number>();
  const lateKind = (r: ResultInfo): string | undefined => r.fields.map((f) => f.name).find((n) => n.startsWith('late'));
  const late: Plugin = {
    name: 'late',
    rowDescription(_s, r) {
      return lateKind(r) ? { action: 'watch' } : { action: 'pass' };
    },
    async dataRows(_s, r, rows) {
      const n = batchNumber.get(r) ?? 0;
      batchNumber.set(r, n + 1);
      overlap.active++;
      overlap.peak = Math.max(overlap.peak, overlap.active);
      try {
        await new Promise((resolve) => setTimeout(resolve, n === 0 ? 100 : 0));
        const kind = lateKind(r);
        if ((kind === 'late_fail' && n === 0) || (kind === 'late_fail_second' && n === 1)) throw new PgError('38000', `batch ${n} failed`);
        return { action: 'rewrite', rows: RowBatch.fromValues(rows.values().map((row) => [Buffer.from(`${row[0]!.toString()}!`)])) };
      } finally {
        overlap.active--;
      }
    },
  };
  // Watches the same results after late, which finishes a result's first batch last: it must
  // still get every batch in order. It notes the first value of each.
  const after: Plugin = {
    name: 'after-late',
    rowDescription(_s, r) {
      return lateKind(r) ? { action: 'watch' } : { action: 'pass' };
    },
    dataRows(_s, _r, rows) {
      overlap.firsts.push(rows.field(0, 0)!.toString());
      return { action: 'pass' };
    },
  };
  return [guard, upper, lifecycle, late, after];
}

/** How many batches the late plugin had at work at once; what the plugin after it saw first in each batch. */
const overlap = { active: 0, peak: 0, firsts: [] as string[] };

eachUpstream('plugin seam', (t) => {
  it('passes, rewrites, denies and answers statements locally (simple protocol)', async () => {
    const c = await t().pg();
    try {
      expect((await c.query('SELECT 1 AS plain')).rows).toEqual([{ plain: 1 }]);
      expect((await c.query("SELECT 'rewrite_me' AS v")).rows).toEqual([{ v: 'was rewritten' }]);
      await expect(c.query("SELECT 'forbidden_word'")).rejects.toMatchObject({ code: '42501', message: 'statement refused by policy' });
      expect((await c.query('SHOW proxy.test')).rows).toEqual([{ 'proxy.test': 'ok' }]);
      expect((await c.query('SELECT 2 AS still_usable')).rows).toEqual([{ still_usable: 2 }]);
    } finally {
      await c.end();
    }
  });

  it('denies and rewrites in the extended protocol, in pipeline order', async () => {
    const sql = t().sql();
    try {
      const results = await Promise.allSettled([
        sql`SELECT ${1}::int AS a`,
        sql`SELECT ${'forbidden_word'}::text AS b, 'forbidden_word' AS c`,
        sql`SELECT ${3}::int AS d, 'rewrite_me' AS e`,
      ]);
      expect(results[0]).toMatchObject({ status: 'fulfilled', value: [{ a: 1 }] });
      expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: '42501' } });
      expect(results[2]).toMatchObject({ status: 'fulfilled', value: [{ d: 3, e: 'was rewritten' }] });
    } finally {
      await sql.end();
    }
  });

  it('places a denial inside an extended unit after the answers to what came before it', async () => {
    const c = await RawClient.connect(t().port, t().kind === 'postgres' ? 'trustuser' : 'postgres');
    try {
      c.write(Buffer.concat([
        serialize.parse({ text: 'SELECT 1 AS first' }), serialize.bind({}), serialize.execute({}),
        serialize.parse({ text: "SELECT 'forbidden_word'" }), serialize.bind({}), serialize.execute({}),
        serialize.sync(),
      ]));
      const msgs = await c.untilReady();
      expect(msgs.map((m) => m.code).join('')).toBe('12DCEZ');
      expect(sqlstate(msgs[4]!.body)).toBe('42501');
      // Flush after a denial: the error comes at once, and the Sync that follows closes the unit.
      c.write(Buffer.concat([serialize.parse({ text: "SELECT 'forbidden_word'" }), serialize.flush()]));
      const err = await c.next();
      expect(err.code).toBe('E');
      c.write(Buffer.concat([serialize.bind({}), serialize.execute({}), serialize.sync()]));
      expect((await c.untilReady()).map((m) => m.code).join('')).toBe('Z');
      c.write(serialize.query('SELECT 5'));
      expect((await c.untilReady()).map((m) => m.code).join('')).toBe('TDCZ');
    } finally {
      c.end();
    }
  });

  it('rewrites rows of watched results, in text and binary formats', async () => {
    const c = await t().pg();
    const b = await t().pg({ binary: true } as Partial<pg.ClientConfig>);
    try {
      const r = await c.query("SELECT 'quiet' AS shout, 'as is' AS other FROM generate_series(1, 3)");
      expect(r.rows).toEqual(Array.from({ length: 3 }, () => ({ shout: 'QUIET', other: 'as is' })));
      expect(r.rowCount).toBe(3);
      const rb = await b.query('SELECT $1::text AS shout', ['binary']);
      expect(rb.rows).toEqual([{ shout: 'BINARY' }]);
      const big = await c.query("SELECT 'x' || i AS shout FROM generate_series(1, 20000) i");
      expect(big.rows).toHaveLength(20000);
      expect(big.rows[19999]).toEqual({ shout: 'X20000' });
    } finally {
      await c.end();
      await b.end();
    }
  });

  it('works on batches of a result at the same time, and sends their rows in order', async () => {
    const c = await t().pg();
    try {
      overlap.peak = 0;
      overlap.firsts = [];
      const r = await c.query("SELECT 'v' || i AS late FROM generate_series(1, 50000) i");
      expect(r.rows.map((x: { late: string }) => x.late)).toEqual(Array.from({ length: 50000 }, (_, i) => `v${i + 1}!`));
      expect(overlap.peak).toBeGreaterThanOrEqual(2);
      const firsts = overlap.firsts.map((v) => Number(v.slice(1, -1)));
      expect(firsts[0]).toBe(1);
      expect(firsts.length).toBeGreaterThanOrEqual(2);
      expect(firsts).toEqual([...firsts].sort((a, b) => a - b));
      // The first batch fails after later ones finished: none of their rows reach the client.
      await expect(c.query("SELECT 'v' || i AS late_fail FROM generate_series(1, 50000) i")).rejects.toMatchObject({ code: '38000', message: 'batch 0 failed' });
      expect((await c.query('SELECT 1 AS after')).rows).toEqual([{ after: 1 }]);
    } finally {
      await c.end();
    }
    // The second batch fails while the first is at work: the first's rows, then the error, then nothing.
    const raw = await RawClient.connect(t().port, t().kind === 'postgres' ? 'trustuser' : 'postgres');
    try {
      raw.write(serialize.query("SELECT 'v' || i AS late_fail_second FROM generate_series(1, 50000) i"));
      const msgs = await raw.untilReady();
      const codes = msgs.map((m) => m.code).join('');
      expect(codes).toMatch(/^TD+EZ$/);
      expect(sqlstate(msgs[codes.indexOf('E')]!.body)).toBe('38000');
      const values = msgs.filter((m) => m.code === 'D').map((m) => m.body.subarray(6).toString());
      expect(values).toEqual(values.map((_, i) => `v${i + 1}!`));
      raw.write(serialize.query('SELECT 5'));
      expect((await raw.untilReady()).map((m) => m.code).join('')).toBe('TDCZ');
    } finally {
      raw.end();
    }
  });

  it('turns a throwing plugin into an ErrorResponse, never a partial result, and keeps the session', async () => {
    const c = await t().pg();
    try {
      await expect(c.query("SELECT 'plugin_boom'")).rejects.toMatchObject({ code: 'XX000', message: expect.stringMatching(/plugin "guard" failed.*kaboom/) });
      await expect(c.query('SELECT 1 AS explode')).rejects.toMatchObject({ code: 'XX000', message: expect.stringMatching(/plugin "upper"/) });
      await expect(c.query("SELECT v AS shout FROM (VALUES ('a'), ('fail-here'), ('c')) t(v)")).rejects.toMatchObject({ code: '38000' });
      expect((await c.query('SELECT 9 AS after')).rows).toEqual([{ after: 9 }]);
      const sql = t().sql();
      await expect(sql`SELECT 'plugin_boom'::text AS x, ${1}::int AS y`).rejects.toMatchObject({ code: 'XX000' });
      expect(await sql`SELECT 10 AS after`).toEqual([{ after: 10 }]);
      await sql.end();
    } finally {
      await c.end();
    }
  });
}, testPlugins);
