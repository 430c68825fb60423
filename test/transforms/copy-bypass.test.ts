import { expect, it } from 'vitest';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { eachUpstream, uniqueName, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { RawClient, sqlstate, type RawMessage } from '../support/raw-client.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';

const SECRET = 'alice@example.com';

interface Fixture {
  readonly table: string;
  readonly view: string;
  readonly plain: string;
  readonly transform: string;
}

async function setup(t: Target, c: pg.Client): Promise<Fixture> {
  await t.proxy.registryLoaded;
  const table = uniqueName('customers');
  const view = `v_${table}`;
  const plain = uniqueName('plain');
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
  await c.query(`INSERT INTO ${table} VALUES (1, '${SECRET}')`);
  await c.query(`CREATE VIEW ${view} AS SELECT * FROM ${table}`);
  await c.query(`CREATE TABLE ${plain} (id int, note text)`);
  await c.query(`INSERT INTO ${plain} VALUES (1, 'kept')`);
  // The raw client logs in as another role on the real server: it may read them, as an attacker could.
  await c.query(`GRANT SELECT ON ${table}, ${view}, ${plain} TO PUBLIC`);
  const transform = uniqueName('mask_copy');
  await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v === null ? null : \"***\"')", [transform, table]);
  await eventually(async () => (await c.query(`SELECT email FROM ${table}`)).rows, (r) => r[0]?.email === '***');
  return { table, view, plain, transform };
}

/** `customers_…` spelt with a Unicode escape for its first letter, as a U& identifier. */
function unicodeName(name: string): string {
  return `U&"\\${name.charCodeAt(0).toString(16).padStart(4, '0')}${name.slice(1)}"`;
}

/** Spellings of a COPY of the table with transforms that each reach the client as one Parse, too. */
function spellings(f: Fixture): string[] {
  const t = f.table;
  return [
    `copy ${t} to/**/stdout`,
    `copy ${t} to --x\nstdout`,
    `copy ${unicodeName(t)} to stdout`,
    `/*a*/copy/*b*/public/*c*/./*d*/${t}/*e*/to/*f*/stdout/*g*/`,
    `copy\n${t}\nto\nstdout\n`,
    `CoPy ${t.toUpperCase()} To StDoUt`,
    `COPY public.${t} TO STDOUT`,
    `COPY "${t}" TO STDOUT`,
    `copy ${t} to stdout with (format csv, header)`,
    `copy ${t} to stdout csv header`,
    `copy (select * from ${t}) to stdout`,
    `copy (select * from ${f.view}) to stdout`,
  ];
}

/** Whether a reply carries the table's clear rows: CopyOutResponse, or the value in any message. */
function leaked(reply: readonly RawMessage[]): boolean {
  return reply.some((m) => m.code === 'H' || m.code === 'd' || m.body.includes(SECRET));
}

