/**
 * A minimal extended-protocol client for codec tests: it sends parameters in the format asked for
 * and returns each field's bytes exactly as the server sent them, with the column's type, typmod
 * and format from the RowDescription.
 */
import { serialize } from 'pg-protocol';
import { RawClient, type RawMessage } from '../support/raw-client.js';
import { decodeErrorResponse, decodeRowDescription } from '../../proxy/wire/backend-decoders.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';

export interface Field {
  readonly name: string;
  readonly oid: number;
  readonly typmod: number;
  readonly format: 0 | 1;
}

export interface Result {
  readonly fields: readonly Field[];
  readonly rows: readonly (readonly (Buffer | null)[])[];
}

export interface Param {
  readonly value: Buffer | null;
  readonly format: 0 | 1;
  /** Parameter type for Parse; 0 lets the server infer it. */
  readonly oid?: number;
}

export class ServerError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ServerError';
  }
}

/** Bind: portal, statement, parameter formats, parameters (Int32 length or -1, bytes), result formats. */
function bind(params: readonly Param[], resultFormat: 0 | 1): Buffer {
  const parts: Buffer[] = [Buffer.from('\0\0'), Buffer.alloc(2)];
  parts[1]!.writeInt16BE(params.length);
  for (const p of params) {
    const f = Buffer.alloc(2);
    f.writeInt16BE(p.format);
    parts.push(f);
  }
  const n = Buffer.alloc(2);
  n.writeInt16BE(params.length);
  parts.push(n);
  for (const p of params) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(p.value === null ? -1 : p.value.length);
    parts.push(len);
    if (p.value !== null) parts.push(p.value);
  }
  const rf = Buffer.alloc(4);
  rf.writeInt16BE(1, 0);
  rf.writeInt16BE(resultFormat, 2);
  parts.push(rf);
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write('B', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export class WireClient {
  private constructor(private readonly raw: RawClient) {}

  /** Connects as the test cluster's trust-authenticated role. */
  static async connect(port: number): Promise<WireClient> {
    return new WireClient(await RawClient.connect(port, 'trustuser', 'postgres'));
  }

  /** Runs statements with the simple protocol (SET ...), failing on an error. */
  async simple(sql: string): Promise<void> {
    this.raw.write(serialize.query(sql));
    const msgs = await this.raw.untilReady();
    this.throwIfError(msgs);
  }

  /** One statement with the extended protocol: parameters in their formats, results in resultFormat. */
  async query(sql: string, params: readonly Param[] = [], resultFormat: 0 | 1 = 0): Promise<Result> {
    this.raw.write(
      Buffer.concat([
        serialize.parse({ text: sql, types: params.map((p) => p.oid ?? 0) }),
        bind(params, resultFormat),
        serialize.describe({ type: 'P' }),
        serialize.execute(),
        serialize.sync(),
      ]),
    );
    const msgs = await this.raw.untilReady();
    this.throwIfError(msgs);
    let fields: Field[] = [];
    const rows: (Buffer | null)[][] = [];
    for (const m of msgs) {
      if (m.code === 'T') fields = decodeRowDescription(m.raw).map((f) => ({ name: f.name, oid: f.dataTypeID, typmod: f.dataTypeModifier, format: f.format }));
      else if (m.code === 'D') rows.push(RowBatch.fromFrames([m.raw]).values()[0]!.map((v) => (v === null ? null : Buffer.from(v))));
    }
    return { fields, rows };
  }

  /** The single field of a one-row, one-column query. */
  async scalar(sql: string, resultFormat: 0 | 1, params: readonly Param[] = []): Promise<{ field: Field; raw: Buffer | null }> {
    const r = await this.query(sql, params, resultFormat);
    if (r.fields.length !== 1 || r.rows.length !== 1) throw new Error(`expected one value from ${sql}`);
    return { field: r.fields[0]!, raw: r.rows[0]![0] ?? null };
  }

  private throwIfError(msgs: readonly RawMessage[]): void {
    const err = msgs.find((m) => m.code === 'E');
    if (err) {
      const e = decodeErrorResponse(err.raw);
      throw new ServerError(e.message, e.code);
    }
  }

  end(): void {
    this.raw.end();
  }
}
