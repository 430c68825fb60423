/**
 * A statement of a session that reads as of a moment: refused when it writes (25006), or when the
 * proxy cannot be sure its answer is the one of that moment (an untracked user table: 55000; a
 * materialized view, a function that may read tables, anything else it cannot rewrite: 0A000);
 * otherwise its text with every view expanded and every tracked table read from its history (see
 * rewrite.ts). System catalogs, and the proxy's own `provenance` schema (the record itself), are
 * read as they are now.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { SqlRunner } from '../registry/migrate.js';
import type { SqlAnalyser } from '../sql/analyser.js';
import { writeOf } from '../sql/read-only.js';
import { statementRefs, type RelationRef, type StatementRefs } from '../sql/relation-refs.js';
import type { HistoryCatalog, RelationInfo } from './history-catalog.js';
import { fromMicros, type Moment } from './moment.js';
import { quoteIdent, rewriteText, type Replacement } from './rewrite.js';
import { servedFromMaterializations } from './materialized-reads.js';
import type { AsOfTable } from '../services.js';
import { searchOrder, type Naming } from './session-path.js';

/** Schemas read as they are now. */
const PRESENT_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pg_toast', 'provenance']);

export interface ReadContext {
  readonly sql: SqlAnalyser;
  readonly catalog: HistoryCatalog;
  /** The proxy's connection when it may be used now; null: answer from what was read before. */
  readonly store: SqlRunner | null;
  readonly moment: Moment;
  readonly nowMicros: bigint;
  /** The session's user, whose SELECT on each table read is checked first (for a message naming the table). */
  readonly user: string;
  /** How the session resolves unqualified names now. */
  readonly naming: Naming;
  /** Which tables are served from a materialised version (see MaterializeService). */
  readonly serving?: ((text: string, tables: readonly AsOfTable[]) => Promise<ReadonlyMap<number, number>>) | undefined;
}

const PRIVILEGE_SQL = `
SELECT o::pg_catalog.int8::pg_catalog.text AS oid FROM pg_catalog.unnest($2::pg_catalog.oid[]) o
 WHERE NOT pg_catalog.has_table_privilege($1::pg_catalog.name, o, 'SELECT')`;

const notSupported = (message: string, hint?: string): PgError =>
  new PgError(SqlState.FeatureNotSupported, message, 'ERROR', hint === undefined ? {} : { hint });

function qualified(r: RelationInfo): string {
  const q = (s: string): string => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : quoteIdent(s));
  return `${q(r.schema)}.${q(r.name)}`;
}

const temporaryTable = (ref: RelationRef): PgError =>
  notSupported(`"${ref.name}" may name a temporary table, which has no history: it cannot be read as of a moment`);

/**
 * The relation a reference means, as the session's server finds it, or an error; null: no such
 * relation (the server will say so). `usable`: the schemas of the candidates the current role
 * may use; null when the path or the role is not known.
 */
function resolve(ref: RelationRef, candidates: readonly RelationInfo[], naming: Naming, usable: ReadonlyMap<string, boolean> | null): RelationInfo | PgError | null {
  if (ref.schema !== null) {
    // pg_temp names the session's own temporary schema, which the proxy does not know.
    if (ref.schema === 'pg_temp') return candidates.some((c) => c.temporary) ? temporaryTable(ref) : null;
    return candidates.find((c) => c.schema === ref.schema) ?? null;
  }
  if (naming.path === null || naming.role === null || usable === null) {
    // Temporary relations come first in any search_path, then pg_catalog.
    if (candidates.some((c) => c.temporary)) return temporaryTable(ref);
    const system = candidates.find((c) => c.schema === 'pg_catalog');
    if (system !== undefined) return system;
    if (candidates.length > 1) {
      return notSupported(`"${ref.name}" names tables in several schemas (${candidates.map(qualified).join(', ')}), and the proxy does not know this session's search_path: ${naming.unknown ?? 'the current role is not known'}`,
        'SET search_path again, or qualify the table with its schema.');
    }
    return candidates[0] ?? null;
  }
  for (const schema of searchOrder(naming.path, naming.role)) {
    if (schema === 'pg_temp') {
      // Any session's temporary table of the name may be this session's.
      if (candidates.some((c) => c.temporary)) return temporaryTable(ref);
      continue;
    }
    const found = candidates.find((c) => c.schema === schema && !c.temporary);
    if (found !== undefined && (schema === 'pg_catalog' || usable.get(schema) === true)) return found;
  }
  return null;
}

/** Why a resolved relation cannot be read as of the moment, or null when its history can be. */
function refusal(ref: RelationRef, r: RelationInfo, c: ReadContext): PgError | null {
  const name = qualified(r);
  const h = r.history;
  if (r.kind === 'm') {
    return notSupported(`materialized view ${name} holds rows of when it was refreshed: it cannot be read as of a moment`, 'Read the tables it reads instead.');
  }
  if (h === null || r.kind !== 'r') {
    return new PgError(SqlState.ObjectNotInPrerequisiteState, `table ${name} is not tracked: its rows as of a moment are not kept`, 'ERROR', {
      hint: `An admin can start its history with SELECT provenance.track('${name.replace(/'/g, "''")}').`,
    });
  }
  const earliest = fromMicros(h.since).at;
  if (c.moment.micros > c.nowMicros) {
    return new PgError('22023', `moment ${c.moment.at} is in the future: the history of table ${name} starts at ${earliest} and ends now`);
  }
  if (c.moment.micros < h.since) {
    return new PgError('22023', `moment ${c.moment.at} is before the history of table ${name} starts: the earliest moment available is ${earliest}`);
  }
  if (!h.tracking && h.until !== null && c.moment.micros >= h.until) {
    return new PgError('22023', `moment ${c.moment.at} is after the history of table ${name} ends at ${fromMicros(h.until).at} (history available from ${earliest})`);
  }
  if (h.tracking && !h.intact) {
    return new PgError(SqlState.ObjectNotInPrerequisiteState, `the history of table ${name} is incomplete: its capture triggers were dropped or disabled`);
  }
  if (r.rowSecurity) return notSupported(`table ${name} has row-level security, which its history does not apply: it cannot be read as of a moment`);
  if (ref.inherited && r.hasChildren) return notSupported(`table ${name} has inheritance children, whose rows its history does not hold`, 'Read it with ONLY.');
  if (ref.sampled) return notSupported(`TABLESAMPLE of table ${name} cannot be read as of a moment`);
  return null;
}

