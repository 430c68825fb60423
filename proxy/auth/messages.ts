/**
 * The authentication messages of a login, both directions.
 *   Authentication (R): Int32 sub-code, then per code: MD5Password (5) Byte4 salt; SASL (10)
 *     mechanism cstrings ended by an empty one; SASLContinue (11) / SASLFinal (12) data.
 *   'p' from the client: PasswordMessage cstring; SASLInitialResponse cstring mechanism,
 *     Int32 data length (-1: none), data; SASLResponse data.
 */
import { AuthCode, Backend, Frontend } from '../wire/codes.js';
import { BodyReader } from '../wire/reader.js';
import { MessageWriter } from '../wire/writer.js';
import { PgError, SqlState } from '../errors.js';

function request(code: AuthCode): MessageWriter {
  return new MessageWriter().begin(Backend.Authentication).int32(code);
}

export function md5Request(salt: Buffer): Buffer {
  return request(AuthCode.MD5Password).bytes(salt).end().flush();
}

export function saslRequest(mechanisms: readonly string[]): Buffer {
  const w = request(AuthCode.SASL);
  for (const m of mechanisms) w.cstring(m);
  return w.int8(0).end().flush();
}

export function saslContinue(data: string): Buffer {
  return request(AuthCode.SASLContinue).bytes(Buffer.from(data)).end().flush();
}

export function saslFinal(data: string): Buffer {
  return request(AuthCode.SASLFinal).bytes(Buffer.from(data)).end().flush();
}

/** An Authentication message's sub-code and the body after it. */
export function decodeAuthRequest(raw: Buffer): { code: number; body: Buffer } {
  return { code: raw.readInt32BE(5), body: raw.subarray(9) };
}

export function decodeMechanisms(body: Buffer): string[] {
  const r = new BodyReader(body, 0);
  const out: string[] = [];
  for (let m = r.cstring(); m !== ''; m = r.cstring()) out.push(m);
  return out;
}

export function passwordMessage(text: string): Buffer {
  return new MessageWriter().begin(Frontend.Password).cstring(text).end().flush();
}

export function saslInitialResponse(mechanism: string, data: string): Buffer {
  const b = Buffer.from(data);
  return new MessageWriter().begin(Frontend.Password).cstring(mechanism).int32(b.length).bytes(b).end().flush();
}

export function saslResponse(data: string): Buffer {
  return new MessageWriter().begin(Frontend.Password).bytes(Buffer.from(data)).end().flush();
}

function expectPassword(code: number, what: string): void {
  if (code !== Frontend.Password) {
    throw new PgError(SqlState.ProtocolViolation, `expected ${what} response, got message type ${code}`, 'FATAL');
  }
}

export function decodePassword(code: number, raw: Buffer): string {
  expectPassword(code, 'password');
  return new BodyReader(raw, 5).cstring();
}

export function decodeSaslInitial(code: number, raw: Buffer): { mechanism: string; data: string } {
  expectPassword(code, 'SASL');
  const r = new BodyReader(raw, 5);
  const mechanism = r.cstring();
  const len = r.int32();
  return { mechanism, data: len < 0 ? '' : r.bytes(len).toString('utf8') };
}

export function decodeSaslResponse(code: number, raw: Buffer): string {
  expectPassword(code, 'SASL');
  return raw.toString('utf8', 5);
}
