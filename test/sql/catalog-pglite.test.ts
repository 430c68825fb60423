/** PgCatalog on embedded PGlite: the same queries, the same answers as on PostgreSQL. */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { PgCatalog } from '../../plugins/sql/catalog.js';
import { loadColumnSources } from '../../plugins/sql/column-sources.js';
import { freshDataDir } from '../support/proxy-matrix.js';
import { checkCases, NAMES_SQL, SCHEMA_SQL, type NameOf } from './column-sources-cases.js';

let dir: string;
let db: PGlite;
let analyser: SqlAnalyser;
const names = new Map<string, string>();
const nameOf: NameOf = (oid, attnum) => names.get(`${oid}.${attnum}`) ?? `${oid}.${attnum}`;

beforeAll(async () => {
  dir = freshDataDir();
  db = await PGlite.create(path.join(dir, 'pglite'));
  await db.exec(SCHEMA_SQL);
  analyser = await SqlAnalyser.load();
  for (const r of (await db.query<{ oid: string; attnum: number; name: string }>(NAMES_SQL)).rows) names.set(`${r.oid}.${r.attnum}`, r.name);
});

afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the catalog of embedded PGlite', () => {
  it('gives every case the same sources as the in-memory catalog', async () => {
    const catalog = new PgCatalog({
      query: async (sql, params = []) => ({ rows: (await db.query<Record<string, unknown>>(sql, [...params])).rows }),
      exec: async (sql) => void (await db.exec(sql)),
    });
    await checkCases(async (t) => {
      const parsed = analyser.analyse(t.sql);
      if (!parsed.ok) throw new Error(parsed.message);
      const session = t.session ?? { searchPath: ['$user', 'public'], user: 'postgres', tempSchema: null };
      return (await loadColumnSources(parsed.readings[0] ?? [], { catalog, session, analyser }))[t.statement ?? 0];
    }, nameOf);
  });
});
