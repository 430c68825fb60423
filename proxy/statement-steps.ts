/**
 * What the statement hooks make of a session's extended-protocol messages, one at a time: each
 * goes upstream (as it came, or rewritten), is answered here, or is refused. statement-path.ts
 * places the answers among the upstream's.
 *
 * A statement a plugin answers itself (a Parse answered with a LocalResult) lives here, not on the
 * server: its Binds, Describes, Executes and Close are answered here as the server would answer
 * them (ParseComplete, BindComplete, ParameterDescription and RowDescription or NoData, the
 * DataRows and CommandComplete, CloseComplete). So does a portal a plugin answered at its Bind.
 *
 * A prepared `COPY … TO STDOUT` is remembered whatever the plugins said at its Parse (no transform
 * may have been registered then): its Binds and Executes ask Plugin.copyOut again.
 */
import { PgError } from './errors.js';
import { Backend, Frontend } from './wire/codes.js';
import { commandComplete, dataRow, rowDescription } from './wire/backend-messages.js';
import { decodeBind, decodeBindHead, decodeExecute, decodeParse, decodeTarget, encodeParse, type BindDetail } from './wire/frontend-messages.js';
import { MessageWriter } from './wire/writer.js';
import type { PluginHost } from '../plugins/host.js';
import type { LocalResult, SessionInfo } from '../plugins/hooks.js';

/** One message's fate: sent upstream (these bytes), answered here (these messages), or refused. */
export type Step =
  | { readonly kind: 'upstream'; readonly raw: Buffer }
  /** ran: for an Execute, the text of the statement that ran here (a client statement, as for spans). */
  | { readonly kind: 'local'; readonly answer: readonly Buffer[]; readonly ran?: string }
  | { readonly kind: 'deny'; readonly error: PgError };

interface LocalStatement {
  readonly result: LocalResult;
  readonly paramTypes: readonly number[];
}

const TEXT_OID = 25;

/** A local result's RowDescription (text columns), or NoData for a command without rows. */
function describe(r: LocalResult): Buffer {
  if (!r.columns) return emptyMessage(Backend.NoData);
  return rowDescription(r.columns.map((name) => ({
    name, tableID: 0, columnID: 0, dataTypeID: TEXT_OID, dataTypeSize: -1, dataTypeModifier: -1, format: 0,
  })));
}

/** A local result's rows and CommandComplete: what an Execute of it (or a Query, after its RowDescription) gets. */
function rows(r: LocalResult): Buffer[] {
  const ran = r.run ? r.run() : r;
  const out = (ran.rows ?? []).map((row) => dataRow(row.map((v) => (v === null ? null : Buffer.from(v)))));
  out.push(commandComplete(ran.tag));
  return out;
}

/** A simple Query's local answer: RowDescription (when it has columns), DataRows, CommandComplete. */
export function localAnswer(r: LocalResult): Buffer[] {
  return r.columns ? [describe(r), ...rows(r)] : rows(r);
}

function emptyMessage(code: number): Buffer {
  return new MessageWriter(5).begin(code).end().flush();
}

/** ParameterDescription: Int16 count, then an Int32 type OID per parameter. */
function parameterDescription(types: readonly number[]): Buffer {
  const w = new MessageWriter().begin(Backend.ParameterDescription).int16(types.length);
  for (const t of types) w.uint32(t);
  return w.end().flush();
}

