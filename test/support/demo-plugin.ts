/**
 * A third plugin on the seam, as time travel will be: it serves settings of its own (`demo.x`)
 * itself, in both protocols, and sees every statement of a session only while the setting is set.
 */
import { PgError } from '../../proxy/errors.js';
import type { Plugin, SessionInfo, Statement, StatementDecision } from '../../plugins/hooks.js';

const NAME = 'demo';
const SET = /^\s*set\s+demo\.x\s*(?:=|to)\s*'([^']*)'\s*;?\s*$/i;
const SHOW = /^\s*show\s+demo\.x\s*;?\s*$/i;
const RESET = /^\s*reset\s+demo\.x\s*;?\s*$/i;

export interface DemoPlugin extends Plugin {
  /** Statement hook calls, by statement text: which statements the plugin was asked about. */
  readonly asked: string[];
}

/** Answers at Parse (or Query) what the statement will be; what it does happens when it runs. */
function answer(s: SessionInfo, text: string): StatementDecision {
  const set = SET.exec(text);
  if (set) {
    const value = set[1]!;
    if (value === 'forbidden') return { action: 'deny', error: new PgError('22023', 'invalid value for parameter "demo.x": "forbidden"') };
    return {
      action: 'answer',
      result: {
        tag: 'SET',
        run: () => {
          s.pluginState.set(NAME, value);
          // From now on the session's statements are this plugin's to see.
          s.statementPlugins.add(NAME);
          return { tag: 'SET' };
        },
      },
    };
  }
  if (SHOW.test(text)) {
    const show = (): { rows: (string | null)[][]; tag: string } => {
      const value = s.pluginState.get(NAME);
      return { rows: [[typeof value === 'string' ? value : null]], tag: 'SHOW' };
    };
    return { action: 'answer', result: { columns: ['demo.x'], tag: 'SHOW', run: show } };
  }
  if (RESET.test(text)) {
    const reset = (): { tag: string } => {
      s.pluginState.delete(NAME);
      s.statementPlugins.delete(NAME);
      return { tag: 'RESET' };
    };
    return { action: 'answer', result: { tag: 'RESET', run: reset } };
  }
  return { action: 'pass' };
}

export function demoPlugin(): DemoPlugin {
  const asked: string[] = [];
  return {
    name: NAME,
    order: -100,
    asked,
    statementWords: ['demo.x'],
    statement(s: SessionInfo, st: Statement): StatementDecision {
      asked.push(st.text ?? '');
      // A Bind of a statement answered at its Parse runs the Parse's answer at each Execute.
      return st.kind === 'bind' ? { action: 'pass' } : answer(s, st.text);
    },
  };
}
