/**
 * The seam every feature plugs into: typed hooks on a session's life and on the messages that
 * cross it, each answering with a discriminated result. A plugin that declares no hook for a
 * kind of message costs nothing for it: those bytes are not decoded.
 */
import type { RowBatch } from '../proxy/wire/row-batch.js';
import type { PgError } from '../proxy/errors.js';
import type { FieldDescription } from '../proxy/wire/backend-messages.js';

export interface SessionInfo {
  /** Unique within this proxy process. */
  readonly id: number;
  readonly user: string;
  readonly database: string;
  readonly applicationName: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  /**
   * What the server reported with ParameterStatus (session_authorization, is_superuser, …), as it
   * reported it last: unlike the startup parameters, not what the client claims.
   */
  readonly serverParams: ReadonlyMap<string, string>;
  /** Every startup parameter the client sent (user, database, options, replication, …). */
  readonly startupParams: ReadonlyMap<string, string>;
  /** The upstream backend's process id, as reported to the client in BackendKeyData. */
  readonly backendPid: number;
  /** Per-session scratch space for plugins, keyed by plugin name. */
  readonly pluginState: Map<string, unknown>;
  /**
   * The plugins (by name) whose statement hook sees every statement of this session. A plugin adds
   * or removes its own name: from sessionStart, or from its statement hook when a statement it
   * watches for (see Plugin.statementWords) arrives. While the set is empty and no statement holds
   * such a word, the session's messages take the fast path: no statement is decoded.
   */
  readonly statementPlugins: Set<string>;
  /**
   * The client statement whose answer is arriving, while statements are tracked (see
   * Plugin.wantsStatements): set when result hooks run, so they know what produced the result.
   */
  statement: StatementTrace | null;
  /**
   * Sends the client a notice (a NoticeResponse: WARNING, NOTICE…) in its place among the
   * session's answers: at once when nothing sent before is still unanswered. For a statement hook
   * that works long before it answers (progress).
   */
  notice?: (notice: PgError) => void;
}

/**
 * One client statement as the upstream runs it: a simple Query (all of its statements, up to its
 * ReadyForQuery), or one Execute of the extended protocol (up to its CommandComplete, error, or
 * PortalSuspended).
 */
export interface StatementTrace {
  /** The Query text, or the text of the prepared statement the portal was bound to ('' if unknown). */
  readonly text: string;
  readonly protocol: 'simple' | 'extended';
  /** When it went upstream, in epoch milliseconds (fractional). */
  readonly startedAt: number;
  /** The SQLSTATE of its error, if it failed (or was skipped after an earlier error of its unit). */
  errorCode: string | null;
  ended: boolean;
  /** Per-statement scratch space for plugins, keyed by plugin name. */
  readonly pluginState: Map<string, unknown>;
  /** An Execute's parameters as the upstream got them (absent for a simple Query). */
  readonly binding?: StatementBinding;
  /**
   * A simple Query's statements answered so far (each ends with CommandComplete or
   * EmptyQueryResponse): while a result of it is handled, the index of the statement it belongs to.
   */
  readonly answered?: number;
}

/** What an Execute ran with, kept raw: decoded only by a plugin that records it. */
export interface StatementBinding {
  /** The parameter type OIDs its Parse declared (0: left to the server). */
  readonly paramTypes: readonly number[];
  /** The Bind message of its portal. */
  readonly bind: Buffer;
  /** The Execute's row limit (0: every row). */
  readonly maxRows: number;
  /** Executes of the same portal before this one (a portal fetched in chunks). */
  readonly chunk: number;
}

/** What the client asked to run: a simple Query, or a Parse or Bind of the extended protocol. */
export type Statement =
  | { readonly kind: 'query'; readonly text: string }
  | { readonly kind: 'parse'; readonly name: string; readonly text: string; readonly paramTypes: readonly number[] }
  | {
      readonly kind: 'bind';
      readonly portal: string;
      readonly statement: string;
      /** The text of the bound statement, when the proxy saw its Parse. */
      readonly text: string | undefined;
      readonly params: readonly (Buffer | null)[];
      readonly paramFormats: readonly number[];
      readonly resultFormats: readonly number[];
    };

/**
 * An answer the proxy makes itself, in text format: a result set (`SHOW x`), or without columns a
 * command tag only (`SET`, `RESET`), sent as the server would (no RowDescription; NoData to a
 * Describe).
 */