function sameRefs(a: readonly StatementRefs[], b: readonly StatementRefs[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** How many views within views are expanded. */
const MAX_VIEW_DEPTH = 8;

/**
 * The text to send upstream in place of `text`, or the refusal. A view is expanded into its query
 * (which then runs with the caller's privileges on its tables, not its owner's), and the text
 * read again, until no view is left.
 */
export async function planRead(text: string, c: ReadContext): Promise<string | PgError> {
  let current = text;
  for (let depth = 0; ; depth++) {
    const planned = await planOnce(current, c, depth < MAX_VIEW_DEPTH);
    if (planned instanceof PgError) return planned;
    if (!planned.views) return planned.text;
    current = planned.text;
  }
}

async function planOnce(text: string, c: ReadContext, expandViews: boolean): Promise<{ text: string; views: boolean } | PgError> {
  const analysis = c.sql.analyse(text);
  if (!analysis.ok) return new PgError(analysis.code, analysis.message, 'ERROR', { position: analysis.position });
  const perReading: StatementRefs[][] = [];
  for (const reading of analysis.readings) {
    const refs: StatementRefs[] = [];
    for (const stmt of reading) {
      const write = writeOf(stmt);
      if (write !== null) {
        return new PgError(SqlState.ReadOnlySqlTransaction, `cannot execute ${write} in a session that reads as of a moment`, 'ERROR', {
          hint: 'RESET provenance.as_of to write.',
        });
      }
      const copy = (stmt as { CopyStmt?: { relation?: unknown } }).CopyStmt;
      if (copy?.relation !== undefined) {
        return notSupported('COPY of a table cannot be read as of a moment', 'Copy a query instead: COPY (SELECT … FROM the table) TO STDOUT.');
      }
      refs.push(statementRefs(stmt));
    }
    perReading.push(refs);
  }
  // A text whose readings differ (standard_conforming_strings) reads different things.
  if (perReading.length > 1 && !sameRefs(perReading[0]!, perReading[1]!)) {
    return notSupported('a statement read otherwise with standard_conforming_strings off cannot be read as of a moment');
  }
  const refs = perReading[0] ?? [];
  const relations = refs.flatMap((r) => r.relations);
  const functions = refs.flatMap((r) => r.functions);
  if (relations.length === 0 && functions.length === 0) return { text, views: false };
  const known = await c.catalog.load(c.store, relations.map((r) => r.name), functions.map((f) => f.name));
  if (known === null) {
    return notSupported('the proxy cannot look up what this statement reads while the embedded database is held by a transaction',
      'Run it once outside a transaction block first, or qualify it as before.');
  }
  for (const f of functions) {
    const candidates = (known.functions.get(f.name) ?? []).filter((x) => f.schema === null || x.schema === f.schema);
    if (candidates.some((x) => x.mayReadTables)) {
      return notSupported(`function ${f.schema === null ? '' : `${f.schema}.`}${f.name}() may read tables, whose rows as of a moment the proxy cannot give it`);
    }
  }
  const schemas = relations.filter((r) => r.schema === null).flatMap((r) => (known.relations.get(r.name) ?? []).map((x) => x.schema));
  const usable = c.naming.role === null || c.naming.path === null ? null : await c.catalog.usable(c.store, c.naming.role, schemas);
  let replacements: Replacement[] = [];
  for (const ref of relations) {
    const r = resolve(ref, known.relations.get(ref.name) ?? [], c.naming, usable);
    if (r === null) continue;
    if (r instanceof PgError) return r;
    if (PRESENT_SCHEMAS.has(r.schema)) continue;
    if (r.kind === 'v') {
      if (!expandViews || r.definition === null) return notSupported(`view ${qualified(r)} could not be expanded to be read as of a moment`);
      replacements.push({ ref, table: r, view: true });
      continue;
    }
    const refused = refusal(ref, r, c);
    if (refused !== null) return refused;
    replacements.push({ ref, table: r });
  }
  if (replacements.length === 0) return { text, views: false };
  // Views first, alone: their queries' tables are rewritten in the next pass, with everything else.
  const views = replacements.some((r) => r.view === true);
  if (views) replacements = replacements.filter((r) => r.view === true);
  // The rewritten statement makes the server check the same (under the session's current role).
  if (c.store !== null) {
    const { rows } = await c.store.query(PRIVILEGE_SQL, [c.user, [...new Set(replacements.filter((r) => r.view !== true).map((r) => r.table.oid))]]);
    const denied = replacements.find((r) => rows.some((x) => Number(x['oid']) === r.table.oid));
    if (denied !== undefined) return new PgError(SqlState.InsufficientPrivilege, `permission denied for table ${denied.table.name}`);
  }
  if (!views && c.serving !== undefined) replacements = await servedFromMaterializations(text, replacements, c.serving);
  const tokens = c.sql.tokens(text);
  const rewritten = tokens === null ? null : rewriteText(text, tokens, replacements, c.moment);
  return rewritten === null ? notSupported('the proxy could not rewrite this statement to read as of a moment') : { text: rewritten, views };
}
