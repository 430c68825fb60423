/**
 * What a client statement does to the role its session runs as, read with PostgreSQL's own parser,
 * so comments between the words of a SET ROLE, quoting and odd spacing read as the server reads
 * them. Only texts holding one of a few words are parsed at all.
 */
import type { Node, SqlAnalyser } from '../sql/analyser.js';

export type RoleEffect =
  /** One statement, SET [SESSION | LOCAL] ROLE; role null: NONE (back to the session user). */
  | { readonly kind: 'set'; readonly role: string | null; readonly local: boolean }
  /** One statement, RESET ROLE or SET ROLE TO DEFAULT. */
  | { readonly kind: 'reset' }
  /** ROLLBACK TO a savepoint: what it undid is not followed. */
  | { readonly kind: 'rollback-to' }
  /** Anything that may change the role some other way, or that the proxy cannot read. */
  | { readonly kind: 'unknown' }
  | { readonly kind: 'none' };

/**
 * A text without these words (in any case) cannot change the role: SET/RESET ROLE, set_config,
 * SESSION AUTHORIZATION, RESET ALL and DISCARD ALL all hold one, and keywords have no escapes.
 */
const MAY_MATTER = /role|set_config|authorization|reset|discard|rollback/i;

export function roleEffect(sql: SqlAnalyser, text: string): RoleEffect {
  if (!MAY_MATTER.test(text)) return { kind: 'none' };
  const analysis = sql.analyse(text);
  if (!analysis.ok) return { kind: 'unknown' };
  // Read with standard_conforming_strings off too, a text may hold other statements: both
  // readings must agree.
  const effects = analysis.readings.map(readingEffect);
  const first = effects[0] ?? { kind: 'none' };
  return effects.every((e) => JSON.stringify(e) === JSON.stringify(first)) ? first : { kind: 'unknown' };
}

/** Whether a text is a COMMIT (true), a ROLLBACK (false), or neither (null), as the server reads it. */
export function endsTransaction(sql: SqlAnalyser, text: string): boolean | null {
  const analysis = sql.analyse(text);
  if (!analysis.ok || analysis.readings.length !== 1) return null;
  const stmts = analysis.readings[0]!;
  if (stmts.length !== 1) return null;
  const kind = transactionKind(stmts[0]!);
  // COMMIT of a failed transaction rolls back: the caller knows whether it failed.
  if (kind === 'TRANS_STMT_COMMIT') return true;
  if (kind === 'TRANS_STMT_ROLLBACK') return false;
  return null;
}

function readingEffect(stmts: readonly Node[]): RoleEffect {
  const one = stmts.length === 1 ? stmts[0]! : null;
  if (one !== null) {
    const set = variableSet(one);
    if (set && set.name === 'role') {
      if (set.kind === 'VAR_RESET' || set.kind === 'VAR_SET_DEFAULT') return { kind: 'reset' };
      const value = set.args?.[0]?.A_Const?.sval?.sval;
      if (set.kind === 'VAR_SET_VALUE' && typeof value === 'string') {
        return { kind: 'set', role: value === 'none' ? null : value, local: set.is_local === true };
      }
      return { kind: 'unknown' };
    }
    if (transactionKind(one) === 'TRANS_STMT_ROLLBACK_TO') return { kind: 'rollback-to' };
  }
  return stmts.some(mayChangeRole) ? { kind: 'unknown' } : { kind: 'none' };
}

interface VariableSet {
  readonly kind?: string;
  readonly name?: string;
  readonly is_local?: boolean;
  readonly args?: readonly { readonly A_Const?: { readonly sval?: { readonly sval?: string } } }[];
}

function variableSet(stmt: Node): VariableSet | null {
  return ((stmt as { VariableSetStmt?: VariableSet }).VariableSetStmt) ?? null;
}

function transactionKind(stmt: Node): string | null {
  return (stmt as { TransactionStmt?: { kind?: string } }).TransactionStmt?.kind ?? null;
}

/** A statement that sets or resets the role, the session user or everything, or calls set_config. */
function mayChangeRole(stmt: Node): boolean {
  const set = variableSet(stmt);
  if (set && (set.kind === 'VAR_RESET_ALL' || set.name === 'role' || set.name === 'session_authorization')) return true;
  if ((stmt as { DiscardStmt?: { target?: string } }).DiscardStmt?.target === 'DISCARD_ALL') return true;
  if (transactionKind(stmt) === 'TRANS_STMT_ROLLBACK_TO') return true;
  return callsSetConfig(stmt);
}

/** set_config may name its setting in a parameter: any call of it counts. */
function callsSetConfig(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(callsSetConfig);
  if (node === null || typeof node !== 'object') return false;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === 'FuncCall') {
      const names = (value as { funcname?: { String?: { sval?: string } }[] }).funcname ?? [];
      if (names.at(-1)?.String?.sval === 'set_config') return true;
    }
    if (callsSetConfig(value)) return true;
  }
  return false;
}
