/**
 * Decoders for the client→server messages the proxy reads, and encoders for the ones it
 * rewrites or sends itself. pg-protocol only encodes this direction with whole values, while
 * the proxy must keep a client's raw parameter bytes, so these are written here.
 *
 * A decoder of client bytes either returns a value or throws a FATAL PgError (08P01), never any
 * other error: callers run them inside the connection's guard, which answers that error.
 */
import { PgError, SqlState } from '../errors.js';
import { Frontend, StartupCode } from './codes.js';
import { BodyReader } from './reader.js';
import { MessageWriter } from './writer.js';

export interface StartupMessage {
  readonly protocol: number;
  /** user, database, application_name, options, replication, … in the order sent. */
  readonly params: ReadonlyMap<string, string>;
}

/**
 * StartupMessage: Int32 length, Int32 protocol, then name/value cstring pairs ended by a zero byte.
 * Read as the server reads it: the pairs must end with that zero byte exactly at the end of the
 * packet, anything else is the server's FATAL "invalid startup packet layout".
 */
export function decodeStartup(raw: Buffer): StartupMessage {
  const r = new BodyReader(raw, 4);
  const protocol = r.int32();
  const params = new Map<string, string>();
  for (;;) {
    if (r.remaining === 1 && raw[r.pos] === 0) return { protocol, params };
    const name = raw.indexOf(0, r.pos);
    const value = name < 0 ? -1 : raw.indexOf(0, name + 1);
    if (name <= r.pos || value < 0) break;
    params.set(r.cstring(), r.cstring());
  }
  throw new PgError(SqlState.ProtocolViolation, 'invalid startup packet layout: expected terminator as last byte', 'FATAL');
}

export function encodeStartup(params: ReadonlyMap<string, string>, protocol: number = StartupCode.Protocol30): Buffer {
  const w = new MessageWriter().beginUntyped().int32(protocol);
  for (const [k, v] of params) w.cstring(k).cstring(v);
  return w.int8(0).end().flush();
}

/** CancelRequest: Int32 16, Int32 80877102, Int32 pid, Int32 secret key. Null when the length is not 16. */
export function decodeCancel(raw: Buffer): { pid: number; secret: number } | null {
  if (raw.length !== 16 || raw.readInt32BE(0) !== 16) return null;
  return { pid: raw.readInt32BE(8), secret: raw.readInt32BE(12) };
}

export function encodeCancel(pid: number, secret: number): Buffer {
  return new MessageWriter(16).beginUntyped().int32(StartupCode.CancelRequest).int32(pid).int32(secret).end().flush();
}

export function encodeSSLRequest(): Buffer {
  return new MessageWriter(8).beginUntyped().int32(StartupCode.SSLRequest).end().flush();
}

export function decodeQuery(raw: Buffer): string {
  return new BodyReader(raw, 5).cstring();
}

/**
 * The Query message itself, once it is known that decodeQuery cannot fail on it (its text ends
 * with a zero byte): so its text can be decoded later, outside the code that reads client input.
 */
export function checkQuery(raw: Buffer): Buffer {
  if (raw.indexOf(0, 5) < 0) throw new PgError(SqlState.ProtocolViolation, 'invalid string in message', 'FATAL');
  return raw;
}

export function encodeQuery(text: string): Buffer {
  return new MessageWriter().begin(Frontend.Query).cstring(text).end().flush();
}

export interface ParseMessage {
  readonly name: string;
  readonly text: string;
  readonly paramTypes: readonly number[];
}

/** Parse: statement name, query text, Int16 count and that many parameter type OIDs. */
export function decodeParse(raw: Buffer): ParseMessage {
  const r = new BodyReader(raw, 5);
  const name = r.cstring();
  const text = r.cstring();
  const n = r.int16();
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(r.uint32());
  return { name, text, paramTypes };
}

export function encodeParse(m: ParseMessage): Buffer {
  const w = new MessageWriter().begin(Frontend.Parse).cstring(m.name).cstring(m.text).int16(m.paramTypes.length);
  for (const t of m.paramTypes) w.uint32(t);
  return w.end().flush();
}

export interface BindHead {
  readonly portal: string;
  readonly statement: string;
  /** Everything after the two names: formats, parameter values, result formats (kept raw). */
  readonly rest: Buffer;
}

/** Bind: portal name, statement name, then formats/values/result formats. */
export function decodeBindHead(raw: Buffer): BindHead {
  const r = new BodyReader(raw, 5);
  const portal = r.cstring();
  const statement = r.cstring();
  return { portal, statement, rest: r.rest() };
}

export function encodeBindHead(b: BindHead): Buffer {
  return new MessageWriter(b.rest.length + 16).begin(Frontend.Bind).cstring(b.portal).cstring(b.statement).bytes(b.rest).end().flush();
}

export interface BindDetail extends BindHead {
  readonly paramFormats: readonly number[];
  readonly params: readonly (Buffer | null)[];
  readonly resultFormats: readonly number[];
}

export function decodeBind(raw: Buffer): BindDetail {
  const head = decodeBindHead(raw);
  const r = new BodyReader(head.rest, 0);
  const paramFormats: number[] = [];
  for (let i = r.int16(); i > 0; i--) paramFormats.push(r.int16());
  const params: (Buffer | null)[] = [];
  for (let i = r.int16(); i > 0; i--) {
    const len = r.int32();
    params.push(len < 0 ? null : r.bytes(len));
  }
  const resultFormats: number[] = [];
  for (let i = r.int16(); i > 0; i--) resultFormats.push(r.int16());
  return { ...head, paramFormats, params, resultFormats };
}

/** Describe and Close: Byte1 'S' (statement) or 'P' (portal), then the name. */
export interface TargetMessage {
  readonly target: 'S' | 'P';
  readonly name: string;
}

export function decodeTarget(raw: Buffer): TargetMessage {
  const r = new BodyReader(raw, 5);
  const t = r.int8();
  if (t !== 0x53 && t !== 0x50) {
    const what = raw[0] === Frontend.Close ? 'CLOSE' : 'DESCRIBE';
    throw new PgError(SqlState.ProtocolViolation, `invalid ${what} message subtype ${t}`, 'FATAL');
  }
  return { target: t === 0x53 ? 'S' : 'P', name: r.cstring() };
}

export function encodeTarget(code: Frontend.Describe | Frontend.Close, m: TargetMessage): Buffer {
  return new MessageWriter().begin(code).int8(m.target.charCodeAt(0)).cstring(m.name).end().flush();
}

/** Execute: portal name, Int32 maximum rows (0 = all). */
export function decodeExecute(raw: Buffer): { portal: string; maxRows: number } {
  const r = new BodyReader(raw, 5);
  return { portal: r.cstring(), maxRows: r.int32() };
}

export function encodeSimple(code: Frontend.Sync | Frontend.Flush | Frontend.Terminate | Frontend.CopyDone): Buffer {
  return new MessageWriter(5).begin(code).end().flush();
}

/** CopyFail: the error message the client gives. */
export function decodeCopyFail(raw: Buffer): string {
  return new BodyReader(raw, 5).cstring();
}
