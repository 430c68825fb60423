/**
 * Runs the plugins' hooks in order, each inside a guard: a hook that throws becomes an
 * ErrorResponse for that statement (XX000 naming the plugin), never a crashed proxy.
 */
import { PgError, SqlState } from '../proxy/errors.js';
import { MessageWords } from './message-words.js';
import type { FieldDescription } from '../proxy/wire/backend-messages.js';
import type {
  CompleteDecision, LocalResult, Plugin, ResultId, ResultInfo, RowBatch, SessionInfo, Statement, StatementTrace,
} from './hooks.js';

export type Logger = (msg: string) => void;

async function guard<T>(plugin: Plugin, hook: string, log: Logger, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof PgError) return Promise.reject(err);
    const message = err instanceof Error ? err.message : String(err);
    log(`plugin ${plugin.name}: ${hook} failed: ${err instanceof Error && err.stack ? err.stack : message}`);
    throw new PgError(SqlState.InternalError, `plugin "${plugin.name}" failed in ${hook}: ${message}`);
  }
}

export type StatementOutcome =
  | { readonly action: 'pass'; readonly statement: Statement }
  | { readonly action: 'deny'; readonly error: PgError }
  | { readonly action: 'answer'; readonly result: LocalResult };

export interface WatchedResult {
  readonly id: ResultId;
  /** The plugins that asked for this result's rows. */
  readonly watchers: readonly Plugin[];
  /** Per watcher, the result as it was given to its rowDescription: every later hook gets the same. */
  readonly infos: readonly ResultInfo[];
  /**
   * Per watcher, when the latest batch was handed to it. Batches overlap (see the session), and a
   * watcher after another gets a batch once that one is done with it: waiting here for the batch
   * before to be handed over keeps every watcher's batches in order.
   */
  handedOver?: Promise<void>[];
}

function infoOf(result: WatchedResult, p: Plugin): ResultInfo {
  return result.infos[result.watchers.indexOf(p)]!;
}

export class PluginHost {
  /** In their declared order (see Plugin.order). */
  readonly plugins: readonly Plugin[];
  /** Whether some plugin may answer simple Queries itself. */
  readonly localCommands: boolean;
  private readonly resultPlugins: readonly Plugin[];
  private readonly tracePlugins: readonly Plugin[];
  private readonly readyPlugins: readonly Plugin[];
  private readonly copyOutPlugins: readonly Plugin[];
  private readonly commandPlugins: readonly Plugin[];
  private readonly statementPlugins: readonly Plugin[];
  /** The words plugins watch for in a Query or Parse, found in one scan (statementWords, unitWords, COPY). */
  private readonly words: MessageWords;
  /** Lower-case first keywords of locally answered Queries; null: any Query may be. */
  private readonly localKeywords: readonly Buffer[] | null;

  constructor(plugins: readonly Plugin[], private readonly log: Logger) {
    // Array.prototype.sort is stable: plugins of the same order keep the order given.
    plugins = this.plugins = [...plugins].sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
    this.statementPlugins = plugins.filter((p) => p.statement);
    this.words = new MessageWords(plugins, log);
    this.resultPlugins = plugins.filter((p) => p.rowDescription || p.commandComplete);
    this.tracePlugins = plugins.filter((p) => p.statementStart || p.statementEnd);
    this.readyPlugins = plugins.filter((p) => p.readyForQuery);
    this.copyOutPlugins = plugins.filter((p) => p.copyOut);
    this.commandPlugins = plugins.filter((p) => p.localCommand);
    this.localCommands = this.commandPlugins.length > 0;
    const keywords = this.commandPlugins.map((p) => p.localCommandKeywords);
    this.localKeywords = keywords.some((k) => k === undefined)
      ? null
      : [...new Set(keywords.flatMap((k) => k!))].map((k) => Buffer.from(k.toLowerCase(), 'latin1'));
  }

