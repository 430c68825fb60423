/**
 * The words of the column-source analysis (see column-sources.ts): what a value is made of, and the
 * per-statement state that collects where table columns go, with name resolution through the
 * session's search_path as the server does it.
 */
import type { Node } from 'libpg-query';
import { callable, type Catalog, type CatalogFunction, type CatalogNeed, type CatalogRelation } from './catalog.js';

/** One column of one table, as RowDescription names it (table oid, attnum). */
export interface TableColumn {
  readonly oid: number;
  readonly attnum: number;
}

export type ColumnSource =
  | { readonly kind: 'column'; readonly oid: number; readonly attnum: number }
  | { readonly kind: 'expression'; readonly reads: readonly TableColumn[] }
  | { readonly kind: 'unknown'; readonly reason: string; readonly reads: readonly TableColumn[] };

export type FilterClause = 'where' | 'join' | 'group by' | 'having' | 'order by' | 'distinct on' | 'window' | 'limit' | 'on conflict' | 'merge' | 'copy';

/**
 * A table column a statement compares, orders or groups by. `direct` when it is compared as it is
 * (an operand of a comparison, IN, LIKE, BETWEEN, IS NULL, or an ordering/grouping key); false when
 * an expression (a function, a cast…) works on it first: such an expression can show the value
 * through an error message or a side effect.
 */
export interface FilterUse extends TableColumn {
  readonly clause: FilterClause;
  readonly direct: boolean;
}

export type FlowTarget = 'insert' | 'update' | 'merge' | 'create table as' | 'select into' | 'copy' | 'call' | 'explain analyze' | 'refresh materialized view';

/** A table column whose values go somewhere other than a result the client receives. */
export interface Flow extends TableColumn {
  readonly into: FlowTarget;
}

/** The session's name resolution, as the server reports and keeps it. */
export interface SessionNames {
  /** The search_path, one schema a name, `$user` and `pg_temp` as written (see parseSearchPath). */
  readonly searchPath: readonly string[];
  /** The current user (SET ROLE changes it), for `$user`. */
  readonly user?: string;
  /**
   * The session's temporary schema (`pg_temp_3`), null when it has none; when not given, a
   * temporary table of any session that could shadow a name makes the resolution uncertain.
   */
  readonly tempSchema?: string | null;
}

/**
 * The schemas of a search_path setting as the server reads it (SplitIdentifierString): names
 * separated by commas, double-quoted ones taken as written, unquoted ones folded to lower case.
 * Null when the text is not a valid list (the server would not have accepted it).
 */
export function parseSearchPath(text: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const space = (): void => {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  };
  space();
  if (i === text.length) return out;
  for (;;) {
    let name = '';
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) return null;
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        name += text[i];
      }
      i++;
    } else {
      const start = i;
      while (i < text.length && text[i] !== ',' && !/\s/.test(text[i] ?? '')) i++;
      name = text.slice(start, i).toLowerCase();
      if (name === '') return null;
    }
    out.push(name);
    space();
    if (i === text.length) return out;
    if (text[i] !== ',') return null;
    i++;
    space();
  }
}

/** A value under analysis: the table column it is a plain reference to, or what it reads. */
export interface Val {
  readonly plain: TableColumn | null;
  readonly reads: readonly TableColumn[];
  readonly unknown: string | null;
}

export const EMPTY: Val = { plain: null, reads: [], unknown: null };

export function plainVal(c: TableColumn): Val {
  return { plain: c, reads: [c], unknown: null };
}

export function unknownVal(reason: string, reads: readonly TableColumn[] = []): Val {
  return { plain: null, reads, unknown: reason };
}

export function uniqueColumns(cols: Iterable<TableColumn>): TableColumn[] {
  const seen = new Map<string, TableColumn>();
  for (const c of cols) seen.set(`${c.oid}.${c.attnum}`, { oid: c.oid, attnum: c.attnum });
  return [...seen.values()];
}