export interface LocalResult {
  /** Omitted: the statement returns no rows. */
  readonly columns?: readonly string[];
  readonly rows?: readonly (readonly (string | null)[])[];
  /** CommandComplete tag, e.g. `SHOW`, `SET` or `SELECT 3`. */
  readonly tag: string;
  /**
   * Called when the statement runs, to do what it does then and make its rows and tag (the columns
   * above describe them): at each Execute of a statement or portal answered here, at once for a
   * Query. So a SET takes effect where the server's would, and a SHOW shows the value then.
   * Omitted: the rows and tag above, at every run.
   */
  readonly run?: () => LocalRun;
}

/** What a locally answered statement returned when it ran. */
export interface LocalRun {
  readonly rows?: readonly (readonly (string | null)[])[];
  readonly tag: string;
}

export type StatementDecision =
  | { readonly action: 'pass' }
  /** A Query's or a Parse's new text: what goes upstream, and what the plugins after this one see. */
  | { readonly action: 'rewrite'; readonly text: string }
  /**
   * A Bind's new parameter values (and their formats, or the result columns' formats, if they
   * change: a plugin that added output columns at its Parse gives formats for them): what goes upstream.
   */
  | {
      readonly action: 'rewrite';
      readonly params: readonly (Buffer | null)[];
      readonly paramFormats?: readonly number[];
      readonly resultFormats?: readonly number[];
    }
  | { readonly action: 'deny'; readonly error: PgError }
  /**
   * The proxy replies without asking the upstream. To a Parse: ParseComplete, and the statement is
   * the proxy's (its Binds, Describes, Executes and Close are answered here). To a Bind: the portal is.
   */
  | { readonly action: 'answer'; readonly result: LocalResult };

/**
 * The identity of one result: a simple Query's result set, or the rows of one Execute (a portal run
 * again, or resumed after PortalSuspended, is a new result). The same object reaches every hook of
 * that result, whatever a plugin did to its description: key per-result state on it.
 */
export interface ResultId {
  /** Unique within the session, in the order results started. */
  readonly serial: number;
}

/** One result set on its way to the client. */
export interface ResultInfo {
  readonly id: ResultId;
  /** The description as this plugin was given it (plugins before it in order may have rewritten it). */
  readonly fields: readonly FieldDescription[];
}

export type DescriptionDecision =
  /** Not interested in this result's rows. */
  | { readonly action: 'pass' }
  /** Send this plugin the result's DataRows. */
  | { readonly action: 'watch' }
  | { readonly action: 'rewrite'; readonly fields: readonly FieldDescription[]; readonly watch: boolean }
  | { readonly action: 'deny'; readonly error: PgError };

/** A batch of DataRows (see proxy/wire/row-batch.ts): values as sent (text or binary), changed in place. */
export type { RowBatch };

export type RowsDecision =
  | { readonly action: 'pass' }
  | { readonly action: 'rewrite'; readonly rows: RowBatch }
  | { readonly action: 'deny'; readonly error: PgError };

/** Notices (WARNING, NOTICE…) reach the client just before the CommandComplete, in plugin order. */
export type CompleteDecision =
  | { readonly action: 'pass'; readonly notices?: readonly PgError[] }
  | { readonly action: 'rewrite'; readonly tag: string; readonly notices?: readonly PgError[] }
  | { readonly action: 'deny'; readonly error: PgError };

type Maybe<T> = T | Promise<T>;

