/** Encoders for the server→client messages the proxy itself produces. */
import { Backend } from './codes.js';
import { RowBatch } from './row-batch.js';
import { MessageWriter } from './writer.js';
import type { PgError } from '../errors.js';

export type TxStatus = 'I' | 'T' | 'E';

export function readyForQuery(status: TxStatus): Buffer {
  return new MessageWriter(6).begin(Backend.ReadyForQuery).int8(status.charCodeAt(0)).end().flush();
}

/** ErrorResponse / NoticeResponse: a list of (field code byte, cstring) ended by a zero byte. */
export function errorResponse(err: PgError, notice = false): Buffer {
  const w = new MessageWriter().begin(notice ? Backend.NoticeResponse : Backend.ErrorResponse);
  w.int8(0x53).cstring(err.severity); // S: localized severity
  w.int8(0x56).cstring(err.severity); // V: non-localized severity
  w.int8(0x43).cstring(err.code); // C: SQLSTATE
  w.int8(0x4d).cstring(err.message); // M
  if (err.fields.detail !== undefined) w.int8(0x44).cstring(err.fields.detail); // D
  if (err.fields.hint !== undefined) w.int8(0x48).cstring(err.fields.hint); // H
  if (err.fields.position !== undefined) w.int8(0x50).cstring(String(err.fields.position)); // P
  return w.int8(0).end().flush();
}

export function authenticationOk(): Buffer {
  return new MessageWriter(9).begin(Backend.Authentication).int32(0).end().flush();
}

export function parameterStatus(name: string, value: string): Buffer {
  return new MessageWriter().begin(Backend.ParameterStatus).cstring(name).cstring(value).end().flush();
}

export function backendKeyData(pid: number, secret: number): Buffer {
  return new MessageWriter(13).begin(Backend.BackendKeyData).int32(pid).int32(secret).end().flush();
}

export function commandComplete(tag: string): Buffer {
  return new MessageWriter().begin(Backend.CommandComplete).cstring(tag).end().flush();
}

export function emptyQueryResponse(): Buffer {
  return new MessageWriter(5).begin(Backend.EmptyQueryResponse).end().flush();
}

export function notificationResponse(pid: number, channel: string, payload: string): Buffer {
  return new MessageWriter().begin(Backend.NotificationResponse).int32(pid).cstring(channel).cstring(payload).end().flush();
}

/** CopyInResponse: overall format (0 text, 1 binary), column count, then a format per column. */
export function copyInResponse(format: 0 | 1, columns: number): Buffer {
  const w = new MessageWriter().begin(Backend.CopyInResponse).int8(format).int16(columns);
  for (let i = 0; i < columns; i++) w.int16(format);
  return w.end().flush();
}

export interface FieldDescription {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeSize: number;
  dataTypeModifier: number;
  format: 0 | 1;
}

/** RowDescription: Int16 field count, then per field: name, table OID, column attnum, type OID, typlen, typmod, format. */
export function rowDescription(fields: readonly FieldDescription[]): Buffer {
  const w = new MessageWriter().begin(Backend.RowDescription).int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name).uint32(f.tableID).int16(f.columnID).uint32(f.dataTypeID).int16(f.dataTypeSize).int32(f.dataTypeModifier).int16(f.format);
  }
  return w.end().flush();
}

/** DataRow: Int16 column count, then per column Int32 length (-1 for NULL) and the bytes. */
export function dataRow(values: readonly (Uint8Array | null)[]): Buffer {
  return RowBatch.fromValues([values]).encode();
}

/** A complete local answer to a simple Query: description, rows, tag (text format). */
export function textResult(columns: readonly string[], rows: readonly (readonly (string | null)[])[], tag: string): Buffer[] {
  const out: Buffer[] = [
    rowDescription(columns.map((name) => ({ name, tableID: 0, columnID: 0, dataTypeID: 25, dataTypeSize: -1, dataTypeModifier: -1, format: 0 }))),
  ];
  for (const r of rows) out.push(dataRow(r.map((v) => (v === null ? null : Buffer.from(v)))));
  out.push(commandComplete(tag));
  return out;
}