/** Bind: portal, statement, Int16 format count + formats, Int16 value count + (Int32 length, bytes), Int16 result format count + formats. */
function encodeBind(b: BindDetail): Buffer {
  const w = new MessageWriter().begin(Frontend.Bind).cstring(b.portal).cstring(b.statement).int16(b.paramFormats.length);
  for (const f of b.paramFormats) w.int16(f);
  w.int16(b.params.length);
  for (const v of b.params) {
    if (v === null) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
  w.int16(b.resultFormats.length);
  for (const f of b.resultFormats) w.int16(f);
  return w.end().flush();
}

/** The statement name of a Parse (its first field), without decoding its text. */
function statementName(raw: Buffer): string {
  const end = raw.indexOf(0, 5);
  return raw.toString('utf8', 5, end < 0 ? raw.length : end);
}

export class StatementSteps {
  private readonly localStatements = new Map<string, LocalStatement>();
  private readonly localPortals = new Map<string, { readonly result: LocalResult; readonly text: string }>();
  /** Prepared statements whose Parse may hold a COPY … TO STDOUT, by name: their text. */
  private readonly copyStatements = new Map<string, string>();
  /** Portals bound to such a statement: the statement's text. */
  private readonly copyPortals = new Map<string, string>();

  constructor(
    private readonly plugins: PluginHost,
    private readonly info: SessionInfo,
    /** Statement texts by name, shared with the session's statement tracking. */
    private readonly texts: Map<string, string>,
  ) {}

  /**
   * Whether client frames on the fast path must take the statement path instead: the session
   * has statement hooks on, or the proxy answers some of its statements, or a frame holds a word a
   * plugin watches, or may prepare, bind or run a COPY … TO STDOUT a plugin refuses now. Only
   * Parse and Query bytes are looked at, unless the session prepared a COPY.
   */
  wanted(frames: readonly { code: number; raw: Buffer }[]): boolean {
    if (this.info.statementPlugins.size > 0 || this.localStatements.size > 0 || this.localPortals.size > 0) return true;
    for (const f of frames) {
      switch (f.code) {
        case Frontend.Parse:
          if (this.plugins.mentionsStatementWord(f.raw)) return true;
          // One look for the word COPY: refused now, or remembered for its Binds.
          if (this.plugins.mayHoldCopy(f.raw)) {
            if (this.plugins.checksCopyOut) return true;
            this.noteParse(f.raw, null, true);
          } else if (this.copyStatements.size > 0) this.noteParse(f.raw, null, false);
          break;
        case Frontend.Query:
          if (this.plugins.mentionsStatementWord(f.raw)) return true;
          break;
        case Frontend.Bind:
          if (this.copyStatements.size > 0 && this.noteBind(decodeBindHead(f.raw)) !== undefined && this.plugins.checksCopyOut) return true;
          break;
        case Frontend.Execute:
          if (this.copyPortals.size > 0 && this.copyPortals.has(decodeExecute(f.raw).portal) && this.plugins.checksCopyOut) return true;
          break;
      }
    }
    return false;
  }

  /** One Parse, Bind, Describe, Execute or Close of a unit on the statement path. */
  async step(frame: Buffer): Promise<Step> {
    switch (frame[0]) {
      case Frontend.Parse:
        return this.parse(frame);
      case Frontend.Bind:
        return this.bind(frame);
      case Frontend.Describe: {
        if (this.localStatements.size === 0 && this.localPortals.size === 0) break;
        const t = decodeTarget(frame);
        const s = t.target === 'S' ? this.localStatements.get(t.name) : undefined;
        if (s) return { kind: 'local', answer: [parameterDescription(s.paramTypes), describe(s.result)] };
        const p = t.target === 'P' ? this.localPortals.get(t.name) : undefined;
        if (p) return { kind: 'local', answer: [describe(p.result)] };
        break;
      }
      case Frontend.Execute: {
        if (this.localPortals.size === 0 && this.copyPortals.size === 0) break;
        const portal = decodeExecute(frame).portal;
        const local = this.localPortals.get(portal);
        if (local) return { kind: 'local', answer: rows(local.result), ran: local.text };
        const refused = this.copyRefusal(this.copyPortals.get(portal));
        if (refused) return { kind: 'deny', error: refused };
        break;
      }
      case Frontend.Close: {
        if (this.localStatements.size === 0 && this.localPortals.size === 0) break;
        const t = decodeTarget(frame);
        const map = t.target === 'S' ? this.localStatements : this.localPortals;
        if (map.delete(t.name)) return { kind: 'local', answer: [emptyMessage(Backend.CloseComplete)] };
        break;
      }
    }
    return { kind: 'upstream', raw: frame };
  }

  private async parse(frame: Buffer): Promise<Step> {
    const parse = decodeParse(frame);
    const copy = this.plugins.mayHoldCopy(frame);
    this.noteParse(frame, parse, copy);
    if (copy && this.plugins.checksCopyOut) {
      const refused = this.plugins.copyOut(this.info, parse.text);
      if (refused) return { kind: 'deny', error: refused };
    }
    const outcome = await this.plugins.statement(this.info, { kind: 'parse', ...parse });
    if (outcome.action === 'deny') return { kind: 'deny', error: outcome.error };
    this.texts.set(parse.name, parse.text);
    if (outcome.action === 'answer') {
      this.localStatements.set(parse.name, { result: outcome.result, paramTypes: parse.paramTypes });
      return { kind: 'local', answer: [emptyMessage(Backend.ParseComplete)] };
    }
    this.localStatements.delete(parse.name);
    const text = outcome.statement.text ?? parse.text;
    this.texts.set(parse.name, text);
    return { kind: 'upstream', raw: text === parse.text ? frame : encodeParse({ ...parse, text }) };
  }

  private async bind(frame: Buffer): Promise<Step> {
    const bind = decodeBind(frame);
    const refused = this.copyRefusal(this.noteBind(bind));
    if (refused) return { kind: 'deny', error: refused };
    const local = this.localStatements.get(bind.statement);
    const outcome = await this.plugins.statement(this.info, {
      kind: 'bind', portal: bind.portal, statement: bind.statement, text: this.texts.get(bind.statement),
      params: bind.params, paramFormats: bind.paramFormats, resultFormats: bind.resultFormats,
    });
    if (outcome.action === 'deny') return { kind: 'deny', error: outcome.error };
    if (outcome.action === 'answer' || local) {
      const result = outcome.action === 'answer' ? outcome.result : local!.result;
      this.localPortals.set(bind.portal, { result, text: this.texts.get(bind.statement) ?? '' });
      return { kind: 'local', answer: [emptyMessage(Backend.BindComplete)] };
    }
    this.localPortals.delete(bind.portal);
    const s = outcome.statement;
    if (s.kind !== 'bind' || (s.params === bind.params && s.paramFormats === bind.paramFormats && s.resultFormats === bind.resultFormats)) {
      return { kind: 'upstream', raw: frame };
    }
    return { kind: 'upstream', raw: encodeBind({ ...bind, params: s.params, paramFormats: s.paramFormats, resultFormats: s.resultFormats }) };
  }

  /** Remembers (or forgets) the statement a Parse prepares as a possible COPY … TO STDOUT. */
  private noteParse(raw: Buffer, parse: { name: string; text: string } | null, copy = this.plugins.mayHoldCopy(raw)): void {
    if (copy && this.plugins.mayCopyToStdout(raw)) {
      parse ??= decodeParse(raw);
      this.copyStatements.set(parse.name, parse.text);
    } else if (this.copyStatements.size > 0) {
      this.copyStatements.delete(parse ? parse.name : statementName(raw));
    }
  }

  /** The text of the COPY a Bind binds its portal to, if it is one; the portal is remembered. */
  private noteBind(bind: { portal: string; statement: string }): string | undefined {
    const text = this.copyStatements.get(bind.statement);
    if (text === undefined) this.copyPortals.delete(bind.portal);
    else this.copyPortals.set(bind.portal, text);
    return text;
  }

  /** Plugin.copyOut asked again about a prepared COPY, in the server's place. */
  private copyRefusal(text: string | undefined): PgError | null {
    if (text === undefined || !this.plugins.checksCopyOut) return null;
    return this.plugins.copyOut(this.info, text);
  }
}