export interface Plugin {
  readonly name: string;
  /**
   * Where the plugin runs among the others: lower first, ties in the order given. Every hook
   * sees what the plugins before it made of a statement or a result. Omitted means 0.
   */
  readonly order?: number;
  /**
   * The server accepted the login and reported its parameters; the client is told it is ready
   * (its first ReadyForQuery) once every plugin's promise settled. Rejecting with a PgError ends
   * the login with it as a FATAL, where the server refuses a bad startup option. Every login
   * waits for it: keep it for checks of what the client asked in its startup packet.
   */
  sessionOpening?(session: SessionInfo): Maybe<void>;
  /** After login succeeded, before the client's first statement. */
  sessionStart?(session: SessionInfo): Maybe<void>;
  /** After the client left or the connection broke. */
  sessionEnd?(session: SessionInfo): Maybe<void>;
  /**
   * The client sent a CancelRequest for this session (it also goes to the upstream): a statement
   * hook still at work for it (one the proxy answers itself) should stop. Synchronous.
   */
  cancel?(session: SessionInfo): void;
  /**
   * Each simple Query, and each Parse and Bind, before it goes upstream: of sessions that name the
   * plugin in SessionInfo.statementPlugins, and any Query or Parse that holds one of its
   * statementWords (and Binds of such a statement). A plugin without statementWords is named
   * in every session at its start, so it sees every statement (and every session is slower).
   */
  statement?(session: SessionInfo, statement: Statement): Maybe<StatementDecision>;
  /**
   * Words (ASCII, found in the raw bytes in any mix of cases, e.g. `demo.`) that bring a Query
   * or Parse to this plugin's statement hook in any session: a cheap check, not a reading of SQL.
   */
  readonly statementWords?: readonly string[];
  /**
   * Whether this plugin's result hooks (and copyOut) have anything to do right now; when no
   * plugin does, results pass through undecoded. Omitted means always.
   */
  wantsResults?(): boolean;
  /**
   * Each result as it starts, with the description of its rows: a simple Query's RowDescription,
   * an Execute's first answer (with the description of its portal, as the upstream sent it), and
   * the answer to a client's Describe (what the plugins return is what the client sees). Rows
   * reach dataRows only for results a plugin watches.
   */
  rowDescription?(session: SessionInfo, result: ResultInfo): Maybe<DescriptionDecision>;
  /**
   * A simple Query, or a Parse, whose text holds the word COPY (in any case), while the plugin
   * wants results (wantsResults); asked again at each Bind and Execute of a statement whose Parse
   * held COPY and STDOUT, whatever was said at its Parse. What a
   * `COPY … TO STDOUT` sends the client are CopyData messages, which no result hook sees, so a
   * plugin that changes rows on their way out returns an error here to refuse the statement (the
   * client gets it where the server's answer would be; the session goes on).
   */
  copyOut?(session: SessionInfo, text: string): PgError | null;
  /**
   * Batches of DataRows of a watched result, handed over in order. The next batch may be handed
   * over before the promise for the one before it settled (two are at work at once); what they
   * return reaches the client in order, and after a batch fails nothing of the later ones does.
   */
  dataRows?(session: SessionInfo, result: ResultInfo, rows: RowBatch): Maybe<RowsDecision>;
  /**
   * A watched result of an Execute stopped at its row limit (PortalSuspended): the result ends
   * here; the portal's next Execute is a result of its own, with its own id.
   */
  portalSuspended?(session: SessionInfo, result: ResultInfo): Maybe<void>;
  /** CommandComplete of a watched result, or of any statement when no result was watched. */
  commandComplete?(session: SessionInfo, result: ResultInfo | null, tag: string): Maybe<CompleteDecision>;
  /**
   * A watched result that ended in an error instead of its CommandComplete: the upstream's, or a
   * plugin's refusal. Rows sent before it did reach the client.
   */
  resultError?(session: SessionInfo, result: ResultInfo, error: { readonly code: string; readonly message: string }): Maybe<void>;
  /**
   * Whether statements should be tracked right now (statementStart/statementEnd, and
   * SessionInfo.statement). Omitted means always, when those hooks exist.
   */
  wantsStatements?(): boolean;
  /**
   * Each ReadyForQuery after login, with the transaction status the server reported: a request
   * unit ended (after statementEnd of its statements). Synchronous: it is on the hot path.
   */
  readyForQuery?(session: SessionInfo, status: 'I' | 'T' | 'E'): void;
  /** A client statement went upstream. Synchronous: it is on the hot path. */
  statementStart?(session: SessionInfo, statement: StatementTrace): void;
  /** Its answer is complete (errorCode says whether it failed). Synchronous. */
  statementEnd?(session: SessionInfo, statement: StatementTrace): void;
  /**
   * A simple Query the proxy itself may answer (e.g. `SHOW provenance.status`): a result, or
   * null to let it through. Synchronous, asked for every simple Query while any plugin has it.
   */
  localCommand?(session: SessionInfo, text: string): LocalResult | null;
  /**
   * The first keywords (lower case) of the Queries localCommand may answer: other Queries are not
   * even decoded for it. Omitted means any Query is asked about.
   */
  readonly localCommandKeywords?: readonly string[];
  /**
   * Words (ASCII) that make a request unit worth knowing about when a Query or Parse contains
   * them (e.g. `provenance.` for registry changes); found in the raw bytes, in any mix of cases.
   */
  readonly unitWords?: readonly string[];
  /**
   * A Query or Parse text that holds one of unitWords: whether its unit is worth waiting for
   * (unitDone). Omitted means yes.
   */
  marksUnit?(text: string): boolean;
  /**
   * Such a unit got its ReadyForQuery: the client gets it once this settles, so its next
   * statement sees whatever this hook made happen (e.g. the registry read again).
   */
  unitDone?(session: SessionInfo): Maybe<void>;
}