/** What a value computed from all of `vals` is made of: never a plain reference. */
export function merge(vals: readonly Val[]): Val {
  if (vals.length === 0) return EMPTY;
  return { plain: null, reads: uniqueColumns(vals.flatMap((v) => v.reads)), unknown: vals.find((v) => v.unknown !== null)?.unknown ?? null };
}

export function toSource(v: Val): ColumnSource {
  if (v.unknown !== null) return { kind: 'unknown', reason: v.unknown, reads: v.reads };
  if (v.plain !== null) return { kind: 'column', oid: v.plain.oid, attnum: v.plain.attnum };
  return { kind: 'expression', reads: v.reads };
}

export function fromSource(s: ColumnSource): Val {
  if (s.kind === 'column') return plainVal(s);
  if (s.kind === 'expression') return { plain: null, reads: s.reads, unknown: null };
  return unknownVal(s.reason, s.reads);
}

/** `a.b.c` as written, for messages. */
export function dotted(parts: readonly string[]): string {
  return parts.map((p) => (/^[a-z_][a-z0-9_$]*$/.test(p) ? p : `"${p.replace(/"/g, '""')}"`)).join('.');
}

/** The strings of a list of String nodes (names, column aliases). */
export function names(list: readonly Node[] | undefined): string[] {
  return (list ?? []).map((n) => ('String' in n ? n.String.sval ?? '' : ''));
}

const MAX_VIEW_DEPTH = 32;

/** The per-statement state: the catalog, the session, and everything collected so far. */
export class Analysis {
  readonly filters: FilterUse[] = [];
  readonly flows: Flow[] = [];
  readonly reasons: string[] = [];
  readonly needs: CatalogNeed[] = [];
  viewDepth = 0;

  constructor(
    readonly catalog: Catalog,
    readonly session: SessionNames,
    /** Parses a view's definition (one SELECT), or null if it does not parse as one statement. */
    readonly parseView: (text: string) => Node | null,
  ) {}

  /** The same catalog, for a view's definition: only pg_catalog on the path, as it was printed. */
  forView(): Analysis | null {
    if (this.viewDepth >= MAX_VIEW_DEPTH) return null;
    const a = new Analysis(this.catalog, { searchPath: ['pg_catalog'], tempSchema: null }, this.parseView);
    a.viewDepth = this.viewDepth + 1;
    return a;
  }

  /** Takes in what a view's analysis collected. */
  absorb(other: Analysis): void {
    this.filters.push(...other.filters);
    this.flows.push(...other.flows);
    this.reasons.push(...other.reasons);
    this.needs.push(...other.needs);
  }

  uncertain(reason: string): void {
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }

  filter(v: Val, clause: FilterClause, direct: boolean): void {
    if (v.unknown !== null) this.uncertain(v.unknown);
    for (const c of v.reads) this.filters.push({ ...c, clause, direct: direct && v.plain !== null });
  }

  flow(v: Val, into: FlowTarget): void {
    if (v.unknown !== null) this.uncertain(v.unknown);
    for (const c of v.reads) this.flows.push({ ...c, into });
  }

  /** Schemas searched for a relation: the temporary one first unless listed, then pg_catalog unless listed. */
  private schemas(forRelation: boolean): { schemas: string[]; anyTemp: boolean } {
    if (this.session.user === undefined && this.session.searchPath.includes('$user')) {
      this.uncertain('the session user is not known, so "$user" in the search_path cannot be resolved');
    }
    const path = this.session.searchPath.flatMap((s) => (s === '$user' ? (this.session.user === undefined ? [] : [this.session.user]) : [s]));
    const out: string[] = [];
    let anyTemp = false;
    const temp = (): void => {
      if (!forRelation) return;
      if (this.session.tempSchema === undefined) anyTemp = true;
      else if (this.session.tempSchema !== null) out.push(this.session.tempSchema);
    };
    if (!path.includes('pg_temp')) temp();
    if (!path.includes('pg_catalog')) out.push('pg_catalog');
    for (const s of path) {
      if (s === 'pg_temp') temp();
      else out.push(s);
    }
    return { schemas: out, anyTemp };
  }

