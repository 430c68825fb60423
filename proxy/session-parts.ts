/**
 * What the parts of one session share: its request units in order, the answers it follows, the
 * statements it traces and the output to its client. The client side (session.ts) adds units, the
 * server side (server-relay.ts, result-stream.ts) takes them off as the upstream answers them.
 *
 * A request unit is what ends with one ReadyForQuery: a simple Query, a FunctionCall, or the
 * extended-protocol messages up to Sync.
 */
import type { PluginHost } from '../plugins/host.js';
import type { SessionInfo, StatementTrace } from '../plugins/hooks.js';
import type { TxStatus } from './wire/backend-messages.js';
import type { AnswerFollower, UnitAnswers } from './portals.js';
import type { StatementTraces } from './statement-traces.js';
import type { ClientOutput } from './client-output.js';

export type SessionState = SessionInfo & { backendPid: number; serverParams: Map<string, string> };

/** A unit the proxy answers itself; its bytes are made when its turn comes (they end with ReadyForQuery). */
export type Unit =
  | {
      readonly kind: 'upstream';
      readonly suppressReady?: boolean;
      /** The answers to Describes and Executes of this unit the session follows (see portals.ts). */
      readonly answers?: UnitAnswers | null;
      /** The client statements of this unit, while statements are tracked, in the order they run. */
      readonly statements?: StatementTrace[];
      /** A Query or Parse of it contained a word a plugin watches (see Plugin.unitWords). */
      readonly marked?: boolean;
      /** Told at its ReadyForQuery whether an error ended it (see statement-path.ts). */
      readonly onReady?: (failed: boolean) => void;
    }
  | { readonly kind: 'local'; readonly answer: (status: TxStatus) => Buffer[] };

/** The common unit: the upstream answers, nothing is added. Shared, so counting costs no allocation. */
export const PLAIN_UNIT: Unit = Object.freeze({ kind: 'upstream' });

export interface SessionParts {
  readonly info: SessionState;
  readonly plugins: PluginHost;
  /** Units sent and not answered yet, oldest first. */
  readonly units: Unit[];
  /** Which portal's description each Execute's rows have (see portals.ts). */
  readonly answers: AnswerFollower;
  readonly traces: StatementTraces;
  readonly output: ClientOutput;
}

/** The answers followed of the unit being answered: the oldest unit waiting, or the open one. */
export function answeredUnit(parts: SessionParts): UnitAnswers | undefined {
  const head = parts.units[0];
  return head ? (head.kind === 'upstream' ? head.answers ?? undefined : undefined) : parts.answers.openUnit;
}