function expectRefused(reply: readonly RawMessage[], what: string): void {
  expect(leaked(reply), what).toBe(false);
  const err = reply.find((m) => m.code === 'E');
  expect(err && sqlstate(err.body), what).toBe('0A000');
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

async function rawClient(t: Target): Promise<RawClient> {
  return RawClient.connect(t.port, t.kind === 'postgres' ? 'trustuser' : 'postgres');
}

eachUpstream('COPY TO STDOUT refused on the parser\'s reading', (t) => {
  it('refuses every spelling in a simple Query, alone and among other statements', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    try {
      const f = await setup(t(), c);
      for (const text of [...spellings(f), `select 1; copy ${f.table} to stdout; select 2`]) {
        raw.write(serialize.query(text));
        expectRefused(await raw.untilReady(), text);
      }
      // A session with standard_conforming_strings off reads \' as a quote inside the string.
      raw.write(serialize.query('SET standard_conforming_strings = off'));
      await raw.untilReady();
      const hidden = `select 'x\\'' ; copy ${f.table} to stdout; --'`;
      raw.write(serialize.query(hidden));
      expectRefused(await raw.untilReady(), hidden);
      raw.write(serialize.query('RESET standard_conforming_strings'));
      await raw.untilReady();
      // In a client encoding such as SJIS, 0x81 0x5C is one character to the server, a byte that
      // is not UTF-8 and a backslash to the proxy: such a text holding COPY cannot be read, so it
      // is refused. (The embedded database does not serve SJIS sessions.)
      if (t().kind === 'postgres') {
        raw.write(serialize.query("SET client_encoding = 'SJIS'"));
        await raw.untilReady();
        const sjis = Buffer.concat([Buffer.from("select E'"), Buffer.from([0x81, 0x5c]), Buffer.from(`'; copy ${f.table} to stdout; --'`)]);
        raw.write(Buffer.concat([Buffer.from('Q'), int32(sjis.length + 5), sjis, Buffer.from([0])]));
        const encoded = await raw.untilReady();
        expect(leaked(encoded)).toBe(false);
        expect(sqlstate(encoded.find((m) => m.code === 'E')!.body)).toBe('22021');
        raw.write(serialize.query('RESET client_encoding'));
        await raw.untilReady();
      }
      // The session goes on, masked.
      raw.write(serialize.query(`SELECT email FROM ${f.table}`));
      const after = await raw.untilReady();
      expect(after.map((m) => m.code).join('')).toBe('TDCZ');
      expect(after[1]!.body.includes('***')).toBe(true);
      await c.query('SELECT provenance.drop_transform($1)', [f.transform]);
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('refuses every spelling through Parse/Bind/Execute: hand-built, pg and postgres.js', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    const sql = t().sql();
    try {
      const f = await setup(t(), c);
      for (const text of spellings(f)) {
        raw.write(Buffer.concat([serialize.parse({ text }), serialize.bind({}), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()]));
        const reply = await raw.untilReady();
        expectRefused(reply, text);
        expect(reply.map((m) => m.code).join(''), text).toBe('EZ');
        // node-postgres prepares a named statement; postgres.js pipelines its Parse/Bind/Execute.
        await expect(c.query({ name: `p${Math.random().toString(36).slice(2)}`, text }), text).rejects.toMatchObject({ code: '0A000' });
        await expect(sql.unsafe(text, [], { prepare: true }).then(() => 'served'), text).rejects.toMatchObject({ code: '0A000' });
      }
      expect((await c.query(`SELECT email FROM ${f.table}`)).rows).toEqual([{ email: '***' }]);
      expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
      await c.query('SELECT provenance.drop_transform($1)', [f.transform]);
    } finally {
      raw.end();
      await c.end();
      await sql.end();
    }
  });

  it('serves COPY of tables without transforms, COPY FROM STDIN, and constant COPY queries', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    try {
      const f = await setup(t(), c);
      for (const text of [`COPY ${f.plain} TO STDOUT`, `copy/**/${f.plain}/**/to/**/stdout`, 'copy (values (1, \'kept\')) to stdout']) {
        raw.write(serialize.query(text));
        const reply = await raw.untilReady();
        expect(reply.map((m) => m.code).join(''), text).toBe('HdcCZ');
        expect(reply[1]!.body.toString(), text).toBe('1\tkept\n');
      }
      raw.write(Buffer.concat([serialize.parse({ text: `COPY ${f.plain} TO STDOUT` }), serialize.bind({}), serialize.execute({}), serialize.sync()]));
      expect((await raw.untilReady()).map((m) => m.code).join('')).toBe('12HdcCZ');
      const loaded = await t().psql(['-c', `COPY ${f.plain} FROM STDIN`], '2\tloaded\n\\.\n');
      expect(loaded.code).toBe(0);
      expect((await c.query(`SELECT count(*)::int AS n FROM ${f.plain}`)).rows).toEqual([{ n: 2 }]);
      await c.query('SELECT provenance.drop_transform($1)', [f.transform]);
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('gives the parser only statements holding the letters COPY and STDOUT, and those recorded, each text once', async () => {
    const c = await t().pg();
    const sql = t().sql();
    try {
      const f = await setup(t(), c);
      const analyser = await SqlAnalyser.load();
      // Which texts reach the parser (cache hits do not): the analyser is this process's, the proxy's.
      const parsed: string[] = [];
      const analyse = analyser.analyse.bind(analyser);
      analyser.analyse = (text) => {
        const n = analyser.parses;
        const out = analyse(text);
        if (analyser.parses > n) parsed.push(text);
        return out;
      };
      try {
        for (let i = 0; i < 20; i++) {
          await c.query(`SELECT id, email FROM ${f.table} WHERE id = $1`, [1]);
          await c.query(`SELECT note FROM ${f.plain}`);
          await c.query("SELECT 'a copy' AS word");
          await sql.unsafe(`SELECT email FROM ${f.table}`, [], { prepare: true });
        }
        // Only statements whose results were transformed, for their records' fingerprints (see
        // plugins/provenance/statement-shape.ts), each at most once however often it ran (an
        // earlier test may have had it parsed already).
        const transformed = [`SELECT email FROM ${f.table}`, `SELECT id, email FROM ${f.table} WHERE id = $1`];
        expect(parsed.filter((text) => !transformed.includes(text))).toEqual([]);
        expect(new Set(parsed).size).toBe(parsed.length);
        parsed.length = 0;
        for (let i = 0; i < 3; i++) await expect(c.query(`COPY ${f.table} TO STDOUT`)).rejects.toMatchObject({ code: '0A000' });
      } finally {
        analyser.analyse = analyse;
      }
      // One text, parsed once. The registry's table names are read too, once each: other suites
      // of the run register tables in the same database, so how many there are is not fixed.
      expect(parsed.filter((text) => !text.startsWith('TABLE '))).toEqual([`COPY ${f.table} TO STDOUT`]);
      await c.query('SELECT provenance.drop_transform($1)', [f.transform]);
    } finally {
      await c.end();
      await sql.end();
    }
  });
});