  /** A relation as the server finds it, or a reason why not. */
  relation(schema: string | undefined, name: string): CatalogRelation | string {
    if (schema !== undefined) {
      if (schema === 'pg_temp' && this.session.tempSchema === undefined) return 'the session\'s temporary schema is not known';
      if (schema === 'pg_temp' && this.session.tempSchema === null) return `relation ${dotted([schema, name])} does not exist`;
      const s = schema === 'pg_temp' && typeof this.session.tempSchema === 'string' ? this.session.tempSchema : schema;
      const r = this.catalog.relation(s, name);
      if (r === undefined) return this.need('relation', s, name);
      return r ?? `relation ${dotted([schema, name])} does not exist`;
    }
    const { schemas, anyTemp } = this.schemas(true);
    if (anyTemp) {
      const t = this.catalog.relation('pg_temp', name);
      if (t === undefined) return this.need('relation', 'pg_temp', name);
      if (t !== null) return `a temporary table named ${dotted([name])} may shadow the name in this session`;
    }
    for (const s of schemas) {
      const r = this.catalog.relation(s, name);
      if (r === undefined) return this.need('relation', s, name);
      if (r === null) continue;
      if (s === 'pg_catalog' || s === this.session.tempSchema) return r;
      // The server leaves schemas the user may not use out of the search_path.
      const user = this.session.user;
      if (user === undefined) return `the user is not known, so whether it may use schema ${dotted([s])} is not either`;
      const usable = this.catalog.schemaUsable(s, user);
      if (usable === undefined) return this.need('usage', s, user);
      if (usable === null) return `role ${dotted([user])} is not known`;
      if (usable) return r;
    }
    return `relation ${dotted([name])} does not exist`;
  }

  /** The functions a call of `parts` with `args` arguments may mean, or why none can be told. */
  functionCandidates(parts: readonly string[], args: number): CatalogFunction[] | string {
    const name = parts[parts.length - 1] ?? '';
    const schemas = parts.length > 1 ? [parts[parts.length - 2] ?? ''] : this.schemas(false).schemas;
    const found: CatalogFunction[] = [];
    for (const s of schemas) {
      const fs = this.catalog.functions(s, name);
      if (fs === undefined) return this.need('function', s, name);
      found.push(...callable(fs, args));
    }
    return found.length > 0 ? found : `function ${dotted(parts)} with ${args} argument(s) is not known`;
  }

  /** Null when a call of `parts` with `args` arguments computes from its arguments only, else why not. */
  functionProblem(parts: readonly string[], args: number): string | null {
    const found = this.functionCandidates(parts, args);
    if (typeof found === 'string') return found;
    const reader = found.find((f) => f.mayReadTables);
    return reader === undefined ? null : `function ${dotted([reader.schema, reader.name])} may read tables`;
  }

  operatorProblem(parts: readonly string[]): string | null {
    const name = parts[parts.length - 1] ?? '';
    const schemas = parts.length > 1 ? [parts[parts.length - 2] ?? ''] : this.schemas(false).schemas;
    let any = false;
    for (const s of schemas) {
      const b = this.catalog.operatorIsBuiltin(s, name);
      if (b === undefined) return this.need('operator', s, name);
      if (b === false) return `operator ${dotted([s])}.${name} is user-defined`;
      if (b === true) any = true;
    }
    return any ? null : `operator ${name} is not known`;
  }

  typeProblem(parts: readonly string[]): string | null {
    const name = parts[parts.length - 1] ?? '';
    const schemas = parts.length > 1 ? [parts[parts.length - 2] ?? ''] : this.schemas(false).schemas;
    for (const s of schemas) {
      const b = this.catalog.typeIsBuiltin(s, name);
      if (b === undefined) return this.need('type', s, name);
      if (b === false) return `type ${dotted([s, name])} is user-defined: a cast to it may run any code`;
      if (b === true) return null;
    }
    return `type ${dotted(parts)} is not known`;
  }

  private need(what: CatalogNeed['what'], schema: string, name: string): string {
    this.needs.push({ what, schema, name });
    return `${what} ${dotted([schema, name])} is not loaded from the catalog`;
  }
}
