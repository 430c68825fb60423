/**
 * Carries the columns a row transform reads out to a statement's result: from each table with a
 * row transform whose rows reach the output — named in the FROM of the SELECT the statement
 * returns, or of a subquery or CTE in that FROM, nested as deep as it goes — each column it reads
 * is added to that SELECT's list, and every enclosing SELECT refers to it in turn, up to the
 * statement's own list. The server's RowDescription then gives each column its table's origin, so
 * the transform sees it and the proxy strips it. `select id from (select id from orders) s`
 * becomes `select id, s.x2 as y1 from (select id, orders.amount as x2 from orders) s`.
 *
 * Where a table's rows reach the output in a way the rewrite cannot follow (a view's query, a
 * recursive CTE, a bare name the server may resolve to another schema's table, a join alias that
 * hides the table's name), it is reported unread: the caller refuses the statement.
 */
import type { Node } from 'libpg-query';
import type { NamePath } from './relation-names.js';
import { tableRef, type ReadTable, type ReadTables } from './read-tables.js';
import { selectForms, type RangeVarBody, type RowForm, type SelectBody } from './select-forms.js';
import { quote, refOf, selected, selectListEnd, stars, type Tokens } from './select-text.js';

export interface Edit {
  readonly at: number;
  readonly insert: string;
  /** The tables whose columns it carries. */
  readonly tables: readonly ReadTable[];
}

export interface CarryEnv {
  readonly tables: ReadTables;
  readonly path: NamePath;
  readonly aggregates: ReadonlySet<string>;
  readonly tokens: () => Tokens;
  /** A fresh name: for the statement's own list (`top`), or for a nested SELECT's. */
  readonly name: (top: boolean) => string;
  readonly edits: Edit[];
  /** SELECTs whose rows reach the statement's output one by one (as far as the rewrite follows them). */
  readonly carried: Set<SelectBody>;
  readonly unread: (t: ReadTable, why: string) => void;
  readonly note: (t: ReadTable, form: RowForm) => void;
  /** A subquery that stands for a table, its columns by name (an as-of session's history subquery; see as-of-tables.ts). */
  readonly standsFor?: (body: SelectBody) => ReadTable | null;
}

/** What a SELECT carries out: the names of the columns added to its list, and whose they are. */
interface Carried {
  readonly names: readonly string[];
  readonly tables: readonly ReadTable[];
  /** For the statement's own SELECT: how many added columns its output holds, stars' included. */
  readonly output: number;
}

interface CteDef {
  readonly query: Node | undefined;
  readonly recursive: boolean;
  readonly scope: Scope | null;
  result?: Carried;
}

interface Scope {
  readonly ctes: ReadonlyMap<string, CteDef>;
  readonly parent: Scope | null;
}

const NONE: Carried = { names: [], tables: [], output: 0 };

function withScope(w: SelectBody['withClause'], parent: Scope | null): Scope | null {
  if (w === undefined || (w.ctes?.length ?? 0) === 0) return parent;
  const ctes = new Map<string, CteDef>();
  const scope: Scope = { ctes, parent };
  const recursive = w.recursive === true;
  for (const n of w.ctes ?? []) {
    if (!('CommonTableExpr' in n)) continue;
    const c = n.CommonTableExpr;
    // A CTE sees the ones before it; under RECURSIVE, every one of its list.
    const visible: Scope = recursive ? scope : { ctes: new Map(ctes), parent };
    ctes.set(c.ctename ?? '', { query: c.ctequery, recursive, scope: visible });
  }
  return scope;
}

function findCte(scope: Scope | null, name: string): CteDef | undefined {
  for (let s = scope; s !== null; s = s.parent) {
    const d = s.ctes.get(name);
    if (d !== undefined) return d;
  }
  return undefined;
}

/** The tables with a row transform a tree names anywhere (for what cannot be carried). */
function namedTables(env: CarryEnv, node: unknown): ReadTable[] {
  const out = new Set<ReadTable>();
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (n === null || typeof n !== 'object') return;
    const rv = (n as { RangeVar?: RangeVarBody }).RangeVar;
    if (rv !== undefined) {
      const r = tableRef(env.tables, rv.schemaname, rv.relname ?? '', env.path);
      if (r !== null) for (const t of r.kind === 'table' ? [r.table] : r.tables) out.add(t);
    }
    Object.values(n).forEach(walk);
  };
  walk(node);
  return [...out];
}

function carryCte(env: CarryEnv, def: CteDef): Carried {
  if (def.result !== undefined) return def.result;
  def.result = NONE;
  const q = def.query;
  if (def.recursive) {
    for (const t of namedTables(env, q)) env.unread(t, 'it is read in a recursive CTE');
  } else if (q !== undefined && 'SelectStmt' in q) {
    def.result = carryBody(env, q.SelectStmt, def.scope, false);
  } else if (q !== undefined) {
    // A data-modifying CTE hands back the rows it wrote, as RETURNING does.
    for (const t of namedTables(env, q)) env.note(t, 'RETURNING');
  }
  return def.result;
}

/** The column names a RangeVar's alias list gives the table's columns (the rest keep theirs). */
function aliasedName(t: ReadTable, rv: RangeVarBody, column: string): string {
  const aliases = (rv.alias?.colnames ?? []).map((n) => ('String' in n ? n.String.sval ?? '' : ''));
  if (aliases.length === 0) return column;
  const position = [...t.table.columnNames.entries()].sort((a, b) => a[0] - b[0]).findIndex(([, n]) => n === column);
  return aliases[position] ?? column;
}

