/**
 * The FROM items a name can refer to (range table entries by level, as the server's parse
 * analysis keeps them) and the CTEs in force, and how a column reference resolves in them.
 */
import type { Node } from 'libpg-query';
import { dotted, EMPTY, merge, unknownVal, type Val } from './source-model.js';

export interface ScopeColumn {
  readonly name: string;
  readonly val: Val;
  /** Reachable by its bare name (false for a USING/NATURAL column of one side of a join: the merged one answers). */
  readonly bare: boolean;
  /** Part of `*` (false for the same one-side join columns). */
  readonly star: boolean;
}

export interface Rte {
  /** The alias, or the relation's name when it has none; null for a join without alias. */
  readonly refname: string | null;
  /** The relation's schema when it is referred to by its own name (so `s.t.c` matches). */
  readonly schema: string | null;
  /** Null when the columns are not known (a function whose result columns cannot be told). */
  readonly columns: readonly ScopeColumn[] | null;
  /** What every column of an entry whose columns are not known is made of. */
  readonly opaque: Val;
  /** A base relation: its system columns (ctid, xmin…) may be named. */
  readonly system: boolean;
  /** Its name reaches qualified references (false for the sides of an aliased join). */
  readonly visible: boolean;
}

export interface Scope {
  readonly rtes: Rte[];
  readonly parent: Scope | null;
}

export interface CteOutput {
  readonly name: string;
  readonly val: Val;
}

export interface Ctes {
  readonly map: Map<string, readonly CteOutput[] | string>;
  readonly parent: Ctes | null;
}

export function findCte(ctes: Ctes | null, name: string): readonly CteOutput[] | string | undefined {
  for (let c = ctes; c !== null; c = c.parent) {
    const hit = c.map.get(name);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

const SYSTEM_COLUMNS = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid']);

export function wholeRow(rte: Rte): Val {
  if (rte.columns === null) return rte.opaque;
  return merge(rte.columns.filter((c) => c.star).map((c) => c.val));
}

function column(rte: Rte, name: string): Val | null {
  if (rte.columns === null) return rte.opaque;
  const hits = rte.columns.filter((c) => c.name === name);
  if (hits.length > 1) return unknownVal(`column reference ${dotted([rte.refname ?? '', name])} is ambiguous`);
  if (hits[0] !== undefined) return hits[0].val;
  if (rte.system && SYSTEM_COLUMNS.has(name)) return EMPTY;
  return null;
}

/** An unqualified column name at one level: its value, or null when no entry of the level has it. */
function bareColumn(rtes: readonly Rte[], name: string): Val | null {
  const found: Val[] = [];
  let opaque = false;
  for (const rte of rtes) {
    if (rte.columns === null) {
      opaque = true;
      continue;
    }
    for (const c of rte.columns) if (c.bare && c.name === name) found.push(c.val);
    if (rte.system && SYSTEM_COLUMNS.has(name) && found.length === 0) found.push(EMPTY);
  }
  if (found.length > 1) return unknownVal(`column reference ${dotted([name])} is ambiguous`);
  if (opaque) {
    const opaqueVals = rtes.filter((r) => r.columns === null).map((r) => r.opaque);
    return unknownVal(`column ${dotted([name])} may come from a function result whose columns are not known`, merge([...found, ...opaqueVals]).reads);
  }
  return found[0] ?? null;
}

/** The entry a qualifier names, searching levels from the innermost. */
export function findRte(scope: Scope | null, qualifier: readonly string[]): Rte | null {
  const name = qualifier[qualifier.length - 1];
  const schema = qualifier.length > 1 ? qualifier[qualifier.length - 2] : undefined;
  for (let s = scope; s !== null; s = s.parent) {
    const hits = s.rtes.filter((r) => r.visible && r.refname === name && (schema === undefined || r.schema === schema));
    if (hits.length > 0) return hits[0] ?? null;
  }
  return null;
}

/** A ColumnRef (`c`, `t.c`, `s.t.c`, `t`, `t.*`) as the server's transformColumnRef resolves it. */
export function resolveColumnRef(scope: Scope | null, fields: readonly Node[]): Val {
  const parts: string[] = [];
  let star = false;
  for (const f of fields) {
    if ('String' in f) parts.push(f.String.sval ?? '');
    else if ('A_Star' in f) star = true;
  }
  if (star) {
    if (parts.length === 0) return merge(scope?.rtes.map(wholeRow) ?? []);
    const rte = findRte(scope, parts.slice(-2));
    return rte === null ? unknownVal(`missing FROM-clause entry for ${dotted(parts)}`) : wholeRow(rte);
  }
  if (parts.length === 1) {
    const name = parts[0] ?? '';
    for (let s = scope; s !== null; s = s.parent) {
      const v = bareColumn(s.rtes, name);
      if (v !== null) return v;
    }
    const rte = findRte(scope, [name]);
    if (rte !== null) return wholeRow(rte);
    return unknownVal(`column ${dotted(parts)} does not exist`);
  }
  const qualifier = parts.length >= 4 ? parts.slice(-3, -1) : parts.slice(0, -1);
  const name = parts[parts.length - 1] ?? '';
  const rte = findRte(scope, qualifier);
  if (rte !== null) {
    const v = column(rte, name);
    // `t.f` where t has no column f: a function of the whole row (`f(t)` notation).
    return v ?? unknownVal(`column ${dotted(parts)} does not exist, or names a function of the row`, wholeRow(rte).reads);
  }
  if (parts.length === 2) {
    // `c.f`: a field of a composite column c.
    const v = resolveColumnRef(scope, fields.slice(0, 1));
    return v.unknown === null ? merge([v]) : v;
  }
  return unknownVal(`missing FROM-clause entry for ${dotted(qualifier)}`);
}

/**
 * `(t).c` or `(t.*).c` where t names a FROM item: the server reads it as the column itself. Null
 * when the reference is not to a whole row (a field of a composite column is an expression).
 */
export function rowField(scope: Scope | null, fields: readonly Node[], field: string): Val | null {
  const parts = fields.flatMap((f) => ('String' in f ? [f.String.sval ?? ''] : []));
  const star = fields.some((f) => 'A_Star' in f);
  if (!star && parts.length !== 1) return null;
  if (!star) for (let s = scope; s !== null; s = s.parent) if (bareColumn(s.rtes, parts[0] ?? '') !== null) return null;
  const rte = findRte(scope, parts.slice(-2));
  return rte === null ? null : column(rte, field);
}
