/**
 * Column sources of statement texts, cached: the data path asks once per text and session naming
 * (search_path, user, temporary schema), and again only after the catalog changed.
 */
import { LRUCache } from 'lru-cache';
import type { SqlAnalyser } from './analyser.js';
import type { LoadableCatalog } from './catalog.js';
import { loadColumnSources, type StatementSources } from './column-sources.js';
import type { SessionNames } from './source-model.js';

export type TextSources =
  /** One list of statements for each reading of the text (see SqlAnalyser). */
  | { readonly ok: true; readonly readings: readonly (readonly StatementSources[])[] }
  /** The text does not parse: SQLSTATE and message, as SqlAnalyser gives them. */
  | { readonly ok: false; readonly code: string; readonly message: string };

/** A catalog that says when it changed. */
export interface VersionedCatalog extends LoadableCatalog {
  readonly version: number;
}

const CACHE_ENTRIES = 2048;

export class ColumnSourcesCache {
  private readonly cache = new LRUCache<string, TextSources>({ max: CACHE_ENTRIES });
  private version: number;

  constructor(
    private readonly analyser: SqlAnalyser,
    private readonly catalog: VersionedCatalog,
  ) {
    this.version = catalog.version;
  }

  async sources(text: string, session: SessionNames): Promise<TextSources> {
    if (this.catalog.version !== this.version) {
      this.cache.clear();
      this.version = this.catalog.version;
    }
    const key = JSON.stringify([session.searchPath, session.user ?? null, session.tempSchema === undefined ? 'unknown' : session.tempSchema, text]);
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const version = this.version;
    const parsed = this.analyser.analyse(text);
    let out: TextSources;
    if (parsed.ok) {
      const readings: StatementSources[][] = [];
      // One after the other: the catalog loads over one connection.
      for (const r of parsed.readings) readings.push(await loadColumnSources(r, { catalog: this.catalog, session, analyser: this.analyser }));
      out = { ok: true, readings };
    } else {
      out = { ok: false, code: parsed.code, message: parsed.message };
    }
    // An analysis that began before the catalog changed may hold what no longer is.
    if (this.catalog.version === version) this.cache.set(key, out);
    return out;
  }
}