  /**
   * Whether a Query message may be one a plugin answers itself, judged on its first keyword
   * without decoding it (Query: code, Int32 length, the text). Not a reading of the SQL: a
   * command spelt otherwise (a comment first) goes to the server, which answers it as its own;
   * nothing is served or recorded on this guess.
   */
  mayAnswerLocally(raw: Buffer): boolean {
    if (!this.localCommands) return false;
    const words = this.localKeywords;
    if (words === null) return true;
    let i = 5;
    while (i < raw.length && (raw[i] === 0x20 || (raw[i]! >= 0x09 && raw[i]! <= 0x0d))) i++;
    for (const w of words) {
      if (i + w.length > raw.length) continue;
      let same = true;
      for (let j = 0; j < w.length && same; j++) same = (raw[i + j]! | 0x20) === w[j];
      if (same) return true;
    }
    return false;
  }

  /** Whether client statements are tracked now (asked as each statement goes upstream). */
  get tracksStatements(): boolean {
    for (const p of this.tracePlugins) if (p.wantsStatements ? p.wantsStatements() : true) return true;
    return false;
  }

  statementStart(s: SessionInfo, t: StatementTrace): void {
    this.traceHook('statementStart', s, t);
  }

  statementEnd(s: SessionInfo, t: StatementTrace): void {
    this.traceHook('statementEnd', s, t);
  }

  /**
   * Whether a Query or Parse message must be decoded for copyOut: some plugin checks COPY now
   * (asked as for result hooks, see Plugin.wantsResults) and the bytes hold the word COPY in any
   * case (see MessageWords.holdsCopy: nothing that can copy is missed).
   */
  mayCopyOut(raw: Buffer): boolean {
    return this.checksCopyOut && this.words.holdsCopy(raw);
  }

  /** Whether some plugin checks COPY now (asked as for result hooks, see Plugin.wantsResults). */
  get checksCopyOut(): boolean {
    for (const p of this.copyOutPlugins) if (p.wantsResults ? p.wantsResults() : true) return true;
    return false;
  }

  /**
   * Whether a Query or Parse holds the word COPY (see mayCopyOut) while some plugin may refuse a
   * COPY, whatever it would say now: a prepared one is asked about again at its Binds (a
   * transform registered in between applies).
   */
  mayHoldCopy(raw: Buffer): boolean {
    return this.copyOutPlugins.length > 0 && this.words.holdsCopy(raw);
  }

  /** Whether a message holding COPY holds STDOUT too: only then can it send the client CopyData. */
  mayCopyToStdout(raw: Buffer): boolean {
    return this.words.holdsStdout(raw);
  }

  /** The first plugin's refusal of a statement holding COPY, or null; a plugin that fails refuses. */
  copyOut(s: SessionInfo, text: string): PgError | null {
    return this.firstAnswer(this.copyOutPlugins, 'copyOut', (p) => p.copyOut!(s, text));
  }

  /**
   * Whether a Query or Parse message contains a word some plugin watches units for. A hint, not a
   * reading of the SQL: a text that names the schema otherwise (`"provenance".…`) is only not
   * waited for, and the registry's NOTIFY applies its change moments later.
   */
  mentionsUnitWord(raw: Buffer): boolean {
    return this.words.marksUnit(raw);
  }

  /** Whether a Query or Parse holds a word that brings it to some plugin's statement hook. */
  mentionsStatementWord(raw: Buffer): boolean {
    return this.words.bringStatement(raw);
  }

  /** A marked unit is complete; never throws (a failure is logged, the client still gets its answer). */
  async unitDone(s: SessionInfo): Promise<void> {
    for (const p of this.plugins) {
      if (p.unitDone) await guard(p, 'unitDone', this.log, () => p.unitDone!(s)).catch(() => undefined);
    }
  }

