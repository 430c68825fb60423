/**
 * Whether a parsed statement only reads: what a session that must not write (one reading the
 * past) may run. Decided on an allow-list of statement kinds, so that a kind not listed (a new
 * one, or one this file does not know) counts as a write.
 */
import type { Node } from './analyser.js';

/** Statement kinds that read, set or show settings, or steer transactions and cursors. */
const READING = new Set([
  'SelectStmt', 'TransactionStmt', 'VariableSetStmt', 'VariableShowStmt', 'ExplainStmt', 'DeclareCursorStmt',
  'FetchStmt', 'ClosePortalStmt', 'DiscardStmt', 'DeallocateStmt', 'ListenStmt', 'UnlistenStmt', 'CopyStmt',
]);

/** Nodes that write wherever they stand (a data-modifying CTE, a SELECT … INTO, a row lock). */
const WRITING_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'IntoClause', 'LockingClause']);

/** Built-ins that change a sequence. */
const WRITING_FUNCTIONS = new Set(['nextval', 'setval']);

const WORDS: Readonly<Record<string, string>> = {
  InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE', IntoClause: 'SELECT INTO',
  LockingClause: 'SELECT FOR UPDATE/SHARE', CallStmt: 'CALL', DoStmt: 'DO', CopyStmt: 'COPY FROM',
};

function kindOf(node: Node): string {
  return Object.keys(node)[0] ?? '';
}

/** The words of a statement kind for a message: `CreateStmt` reads `CREATE`. */
function words(kind: string): string {
  return WORDS[kind] ?? kind.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/** The first writing node or function inside a tree, as words for a message; null if none. */
function writeInside(tree: unknown): string | null {
  if (Array.isArray(tree)) {
    for (const item of tree) {
      const w = writeInside(item);
      if (w !== null) return w;
    }
    return null;
  }
  if (tree === null || typeof tree !== 'object') return null;
  for (const [k, v] of Object.entries(tree as Record<string, unknown>)) {
    if (WRITING_NODES.has(k)) return words(k);
    // SELECT … INTO keeps its target in a field, not a node of its own.
    if (k === 'intoClause') return words('IntoClause');
    if (k === 'FuncCall') {
      const names = (v as { funcname?: { String?: { sval?: string } }[] }).funcname ?? [];
      const name = names[names.length - 1]?.String?.sval;
      const schema = names.length > 1 ? names[names.length - 2]?.String?.sval : 'pg_catalog';
      if (name !== undefined && WRITING_FUNCTIONS.has(name) && schema === 'pg_catalog') return `${name}()`;
    }
    const w = writeInside(v);
    if (w !== null) return w;
  }
  return null;
}

/**
 * What makes a statement write, in words for a message (`INSERT`, `CREATE TABLE`, `nextval()`),
 * or null when it only reads.
 */
export function writeOf(stmt: Node): string | null {
  const kind = kindOf(stmt);
  if (!READING.has(kind)) return words(kind);
  const body = (stmt as unknown as Record<string, Record<string, unknown>>)[kind] ?? {};
  if (kind === 'CopyStmt') return body['is_from'] === true ? 'COPY FROM' : writeInside(body['query']);
  // EXPLAIN without ANALYZE runs nothing, but its statement is still rewritten: a write cannot be.
  if (kind === 'ExplainStmt') return body['query'] === undefined ? null : writeOf(body['query'] as Node);
  return writeInside(body);
}

