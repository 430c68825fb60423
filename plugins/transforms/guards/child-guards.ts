/**
 * Guards through partitions and inheritance children (inherited.ts): a child read directly is
 * served as a table of its own, without the parent's transforms.
 * - A column of a child that is a guarded column of its parent (by name) is guarded as that
 *   column, and may not reach a client even as a plain column (verdict.ts); the child's other
 *   columns may be read, as the parent's.
 * - The rows of a child of a table whose rows a guarded row transform filters are not filtered:
 *   a statement that reads them (named directly, or through a view) is refused, whatever it reads
 *   of them. Writing into the child without RETURNING reads no row, as on the parent.
 */
import type { Node } from 'libpg-query';
import { PgError, SqlState } from '../../../proxy/errors.js';
import type { SqlAnalysis } from '../../sql/analyser.js';
import type { StatementSources } from '../../sql/column-sources.js';
import { dotted } from '../../sql/source-model.js';
import type { Registry } from '../registry-cache.js';
import { resolveName, type NamePath } from '../row-reads/relation-names.js';
import { otherReads } from '../row-reads/other-reads.js';
import type { RangeVarBody } from '../row-reads/select-forms.js';
import type { Inherited, InheritedTable } from './inherited.js';
import { columnKey, type GuardedColumn, type GuardedColumns, type GuardedRows } from './policy.js';

const HINT = 'A transform\'s guard is set with provenance.set_transform_guard; members of a role it exempts are not refused.';

/** `a partition of public.orders`, for messages. */
export function inheritedFrom(partition: boolean, parent: string): string {
  return `${partition ? 'a partition' : 'an inheritance child'} of ${parent}`;
}

/** The guarded columns, with the columns of the same names of their tables' partitions and children. */
export function withChildren(columns: GuardedColumns, inherited: Inherited, registry: Registry): GuardedColumns {
  if (columns.size === 0 || inherited.byAncestor.size === 0) return columns;
  const out = new Map<string, readonly GuardedColumn[]>(columns);
  for (const list of columns.values()) {
    const first = list[0];
    const table = first === undefined ? undefined : registry.tables.get(first.oid);
    const name = first === undefined ? undefined : table?.columnNames.get(first.attnum);
    if (table === undefined || name === undefined) continue;
    for (const child of inherited.byAncestor.get(table.oid) ?? []) {
      const attnum = child.columns.get(name);
      if (attnum === undefined) continue;
      const key = columnKey(child.oid, attnum);
      const label = `${child.label}.${dotted([name])}`;
      const mine = list.map((g) => ({ ...g, oid: child.oid, attnum, label, inherited: { parent: table.name, partition: child.partition } }));
      out.set(key, [...(out.get(key) ?? []), ...mine].sort((a, b) => (a.guard === b.guard ? 0 : a.guard === 'strict' ? -1 : 1)));
    }
  }
  return out;
}

/** A child whose rows a guarded row transform of an ancestor would filter. */
export interface RowChild {
  readonly child: InheritedTable;
  readonly rows: GuardedRows;
}

/** Child oid → the guarded row transform of an ancestor it escapes. */
export function rowChildren(rows: readonly GuardedRows[], inherited: Inherited): ReadonlyMap<number, RowChild> {
  const out = new Map<number, RowChild>();
  for (const r of rows) for (const child of inherited.byAncestor.get(r.oid) ?? []) if (!out.has(child.oid)) out.set(child.oid, { child, rows: r });
  return out;
}

/** Statements that read rows of the relations they name (others, such as CREATE VIEW or LOCK, only name them). */
const READS_ROWS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CreateTableAsStmt', 'CopyStmt', 'DeclareCursorStmt', 'PrepareStmt']);

function rangeVars(node: unknown, skip: unknown, out: RangeVarBody[]): void {
  if (Array.isArray(node)) {
    for (const n of node) rangeVars(n, skip, out);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const rv = (node as { RangeVar?: RangeVarBody }).RangeVar;
  if (rv !== undefined && rv !== skip) out.push(rv);
  for (const v of Object.values(node)) rangeVars(v, skip, out);
}

/** The relations a statement may read rows of: every name in it but the target a write without RETURNING only writes to. */
function readNames(stmt: Node): RangeVarBody[] {
  const kind = Object.keys(stmt)[0] ?? '';
  if (kind === 'ExplainStmt') return otherReads(stmt).map((r) => r.rv);
  if (!READS_ROWS.has(kind)) return [];
  const body = Object.values(stmt)[0] as { relation?: RangeVarBody; returningClause?: unknown; is_from?: boolean } | undefined;
  const writesOnly = kind === 'CopyStmt' ? body?.is_from === true : kind !== 'SelectStmt' && body?.returningClause === undefined;
  const out: RangeVarBody[] = [];
  rangeVars(stmt, writesOnly ? body?.relation : undefined, out);
  return out;
}

/**
 * The refusal of a text that reads a child of a table whose rows a guarded row transform filters
 * (directly, through a view, or by a bare name that may mean one), or null.
 */
export function childRowsRefusal(parsed: SqlAnalysis, children: ReadonlyMap<number, RowChild>, inherited: Inherited, path: NamePath): PgError | null {
  if (children.size === 0 || !parsed.ok) return null;
  for (const reading of parsed.readings) {
    for (const stmt of reading) {
      for (const rv of readNames(stmt)) {
        const r = resolveName(rv.schemaname, rv.relname ?? '', inherited.names, path);
        if (r === null) continue;
        for (const c of r.kind === 'relation' ? [r.relation] : r.candidates) {
          const hit = children.get(c.oid) ?? c.viewOf.map((o) => children.get(o)).find((x) => x !== undefined);
          if (hit === undefined) continue;
          const how = r.kind === 'unsure' ? `the name ${dotted([rv.relname ?? ''])} may mean ${hit.child.label}` : c.oid === hit.child.oid ? `it reads ${hit.child.label}` : `it reads ${hit.child.label} through a view`;
          return new PgError(SqlState.InsufficientPrivilege,
            `${how}, ${inheritedFrom(hit.child.partition, hit.rows.label)}, whose rows transform "${hit.rows.transform}" (guard ${hit.rows.guard}) filters only when ${hit.rows.label} is read: read directly, they are not filtered`,
            'ERROR', { hint: `Read ${hit.rows.label} instead. ${HINT}` });
        }
      }
    }
  }
  return null;
}

/**
 * Whether a statement may read a table: a column of one anywhere in it, a relation it reads rows
 * of, or what an EXECUTE or FETCH runs.
 */
export function readsTables(readings: readonly (readonly StatementSources[])[], parsed: SqlAnalysis): boolean {
  const reads = (s: StatementSources): boolean =>
    s.filters.length > 0 || s.flows.length > 0 || s.execute !== undefined || s.fetch !== undefined
    || [...s.results, ...(s.cursor === undefined ? [] : [s.cursor.result])].some((r) => r.columns.some((c) => c.kind === 'column' || c.reads.length > 0))
    || (s.prepare !== undefined && reads(s.prepare.statement));
  return readings.some((r) => r.some(reads)) || (parsed.ok && parsed.readings.some((r) => r.some((stmt) => readNames(stmt).length > 0)));
}

/** Whether a text may name one of these relations: a cheap check before resolving its names. */
export function mayNameChild(text: string, inherited: Inherited): boolean {
  const lower = text.toLowerCase();
  if (lower.includes('u&')) return true;
  for (const name of inherited.names.keys()) if (lower.includes(name.toLowerCase())) return true;
  return false;
}
