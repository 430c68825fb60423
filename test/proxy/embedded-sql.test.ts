import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { RawClient, sqlstate } from '../support/raw-client.js';

/**
 * The embedded upstream keeps sessions apart on one PGlite backend by knowing which statements
 * start COPY FROM STDIN, change settings or listen: read with PostgreSQL's parser, so comments,
 * line breaks and quoting do not hide them.
 */
describe('embedded PGlite: statements read with PostgreSQL\'s parser', () => {
  const t = useTarget('embedded');

  it('serves COPY FROM STDIN however it is spelt, and refuses it among other statements without wedging', async () => {
    const table = uniqueName('copy_in');
    const c = await t.pg();
    try {
      await c.query(`CREATE TABLE ${table} (id int, note text)`);
      for (const [i, text] of [
        `copy ${table} from/**/stdin`,
        `/* lead */ COPY "${table}" (id, note) FROM --x\nSTDIN;`,
        `copy public.${table} from stdin with (format csv, escape '\\')`,
      ].entries()) {
        // psql ends the data at the end of its input.
        const r = await t.psql(['-v', 'ON_ERROR_STOP=1', '-c', text], `${i}${text.includes('csv') ? ',' : '\t'}row ${i}\n`);
        expect(r.stderr + String(r.code), text).toBe("0");
      }
      expect((await c.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 3 }]);
      // Where PGlite cannot take it, it is refused in the server's place, and everyone goes on.
      const raw = await RawClient.connect(t.port);
      try {
        for (const text of [`select 1; copy ${table} from/**/stdin`, `copy ${table} from --x\nstdin; select 1`]) {
          raw.write(serialize.query(text));
          const reply = await raw.untilReady();
          expect(reply.map((m) => m.code).join(''), text).toBe('EZ');
          expect(sqlstate(reply[0]!.body), text).toBe('0A000');
        }
        raw.write(Buffer.concat([serialize.parse({ text: `copy ${table} from/**/stdin` }), serialize.bind({}), serialize.execute({}), serialize.sync()]));
        const ext = await raw.untilReady();
        expect(ext.map((m) => m.code).join('')).toBe('EZ');
        // A text holding COPY that does not parse: the parser's own error, as the server would give it.
        raw.write(serialize.query(`copy ${table} from stdin with oids`));
        const bad = await raw.untilReady();
        expect(sqlstate(bad[0]!.body)).toBe('42601');
        raw.write(serialize.query('SELECT 7 AS ok'));
        expect((await raw.untilReady()).map((m) => m.code).join('')).toBe('TDCZ');
      } finally {
        raw.end();
      }
      expect((await c.query('SELECT 5 AS ok')).rows).toEqual([{ ok: 5 }]);
    } finally {
      await c.end();
    }
  });

  it('puts back a SET however it is spelt, and tells the client about it', async () => {
    const a = await RawClient.connect(t.port);
    const b = await t.pg();
    try {
      a.write(serialize.query("/* lead */ SET/**/application_name --x\n= 'spelt-oddly'"));
      const reply = await a.untilReady();
      // ParameterStatus: a server reports the change before ReadyForQuery.
      expect(reply.some((m) => m.code === 'S' && m.body.includes('spelt-oddly'))).toBe(true);
      a.write(serialize.query("SET search_path = pg_catalog/**/, public"));
      await a.untilReady();
      // Another session takes the backend in between.
      await b.query('SELECT 1');
      a.write(serialize.query("SELECT current_setting('application_name') || ' ' || current_setting('search_path')"));
      const after = await a.untilReady();
      expect(after[1]!.body.toString()).toContain('spelt-oddly pg_catalog, public');
      // SET LOCAL is not put back: it ended with its transaction.
      a.write(serialize.query("BEGIN; SET LOCAL application_name = 'local'; COMMIT"));
      await a.untilReady();
      await b.query('SELECT 1');
      a.write(serialize.query("SELECT current_setting('application_name')"));
      expect((await a.untilReady())[1]!.body.toString()).toContain('spelt-oddly');
    } finally {
      a.end();
      await b.end();
    }
  });

  it('routes notifications to a session that listened with any spelling', async () => {
    const channel = uniqueName('Chan');
    const listener = await t.pg();
    const sender = await t.pg();
    try {
      const got: string[] = [];
      listener.on('notification', (n) => got.push(`${n.channel}:${n.payload ?? ''}`));
      await listener.query(`listen/**/"${channel}"`);
      await sender.query(`NOTIFY "${channel}", 'one'`);
      await listener.query('SELECT 1');
      expect(got).toEqual([`${channel}:one`]);
      await listener.query(`unlisten --x\n"${channel}"`);
      await sender.query(`NOTIFY "${channel}", 'two'`);
      await listener.query('SELECT 1');
      expect(got).toEqual([`${channel}:one`]);
    } finally {
      await listener.end();
      await sender.end();
    }
  });
});
