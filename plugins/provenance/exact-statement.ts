/**
 * The exact statement behind a result, recorded so that a recorded read can be replayed (README,
 * "HTTP": `POST /results/{id}/replay`): its text as the upstream got it and, for an Execute, the
 * parameters of its Bind with their formats and the types its Parse declared. Unlike the
 * normalised text every record carries, this keeps literals, so it is recorded only with
 * `--record-statements on`, in a table only provenance_admin reads.
 *
 * A result of a simple Query of several statements is recorded with its own statement's text and
 * which of the Query's statements it was (see query-statement.ts).
 *
 * A statement that cannot be replayed as recorded is recorded with the reason instead: a text or
 * parameters over the size limit, a FETCH or EXECUTE (reading a cursor or prepared statement of
 * their session), a statement whose Parse the proxy did not see.
 *
 * A chunk of a portal fetched in chunks (an Execute with a row limit) is recorded with its place
 * in the portal (see portal-chunks.ts), unless a chunk before it went unrecorded: then where it
 * starts is not known, and it is refused. A first chunk that held the whole result is the
 * statement's result, recorded as such.
 */
import type { StatementTrace } from '../hooks.js';
import { decodeBind } from '../../proxy/wire/frontend-messages.js';
import { NO_CHUNK, chunkOf, type ChunkFields } from './portal-chunks.js';
import { statementOfQuery } from './query-statement.js';

export interface ExactStatementOptions {
  /** Largest text, and largest sum of parameter sizes, recorded (bytes). */
  readonly limit: number;
}

/** The fields of an execution record that hold it (shared by the executions of a result). */
export interface ExactStatementFields extends ChunkFields {
  readonly exact_text: string | null;
  readonly exact_types: readonly number[] | null;
  readonly exact_formats: readonly number[] | null;
  /** Each value as bytea input (`\x` and hex); null for SQL NULL. */
  readonly exact_values: readonly (string | null)[] | null;
  /** Why the statement cannot be replayed; null when it can. */
  readonly exact_refusal: string | null;
  /** Which statement (0-based) of a simple Query of several it is, and how many the Query holds; null otherwise. */
  readonly exact_query_statement: number | null;
  readonly exact_query_statements: number | null;
}

/** Statements whose rows depend on what their session did before: a cursor, a prepared statement. */
const SESSION_BOUND = new Set(['FETCH', 'MOVE', 'EXECUTE']);
/** The same, by parse tree node (MOVE is a FetchStmt). */
const SESSION_BOUND_NODES: Readonly<Record<string, string>> = { FetchStmt: 'FETCH', ExecuteStmt: 'EXECUTE' };

const WHOLE = { exact_query_statement: null, exact_query_statements: null, ...NO_CHUNK } as const;

function refused(reason: string): ExactStatementFields {
  return { exact_text: null, exact_types: null, exact_formats: null, exact_values: null, exact_refusal: reason, ...WHOLE };
}

function sessionBound(operation: string): ExactStatementFields {
  return refused(`its statement (${operation}) reads what its session prepared or declared before`);
}

/** A result of statement `index` of a simple Query of several. */
function ofQuery(text: string, index: number): ExactStatementFields {
  const own = statementOfQuery(text, index);
  if (own === null) return refused('its statement is one of several in one simple Query, which the proxy could not split');
  const bound = SESSION_BOUND_NODES[own.kind];
  if (bound !== undefined) return sessionBound(bound);
  return {
    exact_text: own.text, exact_types: [], exact_formats: [], exact_values: [], exact_refusal: null,
    exact_query_statement: index, exact_query_statements: own.of, ...NO_CHUNK,
  };
}

/**
 * What is recorded of the statement `trace`; its shape says how many statements its text holds (a
 * simple Query may hold several) and its operation, `rows` how many rows its result had, and
 * `inQuery` which statement of a simple Query the result is of.
 */
export function exactStatementOf(
  trace: StatementTrace, shape: { readonly statements: number; readonly operation: string | null }, rows: number, opts: ExactStatementOptions,
  inQuery = 0,
): ExactStatementFields {
  const textBytes = Buffer.byteLength(trace.text);
  if (trace.text === '') return refused('the statement\'s text was not seen by the proxy');
  if (textBytes > opts.limit) return refused(`its statement (${textBytes} bytes) is over the recording limit of ${opts.limit} bytes`);
  if (shape.statements > 1 && !trace.binding) return ofQuery(trace.text, inQuery);
  if (shape.operation !== null && SESSION_BOUND.has(shape.operation)) return sessionBound(shape.operation);
  const b = trace.binding;
  if (!b) return { exact_text: trace.text, exact_types: [], exact_formats: [], exact_values: [], exact_refusal: null, ...WHOLE };
  const chunk = chunkOf(trace, b, rows);
  if (chunk === null) return refused('it is a chunk of a portal fetched in chunks, and a chunk before it was not recorded: where it starts is not known');
  let bind;
  try {
    bind = decodeBind(b.bind);
  } catch {
    return refused('its Bind could not be read');
  }
  const paramBytes = bind.params.reduce((n, v) => n + (v?.length ?? 0), 0);
  if (paramBytes > opts.limit) return refused(`its parameters (${paramBytes} bytes) are over the recording limit of ${opts.limit} bytes`);
  return {
    exact_text: trace.text,
    exact_types: b.paramTypes,
    exact_formats: bind.paramFormats,
    exact_values: bind.params.map((v) => (v === null ? null : `\\x${v.toString('hex')}`)),
    exact_refusal: null,
    exact_query_statement: null,
    exact_query_statements: null,
    ...chunk,
  };
}
