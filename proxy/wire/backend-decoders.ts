/**
 * Decoders for the server→client messages the proxy reads (its encoders are in backend-messages.ts).
 * One per message kind, shared by the session, the embedded upstream and the tests. Hand-written
 * over BodyReader rather than pg-protocol's Parser: they read one frame the scanner already cut
 * out, in place, and throw a FATAL 08P01 PgError on a message shorter than its contents, where
 * pg-protocol's parser would frame the stream again and read past a field's end silently.
 */
import { PgError, SqlState, type Severity } from '../errors.js';
import type { FieldDescription, TxStatus } from './backend-messages.js';
import { BodyReader } from './reader.js';

/**
 * RowDescription: Int16 count, then per field name, table OID, attnum, type OID, typlen, typmod,
 * format. `at` is where the body starts (after the code and length of a whole frame).
 */
export function decodeRowDescription(raw: Buffer, at = 5): FieldDescription[] {
  const r = new BodyReader(raw, at);
  const n = r.int16();
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    fields.push({
      name: r.cstring(),
      tableID: r.uint32(),
      columnID: r.int16(),
      dataTypeID: r.uint32(),
      dataTypeSize: r.int16(),
      dataTypeModifier: r.int32(),
      format: r.int16() === 1 ? 1 : 0,
    });
  }
  return fields;
}

/**
 * ErrorResponse (and NoticeResponse): (field code byte, cstring) pairs ended by a zero byte. V is
 * the severity as the server spells it whatever its language (S is localised, and all servers
 * before 9.6 sent only S); C the SQLSTATE, M the message, D detail, H hint, P the 1-based position.
 */
export function decodeErrorResponse(raw: Buffer, at = 5): PgError {
  const r = new BodyReader(raw, at);
  let severity: string | undefined;
  let localized: string | undefined;
  let code: string = SqlState.InternalError;
  let message = 'unknown error';
  let detail: string | undefined;
  let hint: string | undefined;
  let position: number | undefined;
  for (;;) {
    const f = r.int8();
    if (f === 0) break;
    const value = r.cstring();
    switch (f) {
      case 0x56: severity = value; break; // V
      case 0x53: localized = value; break; // S
      case 0x43: code = value; break; // C
      case 0x4d: message = value; break; // M
      case 0x44: detail = value; break; // D
      case 0x48: hint = value; break; // H
      case 0x50: position = Number(value) || undefined; break; // P
    }
  }
  return new PgError(code, message, (severity ?? localized ?? 'ERROR') as Severity, {
    ...(detail !== undefined ? { detail } : {}),
    ...(hint !== undefined ? { hint } : {}),
    ...(position !== undefined ? { position } : {}),
  });
}

/** ReadyForQuery: the transaction status byte (I idle, T in a transaction, E in a failed one). */
export function decodeReadyForQuery(raw: Buffer): TxStatus {
  return String.fromCharCode(raw[5]!) as TxStatus;
}

/** CommandComplete: the command tag. */
export function decodeCommandComplete(raw: Buffer): string {
  return new BodyReader(raw, 5).cstring();
}

/** ParameterStatus: a setting's name and value. */
export function decodeParameterStatus(raw: Buffer): { readonly name: string; readonly value: string } {
  const r = new BodyReader(raw, 5);
  return { name: r.cstring(), value: r.cstring() };
}

/** BackendKeyData: the backend's process id and the secret a CancelRequest must carry. */
export function decodeBackendKeyData(raw: Buffer): { readonly pid: number; readonly secret: number } {
  const r = new BodyReader(raw, 5);
  return { pid: r.int32(), secret: r.int32() };
}

/** NotificationResponse: the notifying backend's pid, the channel and the payload. */
export function decodeNotificationResponse(raw: Buffer): { readonly pid: number; readonly channel: string; readonly payload: string } {
  const r = new BodyReader(raw, 5);
  return { pid: r.int32(), channel: r.cstring(), payload: r.cstring() };
}
