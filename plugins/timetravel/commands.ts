/**
 * The statements that change what an as-of session is: SET, RESET and SHOW of
 * `provenance.as_of` and `provenance.as_user` (answered by the proxy), and those the server runs
 * that change them too (RESET ALL, DISCARD ALL) or decide whether a change lasts (transaction
 * control), and those that prepare or run a query later (DEALLOCATE, DECLARE, FETCH, CLOSE). Read from PostgreSQL's parse tree; setting names are case-insensitive, as the server's.
 */
import type { Node } from '../sql/analyser.js';

export const AS_OF = 'provenance.as_of';
export const AS_USER = 'provenance.as_user';
export type SettingName = typeof AS_OF | typeof AS_USER;

export type SettingCommand =
  | { readonly kind: 'set'; readonly name: SettingName; readonly value: string | 'default'; readonly local: boolean }
  | { readonly kind: 'show'; readonly name: SettingName };

export type Effect =
  | { readonly kind: 'begin' }
  | { readonly kind: 'end'; readonly commit: boolean }
  | { readonly kind: 'savepoint' | 'rollback to' | 'release'; readonly name: string }
  | { readonly kind: 'reset all' }
  | { readonly kind: 'discard all' }
  | { readonly kind: 'deallocate'; readonly name: string | null }
  | { readonly kind: 'declare'; readonly name: string; readonly hold: boolean }
  | { readonly kind: 'fetch'; readonly name: string }
  | { readonly kind: 'close'; readonly name: string | null };

/** DECLARE's option bit for WITH HOLD (CURSOR_OPT_HOLD): the cursor outlives its transaction. */
const CURSOR_OPT_HOLD = 0x20;

function settingName(name: string | undefined): SettingName | null {
  const n = (name ?? '').toLowerCase();
  return n === AS_OF || n === AS_USER ? n : null;
}

/** Thrown for a SET of one of the settings with a value the server would not take either. */
export class BadSetting extends Error {}

/** A SET, RESET or SHOW of one of the proxy's settings; null for any other statement. */
export function settingCommand(stmt: Node): SettingCommand | null {
  if ('VariableShowStmt' in stmt) {
    const name = settingName(stmt.VariableShowStmt.name);
    return name === null ? null : { kind: 'show', name };
  }
  if (!('VariableSetStmt' in stmt)) return null;
  const v = stmt.VariableSetStmt;
  const name = settingName(v.name);
  if (name === null) return null;
  const local = v.is_local === true;
  switch (v.kind) {
    case 'VAR_SET_DEFAULT':
    case 'VAR_RESET':
      return { kind: 'set', name, value: 'default', local };
    case 'VAR_SET_VALUE': {
      const args = v.args ?? [];
      if (args.length !== 1) throw new BadSetting(`SET ${name} takes only one argument`);
      const c = (args[0] as { A_Const?: { sval?: { sval?: string }; ival?: { ival?: number }; fval?: { fval?: string } } }).A_Const;
      const value = c?.sval?.sval ?? c?.fval?.fval ?? (c?.ival !== undefined ? String(c.ival.ival ?? 0) : undefined);
      if (value === undefined) throw new BadSetting(`invalid value for parameter "${name}"`);
      return { kind: 'set', name, value, local };
    }
    default:
      throw new BadSetting(`SET ${name} does not take this form`);
  }
}

/** What a statement the server runs does to the proxy's settings. */
export function effectOf(stmt: Node): Effect | null {
  if ('TransactionStmt' in stmt) {
    const t = stmt.TransactionStmt;
    switch (t.kind) {
      case 'TRANS_STMT_BEGIN':
      case 'TRANS_STMT_START':
        return { kind: 'begin' };
      case 'TRANS_STMT_COMMIT':
      case 'TRANS_STMT_PREPARE':
        return { kind: 'end', commit: true };
      case 'TRANS_STMT_ROLLBACK':
        return { kind: 'end', commit: false };
      case 'TRANS_STMT_SAVEPOINT':
        return { kind: 'savepoint', name: t.savepoint_name ?? '' };
      case 'TRANS_STMT_ROLLBACK_TO':
        return { kind: 'rollback to', name: t.savepoint_name ?? '' };
      case 'TRANS_STMT_RELEASE':
        return { kind: 'release', name: t.savepoint_name ?? '' };
      default:
        return null;
    }
  }
  if ('VariableSetStmt' in stmt && stmt.VariableSetStmt.kind === 'VAR_RESET_ALL') return { kind: 'reset all' };
  if ('DiscardStmt' in stmt && stmt.DiscardStmt.target === 'DISCARD_ALL') return { kind: 'discard all' };
  if ('DeallocateStmt' in stmt) return { kind: 'deallocate', name: stmt.DeallocateStmt.name ?? null };
  if ('DeclareCursorStmt' in stmt) {
    const d = stmt.DeclareCursorStmt;
    return { kind: 'declare', name: d.portalname ?? '', hold: ((d.options ?? 0) & CURSOR_OPT_HOLD) !== 0 };
  }
  if ('FetchStmt' in stmt) return { kind: 'fetch', name: stmt.FetchStmt.portalname ?? '' };
  if ('ClosePortalStmt' in stmt) return { kind: 'close', name: stmt.ClosePortalStmt.portalname ?? null };
  return null;
}

/**
 * The proxy's settings given in the startup packet's `options` (`-c provenance.as_of=…` or
 * `--provenance.as_of=…`), split as the server splits them: on spaces, a backslash keeping the
 * character after it.
 */
export function startupSettings(options: string | undefined): Map<SettingName, string> {
  const out = new Map<SettingName, string>();
  if (options === undefined) return out;
  const words: string[] = [];
  let word = '';
  let has = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) {
      word += options[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) words.push(word);
      word = '';
      has = false;
    } else {
      word += ch;
      has = true;
    }
  }
  if (has) words.push(word);
  for (let i = 0; i < words.length; i++) {
    let item: string | undefined;
    const w = words[i]!;
    if (w === '-c') item = words[++i];
    else if (w.startsWith('-c')) item = w.slice(2);
    else if (w.startsWith('--')) item = w.slice(2);
    const eq = item?.indexOf('=') ?? -1;
    if (item === undefined || eq < 0) continue;
    const name = settingName(item.slice(0, eq).replace(/-/g, '_'));
    if (name !== null) out.set(name, item.slice(eq + 1));
  }
  return out;
}