  /** A request unit ended with this transaction status; a throwing plugin is logged. */
  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    for (const p of this.readyPlugins) {
      try {
        p.readyForQuery!(s, status);
      } catch (err) {
        this.log(`plugin ${p.name}: readyForQuery failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** Synchronous hooks on the hot path: a throwing plugin is logged, never fatal to the session. */
  private traceHook(hook: 'statementStart' | 'statementEnd', s: SessionInfo, t: StatementTrace): void {
    for (const p of this.tracePlugins) {
      try {
        p[hook]?.(s, t);
      } catch (err) {
        this.log(`plugin ${p.name}: ${hook} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** The first local answer to a simple Query, a denial when a plugin failed, or null. */
  localCommand(s: SessionInfo, text: string): LocalResult | PgError | null {
    return this.firstAnswer(this.commandPlugins, 'localCommand', (p) => p.localCommand!(s, text));
  }

  /**
   * The first non-null answer of synchronous hooks asked in turn. A plugin that throws answers
   * with the error (a PgError as it is, anything else as XX000, logged): these hooks decide what
   * a statement gets, so a failure refuses rather than lets it through.
   */
  private firstAnswer<T>(plugins: readonly Plugin[], hook: string, ask: (p: Plugin) => T | null): T | PgError | null {
    for (const p of plugins) {
      try {
        const answer = ask(p);
        if (answer) return answer;
      } catch (err) {
        if (err instanceof PgError) return err;
        const message = err instanceof Error ? err.message : String(err);
        this.log(`plugin ${p.name}: ${hook} failed: ${message}`);
        return new PgError(SqlState.InternalError, `plugin "${p.name}" failed in ${hook}: ${message}`);
      }
    }
    return null;
  }

  /** Never throws: the result already failed. */
  async resultError(s: SessionInfo, result: WatchedResult, error: PgError | { code: string; message: string }): Promise<void> {
    for (const p of result.watchers) {
      if (!p.resultError) continue;
      await guard(p, 'resultError', this.log, () => p.resultError!(s, infoOf(result, p), { code: error.code, message: error.message })).catch(() => undefined);
    }
  }

  /** A result that stopped at its Execute's row limit; a watcher that fails refuses what follows. */
  async portalSuspended(s: SessionInfo, result: WatchedResult): Promise<void> {
    for (const p of result.watchers) {
      if (p.portalSuspended) await guard(p, 'portalSuspended', this.log, () => p.portalSuspended!(s, infoOf(result, p)));
    }
  }

  /**
   * Whether any plugin wants to see results now. Asked as each result starts, so that with
   * nothing to do (no transform registered, say) results take the pass-through path.
   */
  get resultHooks(): boolean {
    for (const p of this.resultPlugins) if (p.wantsResults ? p.wantsResults() : true) return true;
    return false;
  }

  /** Rejects with the FATAL that ends the login (see Plugin.sessionOpening). */
  async sessionOpening(s: SessionInfo): Promise<void> {
    for (const p of this.plugins) if (p.sessionOpening) await guard(p, 'sessionOpening', this.log, () => p.sessionOpening!(s));
  }

  async sessionStart(s: SessionInfo): Promise<void> {
    for (const p of this.statementPlugins) if (!p.statementWords) s.statementPlugins.add(p.name);
    for (const p of this.plugins) if (p.sessionStart) await guard(p, 'sessionStart', this.log, () => p.sessionStart!(s));
  }

  /** Never throws: a session that ends cannot be told about a failure any more. */
  async sessionEnd(s: SessionInfo): Promise<void> {
    for (const p of this.plugins) {
      if (p.sessionEnd) await guard(p, 'sessionEnd', this.log, () => p.sessionEnd!(s)).catch(() => undefined);
    }
  }

  /**
   * Plugins see the statement in order; a rewrite is what the next one sees. Asked are those the
   * session names (SessionInfo.statementPlugins) and those whose statementWords the text holds
   * (a Bind: the text of its statement).
   */
  async statement(s: SessionInfo, stmt: Statement): Promise<StatementOutcome> {
    let current = stmt;
    for (const p of this.statementPlugins) {
      if (!s.statementPlugins.has(p.name) && !this.words.bringsTo(p, current.text ?? '')) continue;
      let d;
      try {
        d = await guard(p, 'statement', this.log, () => p.statement!(s, current));
      } catch (err) {
        return { action: 'deny', error: err instanceof PgError ? err : new PgError(SqlState.InternalError, String(err)) };
      }
      switch (d.action) {
        case 'pass':
          break;
        case 'rewrite':
          if ('text' in d && current.kind !== 'bind') current = { ...current, text: d.text };
          else if ('params' in d && current.kind === 'bind') {
            current = {
              ...current, params: d.params, paramFormats: d.paramFormats ?? current.paramFormats, resultFormats: d.resultFormats ?? current.resultFormats,
            };
          } else {
            const what = current.kind === 'bind' ? 'the parameters of a Bind (its text is rewritten at its Parse)' : 'the text of a statement';
            return { action: 'deny', error: new PgError(SqlState.FeatureNotSupported, `plugin "${p.name}" can rewrite only ${what}`) };
          }
          break;
        case 'deny':
        case 'answer':
          return d;
      }
    }
    return { action: 'pass', statement: current };
  }

  /**
   * Returns the (possibly rewritten) description and who watches the rows, or throws a PgError to
   * deny. Each plugin sees the description as the ones before it left it, under the same id.
   */
  async rowDescription(s: SessionInfo, id: ResultId, fields: readonly FieldDescription[]): Promise<{ fields: readonly FieldDescription[]; changed: boolean; watched: WatchedResult }> {
    let current = fields;
    let changed = false;
    const watchers: Plugin[] = [];
    const infos: ResultInfo[] = [];
    for (const p of this.plugins) {
      const info: ResultInfo = { id, fields: current };
      if (!p.rowDescription) {
        if (p.commandComplete) {
          watchers.push(p);
          infos.push(info);
        }
        continue;
      }
      const d = await guard(p, 'rowDescription', this.log, () => p.rowDescription!(s, info));
      switch (d.action) {
        case 'pass':
          break;
        case 'watch':
          watchers.push(p);
          infos.push(info);
          break;
        case 'rewrite':
          current = d.fields;
          changed = true;
          if (d.watch) {
            watchers.push(p);
            infos.push({ id, fields: current });
          }
          break;
        case 'deny':
          throw d.error;
      }
    }
    return { fields: current, changed, watched: { id, watchers, infos } };
  }

  /** Rows pass through the watchers in order; returns null when nobody changed them. */
  async dataRows(s: SessionInfo, result: WatchedResult, rows: RowBatch): Promise<RowBatch | null> {
    let current = rows;
    let changed = false;
    // This batch's turn at every watcher is taken now, as batches arrive in order; a turn it
    // does not reach (it failed before) is given up at the end.
    const handedOver = (result.handedOver ??= []);
    const before = result.watchers.map((_, k) => handedOver[k]);
    const hand: (() => void)[] = [];
    result.watchers.forEach((_, k) => (handedOver[k] = new Promise<void>((resolve) => (hand[k] = resolve))));
    try {
      for (const [k, p] of result.watchers.entries()) {
        if (!p.dataRows) continue;
        await before[k];
        const call = guard(p, 'dataRows', this.log, () => p.dataRows!(s, result.infos[k]!, current));
        hand[k]!();
        const d = await call;
        if (d.action === 'deny') throw d.error;
        if (d.action === 'rewrite') {
          current = d.rows;
          changed = true;
        }
      }
    } finally {
      for (const h of hand) h();
    }
    return changed ? current : null;
  }

  /** The tag the client gets, and the notices to send before it. */
  async commandComplete(s: SessionInfo, result: WatchedResult | null, tag: string): Promise<{ tag: string; notices: readonly PgError[] }> {
    let current = tag;
    const notices: PgError[] = [];
    const plugins = result ? result.watchers : this.plugins;
    for (const p of plugins) {
      if (!p.commandComplete) continue;
      const info = result ? infoOf(result, p) : null;
      const d: CompleteDecision = await guard(p, 'commandComplete', this.log, () => p.commandComplete!(s, info, current));
      if (d.action === 'deny') throw d.error;
      if (d.action === 'rewrite') current = d.tag;
      if (d.notices) notices.push(...d.notices);
    }
    return { tag: current, notices };
  }
}
