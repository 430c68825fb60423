/**
 * A plugin answers statements itself, in both protocols, with a command tag or a result set, in
 * the place of the server's answer within a pipeline; rewrites of Parse and Bind reach the
 * upstream; statement hooks run only for the sessions and statements that need them; plugins run
 * in their declared order.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { eachUpstream } from '../support/proxy-matrix.js';
import { rawClient, runUnit as run } from '../support/raw-unit.js';
import { demoPlugin, type DemoPlugin } from '../support/demo-plugin.js';
import { PluginHost } from '../../plugins/host.js';
import type { Plugin } from '../../plugins/hooks.js';

const { parse, bind, describe, execute, sync, flush, query } = serialize;

/** A statement pg sends with Parse/Bind/Execute although it has no parameters. */
function extended(text: string, name?: string): pg.QueryConfig {
  return { text, name, values: [], queryMode: 'extended' } as pg.QueryConfig;
}

/** Rewrites a Parse's text and a Bind's parameters, when the statement asks for it in a comment. */
const rewriter: Plugin = {
  name: 'rewriter',
  statementWords: ['rewrite_'],
  statement(_s, st) {
    if (st.kind === 'parse' && st.text.includes('/* rewrite_text */')) return { action: 'rewrite', text: st.text.replace("'before'", "'after'") };
    if (st.kind === 'bind' && st.text?.includes('/* rewrite_params */')) return { action: 'rewrite', params: [Buffer.from('42')], paramFormats: [0] };
    if (st.kind === 'bind' && st.text?.includes('/* rewrite_answer */')) return { action: 'answer', result: { columns: ['answered'], rows: [['at bind']], tag: 'SELECT 1' } };
    return { action: 'pass' };
  },
};

/** One plugin object serves both upstreams' proxies: each test reads what it was asked. */
const demo: DemoPlugin = demoPlugin();
/** Client statements as they ended: protocol, text, SQLSTATE. */
const ended: string[] = [];
const statements: Plugin = {
  name: 'statements',
  statementEnd: (_s, t) => void ended.push(`${t.protocol} ${t.text} ${t.errorCode ?? 'ok'}`),
};

