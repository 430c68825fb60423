/**
 * A recorded statement run again exactly as its client sent it: Parse with the parameter types
 * its Parse declared, Bind with its parameters' formats and raw bytes, Describe, Execute of every
 * row, Sync. node-postgres's own queries turn parameters into text or binary as it sees fit, so
 * this is a query object of its own (node-postgres's Submittable, as pg-cursor is), whose Bind is
 * written as recorded. Results come in text format, as every HTTP read's do.
 *
 * A chunk of a portal is replayed by executing the portal again in the chunks it was read in
 * (one Execute with each row limit, in one unit): each is a result of its own, as each recorded
 * chunk was, and the rows kept are the last Execute's. The earlier ones are sent with a Flush and
 * answered before the last is sent (the portal lives on until Sync), so that what the last one
 * caused can be told apart (`beforeLast`).
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
  /** Executes answered so far (each ends with CommandComplete or PortalSuspended). */
  private answered = 0;
  private synced = false;
  private settle!: { resolve: (r: ExactResult) => void; reject: (err: Error) => void };

  /** `limits`: the row limit of each Execute, in order (0: every row left); `beforeLast` runs once the others are answered. */
  constructor(
    private readonly statement: RecordedStatement,
    private readonly limits: readonly number[] = [0],
    private readonly beforeLast: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  submit(connection: pg.Connection): void {
    const s = this.statement;
    connection.parse({ text: s.text, types: [...s.paramTypes] } as unknown as pg.QueryParse, true);
    connection.stream.write(encodeBindHead({ portal: '', statement: '', rest: bindRest(s) }));
    connection.describe({ type: 'P', name: '' }, true);
    if (this.limits.length === 1) return this.sendLast(connection);
    for (const rows of this.limits.slice(0, -1)) this.execute(connection, rows);
    connection.flush();
  }

  private execute(connection: pg.Connection, rows: number): void {
    connection.execute({ portal: '', rows } as unknown as pg.ExecuteConfig, true);
  }

  private sendLast(connection: pg.Connection): void {
    this.execute(connection, this.limits[this.limits.length - 1] ?? 0);
    this.synced = true;
    connection.sync();
  }

  /** An Execute was answered: after the one before the last, the last goes. */
  private executeAnswered(connection: pg.Connection): void {
    if (++this.answered !== this.limits.length - 1 || this.synced) return;
    this.beforeLast().then(() => this.sendLast(connection), (err: unknown) => {
      this.synced = true;
      connection.sync();
      this.settle.reject(err instanceof Error ? err : new Error(String(err)));
    });
  }

  handleRowDescription(msg: { fields: readonly Field[] }): void {
    this.names = msg.fields.map((f) => f.name);
    this.types = msg.fields.map((f) => f.dataTypeID);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.answered === this.limits.length - 1) this.rows.push(msg.fields);
  }

  handleCommandComplete(_msg: unknown, connection: pg.Connection): void {
    this.executeAnswered(connection);
  }

  handleEmptyQuery(): void {}

  handlePortalSuspended(connection: pg.Connection): void {
    this.executeAnswered(connection);
  }

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail('a replay sends no COPY data');
  }

  handleCopyData(): void {}

  /**
   * node-postgres lets go of a query at its error: its ReadyForQuery goes to nobody. The server
   * skips what comes before a Sync, so one is sent if it was not.
   */
  handleError(err: Error, connection: pg.Connection): void {
    if (!this.synced) {
      this.synced = true;
      connection.sync();
    }
    this.settle.reject(err);
  }

  handleReadyForQuery(): void {
    this.settle.resolve({ names: this.names, types: this.types, rows: this.rows });
  }
}