/**
 * Carries the read columns of the tables in `s`'s FROM (and of the subqueries and CTEs there) into
 * its select list. `top`: the statement's own SELECT, whose list the client sees.
 */
export function carryBody(env: CarryEnv, s: SelectBody, outer: Scope | null, top: boolean): Carried {
  env.carried.add(s);
  if (s.op !== undefined && s.op !== 'SETOP_NONE') return NONE;
  const forms = selectForms(s, env.aggregates);
  // Rows that are not the FROM's rows one by one: there is nothing to carry (the forms are refused or documented).
  if (forms.includes('aggregate') || forms.includes('DISTINCT')) return NONE;
  const scope = withScope(s.withClause, outer);
  const standsFor = (q: Node | undefined): ReadTable | null => (q !== undefined && 'SelectStmt' in q ? env.standsFor?.(q.SelectStmt) ?? null : null);
  const names: string[] = [];
  const tables: ReadTable[] = [];
  /** Added columns each FROM item outputs, by the name it is referred to (for stars). */
  const exposed = new Map<string, number>();
  let insert = '';
  const first = s.fromClause?.length === 1 ? s.fromClause[0] : undefined;
  const only = first !== undefined && ('RangeVar' in first || ('RangeSubselect' in first && standsFor(first.RangeSubselect.subquery) !== null));
  const refer = (ref: string, got: Carried): void => {
    exposed.set(ref, got.names.length);
    for (const n of got.names) {
      const mine = env.name(top);
      insert += `, ${quote(ref)}.${quote(n)} AS ${quote(mine)}`;
      names.push(mine);
    }
    tables.push(...got.tables);
  };
  const visit = (n: Node | undefined, hidden: boolean): void => {
    if (n === undefined) return;
    if ('JoinExpr' in n) {
      // A join with an alias hides the names of the tables inside it.
      const h = hidden || n.JoinExpr.alias !== undefined;
      visit(n.JoinExpr.larg, h);
      visit(n.JoinExpr.rarg, h);
      return;
    }
    if ('RangeSubselect' in n) {
      const q = n.RangeSubselect.subquery;
      if (q === undefined || !('SelectStmt' in q)) return;
      const stands = standsFor(q);
      if (stands !== null) {
        env.carried.add(q.SelectStmt);
        const a = n.RangeSubselect.alias;
        if (a?.aliasname === undefined) env.unread(stands, 'it is read in a subquery without an alias');
        else table(stands, { relname: a.aliasname, alias: a }, hidden);
        return;
      }
      const got = carryBody(env, q.SelectStmt, scope, false);
      const alias = n.RangeSubselect.alias?.aliasname;
      if (got.names.length === 0) {
        tables.push(...got.tables);
        return;
      }
      if (hidden || alias === undefined) {
        for (const t of got.tables) env.unread(t, 'it is read in a subquery whose columns cannot be referred to');
        return;
      }
      refer(alias, got);
      return;
    }
    if (!('RangeVar' in n)) return;
    const rv = n.RangeVar;
    const name = rv.relname ?? '';
    const cte = rv.schemaname === undefined ? findCte(scope, name) : undefined;
    if (cte !== undefined) {
      const got = carryCte(env, cte);
      if (got.names.length === 0) {
        tables.push(...got.tables);
        return;
      }
      if (hidden) {
        for (const t of got.tables) env.unread(t, 'it is read in a CTE inside a join with an alias');
        return;
      }
      refer(rv.alias?.aliasname ?? name, got);
      return;
    }
    const r = tableRef(env.tables, rv.schemaname, name, env.path);
    if (r === null) return;
    if (r.kind === 'view') {
      for (const t of r.tables) env.unread(t, `it is read through the view ${r.name}, whose query the proxy does not rewrite`);
      return;
    }
    if (r.kind === 'unsure') {
      for (const t of r.tables) {
        env.unread(t, `the bare name ${name} is shared by several schemas, and the proxy does not know which one this session's search_path resolves it to`);
      }
      return;
    }
    table(r.table, rv, hidden);
  };
  const table = (t: ReadTable, rv: RangeVarBody, hidden: boolean): void => {
    if (hidden) {
      env.unread(t, 'it is read inside a join with an alias');
      return;
    }
    // Every reference counts, whether it needs columns or not: a table read twice is told apart by the caller.
    tables.push(t);
    const have = top ? selected(s, rv, only) : new Set<string>();
    if (have === 'all') return;
    const ref = refOf(rv).map(quote).join('.');
    for (const col of t.reads) {
      if (have.has(col)) continue;
      const mine = env.name(top);
      insert += `, ${ref}.${quote(aliasedName(t, rv, col))} AS ${quote(mine)}`;
      names.push(mine);
    }
  };
  for (const n of s.fromClause ?? []) visit(n, false);
  if (insert === '') return { names: [], tables, output: 0 };
  const at = selectListEnd(s, env.tokens());
  if (at === null) {
    for (const t of tables) env.unread(t, 'the select list could not be extended');
    return { names: [], tables, output: 0 };
  }
  env.edits.push({ at, insert, tables });
  let output = names.length;
  if (top) {
    for (const star of stars(s)) {
      output += star === '*' ? [...exposed.values()].reduce((a, b) => a + b, 0) : exposed.get(star) ?? 0;
    }
  }
  return { names, tables, output };
}