eachUpstream('statements answered by a plugin', (t) => {
  it('answers SET, SHOW and RESET of its setting with pg, in the simple and the extended protocol', async () => {
    const c = await t().pg();
    try {
      const set = await c.query("SET demo.x = 'simple'");
      expect(set.command).toBe('SET');
      expect(set.fields).toEqual([]);
      expect((await c.query('SHOW demo.x')).rows).toEqual([{ 'demo.x': 'simple' }]);
      const setExt = await c.query(extended("SET demo.x = 'extended'"));
      expect(setExt.command).toBe('SET');
      expect((await c.query(extended('SHOW demo.x'))).rows).toEqual([{ 'demo.x': 'extended' }]);
      expect((await c.query(extended('SHOW demo.x', 'show_demo'))).rows).toEqual([{ 'demo.x': 'extended' }]);
      expect((await c.query(extended('SHOW demo.x', 'show_demo'))).rows).toEqual([{ 'demo.x': 'extended' }]);
      expect((await c.query(extended('RESET demo.x'))).command).toBe('RESET');
      expect((await c.query('SHOW demo.x')).rows).toEqual([{ 'demo.x': null }]);
      await expect(c.query("SET demo.x = 'forbidden'")).rejects.toMatchObject({ code: '22023' });
      await expect(c.query(extended("SET demo.x = 'forbidden'"))).rejects.toMatchObject({ code: '22023' });
      expect((await c.query('SELECT 1 AS still')).rows).toEqual([{ still: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('answers them with postgres.js and psql', async () => {
    const sql = t().sql();
    try {
      await sql`SET demo.x = 'from postgres.js'`;
      expect(await sql`SHOW demo.x`).toEqual([{ 'demo.x': 'from postgres.js' }]);
      const [a, b] = await Promise.all([sql`SELECT ${1}::int AS a`, sql`SHOW demo.x`, sql`SELECT 2 AS c`]);
      expect(a).toEqual([{ a: 1 }]);
      expect(b).toEqual([{ 'demo.x': 'from postgres.js' }]);
      await sql`RESET demo.x`;
      expect(await sql`SHOW demo.x`).toEqual([{ 'demo.x': null }]);
      expect(await sql`SHOW demo.x`.simple()).toEqual([{ 'demo.x': null }]);
    } finally {
      await sql.end();
    }
    const out = await t().psql(['-A', '-t', '-c', "SET demo.x = 'from psql'", '-c', 'SHOW demo.x', '-c', 'SELECT 7']);
    expect(out.stderr).toBe('');
    expect(out.stdout.split('\n').filter(Boolean)).toEqual(['SET', 'from psql', '7']);
  });

  it('places local answers among the upstream\'s in a pipeline, and skips them after an error as the server does', async () => {
    const raw = await rawClient(t());
    try {
      ended.length = 0;
      const r = await run(raw,
        parse({ text: 'SELECT 1' }), bind({}), execute({}),
        parse({ name: 's_show', text: 'SHOW demo.x' }), describe({ type: 'S', name: 's_show' }), bind({ statement: 's_show' }),
        describe({ type: 'P', name: '' }), execute({}),
        parse({ text: "SET demo.x = 'piped'" }), bind({}), describe({ type: 'P', name: '' }), execute({}),
        parse({ text: 'SELECT 2' }), bind({}), execute({}),
        bind({ statement: 's_show' }), execute({}),
        sync());
      expect(r.codes).toBe('12DC' + '1tT2TDC' + '12nC' + '12DC' + '2DC' + 'Z');
      expect(r.rows).toEqual([['1'], [null], ['2'], ['piped']]);
      expect(r.tags).toEqual(['SELECT 1', 'SHOW', 'SET', 'SELECT 1', 'SHOW']);
      // Each Execute answered here is a client statement (for spans), in its place among the others.
      expect(ended.slice(-5)).toEqual(['extended SELECT 1 ok', 'extended SHOW demo.x ok', "extended SET demo.x = 'piped' ok", 'extended SELECT 2 ok', 'extended SHOW demo.x ok']);
      // An upstream error before a local answer: the rest up to Sync is skipped.
      const failed = await run(raw,
        parse({ text: 'SELECT 1/g FROM generate_series(0, 0) g' }), bind({}), execute({}),
        parse({ text: "SET demo.x = 'not applied'" }), bind({}), execute({}),
        parse({ text: 'SELECT 3' }), bind({}), execute({}), sync());
      expect(failed.codes).toBe('12EZ');
      expect(failed.errors).toEqual(['22012']);
      // A local denial in the middle: what came before is answered, the rest skipped.
      const denied = await run(raw,
        parse({ text: 'SELECT 4' }), bind({}), execute({}),
        parse({ text: "SET demo.x = 'forbidden'" }), bind({}), execute({}),
        parse({ text: 'SELECT 5' }), bind({}), execute({}), sync());
      expect(denied.codes).toBe('12DCEZ');
      expect(denied.errors).toEqual(['22023']);
      // A local answer first, then the upstream's; and after a Flush.
      raw.write(Buffer.concat([parse({ text: 'SHOW demo.x' }), bind({}), execute({}), flush()]));
      expect((await raw.next()).code).toBe('1');
      const rest = await run(raw, parse({ text: 'SELECT 6' }), bind({}), execute({}), sync());
      expect(rest.codes).toBe('2DC12DCZ');
      expect(rest.rows).toEqual([['piped'], ['6']]);
      expect((await run(raw, query('SHOW demo.x'))).rows).toEqual([['piped']]);
    } finally {
      raw.end();
    }
  });

  it('sends rewritten Parse texts and Bind parameters upstream, and answers a Bind here', async () => {
    const c = await t().pg();
    try {
      expect((await c.query(extended("SELECT 'before'::text AS v /* rewrite_text */"))).rows).toEqual([{ v: 'after' }]);
      expect((await c.query('SELECT $1::int * 2 AS doubled /* rewrite_params */', [1])).rows).toEqual([{ doubled: 84 }]);
      expect((await c.query('SELECT $1::int * 2 AS doubled', [1])).rows).toEqual([{ doubled: 2 }]);
      // A Bind answered here, of a statement the upstream prepared.
      expect((await c.query(extended('SELECT 1 AS x /* rewrite_answer */'))).rows).toEqual([{ answered: 'at bind' }]);
      expect((await c.query(extended('SELECT 2 AS x'))).rows).toEqual([{ x: 2 }]);
    } finally {
      await c.end();
    }
  });

  it('asks a plugin about the statements of a session only once the session turned it on', async () => {
    const c = await t().pg();
    try {
      demo.asked.length = 0;
      await c.query('SELECT 1 AS plain');
      await c.query('SELECT $1::int AS plain', [2]);
      expect(demo.asked).toEqual([]);
      await c.query("SET demo.x = 'on'");
      await c.query('SELECT 3 AS watched');
      expect(demo.asked).toEqual(["SET demo.x = 'on'", 'SELECT 3 AS watched']);
      await c.query('RESET demo.x');
      demo.asked.length = 0;
      await c.query('SELECT 4 AS plain');
      expect(demo.asked).toEqual([]);
    } finally {
      await c.end();
    }
  });
}, () => [rewriter, demo, statements]);

it('runs plugins in their declared order, ties in the order given', () => {
  const host = new PluginHost([
    { name: 'late', order: 10 }, { name: 'first', order: -5 }, { name: 'given1' }, { name: 'given2', order: 0 },
  ], () => undefined);
  expect(host.plugins.map((p) => p.name)).toEqual(['first', 'given1', 'given2', 'late']);
});
