/**
 * Whether a statement uses a table only as a materialisation can answer it. The stored rows are
 * what the chain served, but a replay evaluates the statement on the rows before the chain and
 * transforms only the columns it outputs: the two agree only where the statement does nothing
 * with a transformed value but output it. So a table reference is servable only when:
 *
 * - it stands in the FROM of the statement's top-level SELECT (no set operation), directly or in
 *   inner joins;
 * - a column a transform of its chain changes appears nowhere but as a plain output column (not
 *   in WHERE, a join condition, ORDER BY, GROUP BY, an expression, a whole-row reference…);
 * - with a row transform (which drops rows and may change any column), the table is the only one
 *   read and the statement does nothing but list its columns.
 *
 * Anything else replays.
 */
import type { Node } from '../sql/analyser.js';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Json : null);

const ROW_TRANSFORM_FORBIDDEN = ['whereClause', 'groupClause', 'havingClause', 'windowClause', 'sortClause', 'limitCount', 'limitOffset',
  'distinctClause', 'lockingClause', 'withClause', 'intoClause'];

/** The column reference's field names ('*' for a star). */
function refFields(ref: Json): string[] {
  const fields = Array.isArray(ref['fields']) ? ref['fields'] : [];
  return fields.map((f) => {
    const o = obj(f);
    if (o?.['A_Star'] !== undefined) return '*';
    const s = obj(o?.['String'])?.['sval'];
    return typeof s === 'string' ? s : '*';
  });
}

/** The RangeVar at `location` among a FROM list's items, following inner joins only. */
function findRange(items: readonly unknown[], location: number): Json | null {
  for (const item of items) {
    const o = obj(item);
    const rv = obj(o?.['RangeVar']);
    if (rv !== null && rv['location'] === location) return rv;
    const join = obj(o?.['JoinExpr']);
    if (join !== null && join['jointype'] === 'JOIN_INNER') {
      const found = findRange([join['larg'], join['rarg']], location);
      if (found !== null) return found;
    }
  }
  return null;
}

/** Every ColumnRef under a node. */
function columnRefs(node: unknown, out: Json[]): void {
  if (Array.isArray(node)) {
    for (const n of node) columnRefs(n, out);
    return;
  }
  const o = obj(node);
  if (o === null) return;
  const ref = obj(o['ColumnRef']);
  if (ref !== null) {
    out.push(ref);
    return;
  }
  for (const v of Object.values(o)) columnRefs(v, out);
}

export interface TableUse {
  /** Where the reference stands (RangeVar location). */
  readonly location: number;
  readonly name: string;
  /** The names of the columns the chain changes; null: a row transform (any column). */
  readonly transformed: ReadonlySet<string> | null;
  /** Every column of the table by name. */
  readonly columns: ReadonlySet<string>;
}

export function servableShape(reading: readonly Node[], use: TableUse): boolean {
  if (reading.length !== 1) return false;
  const sel = obj(obj(reading[0])?.['SelectStmt']);
  if (sel === null || sel['larg'] !== undefined || sel['valuesClause'] !== undefined || sel['intoClause'] !== undefined) return false;
  const from = Array.isArray(sel['fromClause']) ? sel['fromClause'] : [];
  const range = findRange(from, use.location);
  if (range === null) return false;
  const alias = String(obj(range['alias'])?.['aliasname'] ?? range['relname']);
  const targets = Array.isArray(sel['targetList']) ? sel['targetList'] : [];
  // A whole-row reference (`SELECT t FROM t`) carries the row before the chain in a replay.
  const wholeRow = (f: string[]): boolean => f.length === 1 && f[0] === alias && !use.columns.has(alias);
  const plainOutputs = new Set<Json>();
  for (const t of targets) {
    const ref = obj(obj(obj(t)?.['ResTarget'])?.['val'])?.['ColumnRef'];
    if (obj(ref) !== null) plainOutputs.add(obj(ref)!);
  }
  if (use.transformed === null) {
    if (from.length !== 1 || obj(obj(from[0])?.['RangeVar']) !== range) return false;
    if (ROW_TRANSFORM_FORBIDDEN.some((k) => sel[k] !== undefined)) return false;
    return targets.every((t) => {
      const ref = obj(obj(obj(obj(t)?.['ResTarget'])?.['val'])?.['ColumnRef']);
      return ref !== null && !wholeRow(refFields(ref));
    });
  }
  // DISTINCT, and ordering or grouping by output position, work on the values output: raw ones in a replay.
  if (sel['distinctClause'] !== undefined) return false;
  const positional = [...(Array.isArray(sel['sortClause']) ? sel['sortClause'] : []).map((x) => obj(obj(x)?.['SortBy'])?.['node']),
    ...(Array.isArray(sel['groupClause']) ? sel['groupClause'] : [])].some((n) => obj(n)?.['A_Const'] !== undefined);
  if (positional) return false;
  // Output names of transformed columns (`email AS e`): ORDER BY e sorts by the output value.
  const transformedNames = new Set(use.transformed);
  for (const t of targets) {
    const target = obj(obj(t)?.['ResTarget']);
    const ref = obj(obj(target?.['val'])?.['ColumnRef']);
    const last = ref === null ? undefined : refFields(ref).at(-1);
    if (typeof target?.['name'] === 'string' && last !== undefined && use.transformed.has(last)) transformedNames.add(target['name']);
  }
  const refs: Json[] = [];
  columnRefs(sel, refs);
  for (const ref of refs) {
    const f = refFields(ref);
    if (wholeRow(f)) return false;
    if (plainOutputs.has(ref)) continue;
    const last = f[f.length - 1]!;
    if (last === '*' || transformedNames.has(last)) return false;
  }
  return true;
}
