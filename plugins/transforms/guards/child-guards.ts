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
import { resolveName, type NamedRelation, type NamePath, type Resolved } from '../row-reads/relation-names.js';
import { otherReads } from '../row-reads/other-reads.js';
import type { RangeVarBody } from '../row-reads/select-forms.js';
import type { Inherited, InheritedTable } from './inherited.js';
import { columnKey, type GuardedColumn, type GuardedColumns, type GuardedRows } from './policy.js';

export const HINT = 'A transform\'s guard is set with provenance.set_transform_guard; members of a role it exempts are not refused.';

/** `a partition of public.orders`, for messages. */
export function inheritedFrom(partition: boolean, parent: string): string {
  return `${partition ? 'a partition' : 'an inheritance child'} of ${parent}`;
}

/** How a column of a partition, child or ancestor is guarded by its relative's transform; null: not. */
export type Relation = (relative: InheritedTable, table: string) => Pick<GuardedColumn, 'inherited' | 'descendant'> | null;

/**
 * `columns` with, for each guarded column of `own`, the column of the same name of each table
 * `relatives` lists for its table, guarded as it (the strictest guard first, own transforms
 * before a relative's).
 */
export function withRelatives(columns: GuardedColumns, own: GuardedColumns, relatives: ReadonlyMap<number, readonly InheritedTable[]>, registry: Registry, how: Relation): GuardedColumns {
  if (own.size === 0 || relatives.size === 0) return columns;
  const out = new Map<string, readonly GuardedColumn[]>(columns);
  for (const list of own.values()) {
    const first = list[0];
    const table = first === undefined ? undefined : registry.tables.get(first.oid);
    const name = first === undefined ? undefined : table?.columnNames.get(first.attnum);
    if (table === undefined || name === undefined) continue;
    for (const relative of relatives.get(table.oid) ?? []) {
      const attnum = relative.columns.get(name);
      const mark = attnum === undefined ? null : how(relative, table.name);
      if (attnum === undefined || mark === null) continue;
      const key = columnKey(relative.oid, attnum);
      const label = `${relative.label}.${dotted([name])}`;
      const mine = list.map((g) => ({ ...g, oid: relative.oid, attnum, label, ...mark }));
      out.set(key, [...(out.get(key) ?? []), ...mine].sort((a, b) => (a.guard === b.guard ? 0 : a.guard === 'strict' ? -1 : 1)));
    }
  }
  return out;
}

/** The guarded columns, with the columns of the same names of their tables' partitions and children. */
export function withChildren(columns: GuardedColumns, inherited: Inherited, registry: Registry): GuardedColumns {
  return withRelatives(columns, columns, inherited.byAncestor, registry, (child, parent) => ({ inherited: { parent, partition: child.partition } }));
}

/** A partition, child or ancestor of a table whose rows a guarded row transform filters there only. */
export interface RowRelative {
  readonly relative: InheritedTable;
  readonly rows: GuardedRows;
}

/** Relative's oid → the guarded row transform of the table its reads escape. */
export function rowRelatives(rows: readonly GuardedRows[], relatives: ReadonlyMap<number, readonly InheritedTable[]>): ReadonlyMap<number, RowRelative> {
  const out = new Map<number, RowRelative>();
  for (const r of rows) for (const relative of relatives.get(r.oid) ?? []) if (!out.has(relative.oid)) out.set(relative.oid, { relative, rows: r });
  return out;
}

/** Statements that read rows of the relations they name (others, such as CREATE VIEW or LOCK, only name them). */
const READS_ROWS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CreateTableAsStmt', 'CopyStmt', 'DeclareCursorStmt']);

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
  if ('PrepareStmt' in stmt) return stmt.PrepareStmt.query === undefined ? [] : readNames(stmt.PrepareStmt.query);
  if (!READS_ROWS.has(kind)) return [];
  const body = Object.values(stmt)[0] as { relation?: RangeVarBody; returningClause?: unknown; is_from?: boolean } | undefined;
  const writesOnly = kind === 'CopyStmt' ? body?.is_from === true : kind !== 'SelectStmt' && body?.returningClause === undefined;
  const out: RangeVarBody[] = [];
  rangeVars(stmt, writesOnly ? body?.relation : undefined, out);
  return out;
}

/** A name a statement may read rows through, and what it may mean among the relations the guards know of. */
export interface NamedRead {
  readonly rv: RangeVarBody;
  readonly resolved: Exclude<Resolved, null>;
}

/** Every relation a read may mean: one, or several when the resolution is unsure. */
export function candidates(r: NamedRead): readonly NamedRelation[] {
  return r.resolved.kind === 'relation' ? [r.resolved.relation] : r.resolved.candidates;
}

/** The names of these statements that may read rows of a relation of inherited.names. */
export function namedReads(statements: readonly Node[], inherited: Inherited, path: NamePath): NamedRead[] {
  const out: NamedRead[] = [];
  for (const stmt of statements) {
    for (const rv of readNames(stmt)) {
      const resolved = resolveName(rv.schemaname, rv.relname ?? '', inherited.names, path);
      if (resolved !== null) out.push({ rv, resolved });
    }
  }
  return out;
}

/**
 * The refusal of reads of a child of a table whose rows a guarded row transform filters
 * (directly, through a view, or by a bare name that may mean one), or null.
 */
export function childRowsRefusal(reads: readonly NamedRead[], children: ReadonlyMap<number, RowRelative>): PgError | null {
  if (children.size === 0) return null;
  for (const read of reads) {
    const { rv, resolved: r } = read;
    for (const c of candidates(read)) {
      const hit = children.get(c.oid) ?? c.viewOf.map((o) => children.get(o)).find((x) => x !== undefined);
      if (hit === undefined) continue;
      const how = r.kind === 'unsure' ? `the name ${dotted([rv.relname ?? ''])} may mean ${hit.relative.label}` : c.oid === hit.relative.oid ? `it reads ${hit.relative.label}` : `it reads ${hit.relative.label} through a view`;
      return new PgError(SqlState.InsufficientPrivilege,
        `${how}, ${inheritedFrom(hit.relative.partition, hit.rows.label)}, whose rows transform "${hit.rows.transform}" (guard ${hit.rows.guard}) filters only when ${hit.rows.label} is read: read directly, they are not filtered`,
        'ERROR', { hint: `Read ${hit.rows.label} instead. ${HINT}` });
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
