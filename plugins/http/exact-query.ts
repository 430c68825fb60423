/**
 * A recorded statement run again exactly as its client sent it: Parse with the parameter types
 * its Parse declared, Bind with its parameters' formats and raw bytes, Describe, Execute of every
 * row, Sync. node-postgres's own queries turn parameters into text or binary as it sees fit, so
 * this is a query object of its own (node-postgres's Submittable, as pg-cursor is), whose Bind is
 * written as recorded. Results come in text format, as every HTTP read's do.
 */
import type pg from 'pg';
import { encodeBindHead } from '../../proxy/wire/frontend-messages.js';

export interface RecordedStatement {
  readonly text: string;
  readonly paramTypes: readonly number[];
  readonly paramFormats: readonly number[];
  readonly params: readonly (Buffer | null)[];
}

export interface ExactResult {
  readonly names: readonly string[];
  readonly types: readonly number[];
  readonly rows: (string | null)[][];
}

/** Bind's body after the portal and statement names: formats, values, result formats (none: all text). */
function bindRest(s: RecordedStatement): Buffer {
  const parts: Buffer[] = [];
  const int16 = (n: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(n);
    return b;
  };
  const int32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  parts.push(int16(s.paramFormats.length), ...s.paramFormats.map(int16), int16(s.params.length));
  for (const v of s.params) parts.push(...(v === null ? [int32(-1)] : [int32(v.length), v]));
  parts.push(int16(0));
  return Buffer.concat(parts);
}

interface Field {
  readonly name: string;
  readonly dataTypeID: number;
}

/** The query object; `done` settles at its ReadyForQuery. */
export class ExactQuery implements pg.Submittable {
  readonly done: Promise<ExactResult>;
  private names: string[] = [];
  private types: number[] = [];
  private readonly rows: (string | null)[][] = [];
  private settle!: { resolve: (r: ExactResult) => void; reject: (err: Error) => void };

  constructor(private readonly statement: RecordedStatement) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  submit(connection: pg.Connection): void {
    const s = this.statement;
    connection.parse({ text: s.text, types: [...s.paramTypes] } as unknown as pg.QueryParse, true);
    connection.stream.write(encodeBindHead({ portal: '', statement: '', rest: bindRest(s) }));
    connection.describe({ type: 'P', name: '' }, true);
    connection.execute({ portal: '', rows: 0 } as unknown as pg.ExecuteConfig, true);
    connection.sync();
  }

  handleRowDescription(msg: { fields: readonly Field[] }): void {
    this.names = msg.fields.map((f) => f.name);
    this.types = msg.fields.map((f) => f.dataTypeID);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.rows.push(msg.fields);
  }

  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail('a replay sends no COPY data');
  }

  handleCopyData(): void {}

  /** node-postgres lets go of a query at its error: its ReadyForQuery goes to nobody. */
  handleError(err: Error): void {
    this.settle.reject(err);
  }

  handleReadyForQuery(): void {
    this.settle.resolve({ names: this.names, types: this.types, rows: this.rows });
  }
}
