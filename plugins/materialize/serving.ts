/**
 * Which tables of an as-of statement are served from a materialisation (the MaterializeService
 * the time-travel plugin asks while it rewrites the statement), by the rule of exactness.ts and
 * statement-shape.ts. Whatever cannot be decided now (the proxy's connection busy, the versions
 * not loaded) replays.
 */
import type { SessionInfo } from '../hooks.js';
import type { SqlRunner } from '../registry/migrate.js';
import type { AsOfMoment, AsOfTable, ChainLink, Services } from '../services.js';
import { candidates, changedBetween, sameChainAndContext } from './exactness.js';
import { servableShape } from './statement-shape.js';

/** The names of the columns a chain changes; null when a row transform may change any. */
function transformedColumns(chain: readonly ChainLink[], table: AsOfTable): ReadonlySet<string> | null {
  const out = new Set<string>();
  for (const t of chain) {
    if (t.columns === null) return null;
    for (const a of t.columns) {
      const c = table.columns.find((x) => x.attnum === a);
      if (c !== undefined) out.add(c.name);
    }
  }
  return out;
}

/** How long the tables that have materialisations are known without asking again (another proxy may make one meanwhile). */
const TARGETS_TTL_MS = 1_000;

/**
 * The tables that have some materialisation, read at most once a second, so that an as-of read of
 * a table without one asks nothing more (one made by another proxy is seen within the second).
 */
export class MaterializedTargets {
  private known: { readonly at: number; readonly oids: ReadonlySet<number> } | null = null;

  async has(store: SqlRunner, oid: number): Promise<boolean> {
    if (this.known === null || Date.now() - this.known.at > TARGETS_TTL_MS) {
      const { rows } = await store.query('SELECT DISTINCT target_oid::pg_catalog.int8::pg_catalog.text AS oid FROM provenance.materialization WHERE complete');
      this.known = { at: Date.now(), oids: new Set(rows.map((r) => Number(r['oid']))) };
    }
    return this.known.oids.has(oid);
  }

  /** A materialisation was made or dropped here. */
  changed(): void {
    this.known = null;
  }
}

export async function servedTables(
  services: Services, store: SqlRunner | null, s: SessionInfo, text: string, tables: readonly AsOfTable[], targets: MaterializedTargets,
): Promise<Map<number, { readonly id: number; readonly table: AsOfTable; readonly moment: AsOfMoment }>> {
  const out = new Map<number, { id: number; table: AsOfTable; moment: AsOfMoment }>();
  const moment = services.timetravel?.asOf(s) ?? null;
  const transforms = services.transforms;
  if (moment === null || store === null || transforms?.chainAt === undefined || transforms.replayContext === undefined) return out;
  const some: AsOfTable[] = [];
  for (const t of tables) if (await targets.has(store, t.oid)) some.push(t);
  if (some.length === 0) return out;
  const analysis = services.sql.analyse(text);
  if (!analysis.ok || analysis.readings.length !== 1) return out;
  const reading = analysis.readings[0]!;
  const reader = transforms.replayContext(s, moment);
  for (const table of some) {
    const chain = transforms.chainAt(table.oid, moment.atMicros);
    if (chain === null || !Array.isArray(chain)) continue;
    const use = {
      location: table.location, name: table.name, transformed: transformedColumns(chain, table), columns: new Set(table.columns.map((c) => c.name)),
    };
    if (!servableShape(reading, use)) continue;
    for (const c of await candidates(store, table.oid, moment, s.database)) {
      if (!sameChainAndContext(c, chain, reader, moment, table)) continue;
      if (c.atMicros !== moment.atMicros && await changedBetween(store, c.history, c.at, moment.at)) continue;
      out.set(table.location, { id: c.id, table, moment });
      break;
    }
  }
  return out;
}
