/**
 * Whether a statement that names `provenance.` (or holds a DDL keyword) may change the registry
 * of transforms, so that the client's ReadyForQuery waits for the registry to be read again.
 * Decided on PostgreSQL's own parse of the text: settings (`SET`, `RESET`, `SHOW` of
 * `provenance.…`) and reads never change it; calls of the schema's functions, writes to its tables
 * (also in a WITH of a SELECT), and every other kind of statement (DDL among them: a table may
 * take a dropped target's name) may. A change this misses (a function that is not schema-qualified)
 * still applies moments later, by the registry's NOTIFY.
 */
import type { SqlAnalysis } from '../sql/analyser.js';

const SCHEMA = 'provenance';
/** Statements that change nothing by themselves: only what they call or hold may. */
const READS = new Set(['SelectStmt', 'VariableSetStmt', 'VariableShowStmt']);
const WRITES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

export function mayChangeRegistry(analysis: SqlAnalysis): boolean {
  if (!analysis.ok) return true;
  return analysis.readings.some((reading) => reading.some((statement) => {
    const kind = Object.keys(statement)[0];
    if (kind === undefined || !READS.has(kind)) return true;
    return touchesSchema(statement, false);
  }));
}

/** A call of a function of the schema, or a relation of it written to. */
function touchesSchema(node: unknown, writing: boolean): boolean {
  if (Array.isArray(node)) return node.some((n) => touchesSchema(n, writing));
  if (node === null || typeof node !== 'object') return false;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === 'FuncCall' && schemaOf(value) === SCHEMA) return true;
    if (key === 'schemaname' && writing && value === SCHEMA) return true;
    if (touchesSchema(value, writing || WRITES.has(key))) return true;
  }
  return false;
}

/** The schema a FuncCall names (`funcname` is a list of String nodes), or null. */
function schemaOf(call: unknown): string | null {
  const names = (call as { funcname?: { String?: { sval?: string } }[] }).funcname;
  return names && names.length > 1 ? names[0]?.String?.sval ?? null : null;
}
