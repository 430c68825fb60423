/**
 * Column transforms of one stage of a chain (on different columns, sent to the sandbox at the same
 * time): each execution is recorded once, with the input and output hashes of its own portion as
 * it was before and after it ran (computed here from the values alone); and when some of them
 * fail, the client is told of the first in chain order, and the session goes on.
 */
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { PortionHash } from '../../plugins/shared/canonical-hash.js';
import type { ColumnType } from '../../plugins/shared/codecs/codecs.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import { eventually } from '../support/eventually.js';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';

interface Rec {
  transform_name: string;
  input_hash: string;
  output_hash: string;
  rows_in: string;
  rows_out: string;
}

type Value = string | null;

const TEXT: ColumnType = { oid: 25, typmod: -1, format: 0 };

/** The canonical hash of a portion of text columns, rows in served order, made from the values alone. */
function portionHash(rows: readonly (readonly Value[])[]): string {
  const h = new PortionHash();
  const width = rows[0]!.length;
  h.add(RowBatch.fromValues(rows.map((r) => r.map((v) => (v === null ? null : Buffer.from(v))))), [...Array(width).keys()], Array<ColumnType>(width).fill(TEXT));
  return h.hex();
}

const ROWS: readonly (readonly [number, Value, Value, Value, Value])[] = [
  [1, 'alpha', 'one@example.com', 'first note', 'x1'],
  [2, null, 'two@example.com', null, 'x2'],
  [3, 'gamma', null, 'third note, longer', null],
  [4, 'delta', 'four@example.com', 'n', 'x4'],
];

const UPPER = '(v) => v === null ? null : v.toUpperCase()';
const MASK = "(v) => v === null ? null : v.slice(0, 2) + '***'";
const BANG = "(v) => v === null ? null : v + '!'";

async function table(c: pg.Client): Promise<string> {
  const name = uniqueName('stage');
  await c.query(`CREATE TABLE ${name} (id int PRIMARY KEY, a text, b text, c text, d varchar)`);
  for (const r of ROWS) await c.query(`INSERT INTO ${name} VALUES ($1, $2, $3, $4, $5)`, [...r]);
  return name;
}

async function register(c: pg.Client, table: string, name: string, columns: readonly string[], source: string): Promise<void> {
  await c.query('SELECT provenance.register_transform($1, $2, $3::text[], $4)', [name, table, columns, source]);
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`a stage of column transforms [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ provenanceDurability: 'sync' }));

    it('records each execution with the hashes of its own portion before and after it', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const name = await table(c);
        const [upper, mask, bang] = [uniqueName('upper'), uniqueName('mask'), uniqueName('bang')];
        await register(c, name, upper, ['a', 'd'], UPPER);
        await register(c, name, mask, ['b'], MASK);
        await register(c, name, bang, ['c'], BANG);
        const since = new Date(Date.now() - 1000);
        const res = await eventually(async () => (await c.query<Record<string, Value | number>>(`SELECT id, a, b, c, d FROM ${name} ORDER BY id`)).rows,
          (rows) => rows[0]?.['c'] === 'first note!');
        const up = (v: Value): Value => (v === null ? null : v.toUpperCase());
        const masked = (v: Value): Value => (v === null ? null : `${v.slice(0, 2)}***`);
        const banged = (v: Value): Value => (v === null ? null : `${v}!`);
        expect(res).toEqual(ROWS.map(([id, a, b, cc, d]) => ({ id, a: up(a), b: masked(b), c: banged(cc), d: up(d) })));

        const recs = await eventually(async () => (await c.query<Rec>(
          `SELECT transform_name, input_hash, output_hash, rows_in::text, rows_out::text FROM provenance.executions
            WHERE table_name = $1 AND executed_at >= $2 AND transform_name = ANY($3) ORDER BY transform_name, executed_at`,
          [`public.${name}`, since, [upper, mask, bang]])).rows, (rows) => new Set(rows.map((r) => r.transform_name)).size === 3);
        // Reads before the whole chain was in force were recorded too: the last record of each transform is the one checked.
        const last = (tn: string): Rec => recs.filter((r) => r.transform_name === tn).at(-1)!;
        expect(last(upper)).toMatchObject({
          input_hash: portionHash(ROWS.map(([, a, , , d]) => [a, d])),
          output_hash: portionHash(ROWS.map(([, a, , , d]) => [up(a), up(d)])),
          rows_in: '4',
          rows_out: '4',
        });
        expect(last(mask)).toMatchObject({ input_hash: portionHash(ROWS.map(([, , b]) => [b])), output_hash: portionHash(ROWS.map(([, , b]) => [masked(b)])) });
        expect(last(bang)).toMatchObject({ input_hash: portionHash(ROWS.map(([, , , cc]) => [cc])), output_hash: portionHash(ROWS.map(([, , , cc]) => [banged(cc)])) });
      } finally {
        await c.end();
      }
    });

    it('fails with the first failing transform in chain order, and the session goes on', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const name = await table(c);
        const [upper, middle, last] = [uniqueName('upper'), uniqueName('middle'), uniqueName('last')];
        await register(c, name, upper, ['a'], UPPER);
        await register(c, name, middle, ['b'], "(v) => { if (v === 'two@example.com') throw new Error('middle refused'); return v; }");
        await register(c, name, last, ['c'], "(v) => { if (v === 'n') throw new Error('last refused'); return v; }");
        const err = await eventually(
          async () => c.query(`SELECT id, a, b, c FROM ${name} ORDER BY id`).then(() => null, (e: unknown) => e as pg.DatabaseError),
          (e) => e !== null,
        );
        expect(err).toMatchObject({ code: '38000', message: expect.stringContaining(`transform ${middle} version 1`) as unknown });
        expect(err!.message).toContain('middle refused');
        // Without the middle column, the last one's failure is the first.
        await expect(c.query(`SELECT id, a, c FROM ${name} ORDER BY id`)).rejects.toMatchObject({ code: '38000', message: expect.stringContaining('last refused') as unknown });
        expect((await c.query(`SELECT id, a FROM ${name} ORDER BY id`)).rows).toEqual(ROWS.map(([id, a]) => ({ id, a: a === null ? null : a.toUpperCase() })));
      } finally {
        await c.end();
      }
    });
  });
}
