/**
 * Where execution records wait while the provenance database cannot take them: an append-only
 * file in the data directory, one JSON record per line, each append made durable (fdatasync)
 * before it is acknowledged. Records leave it in the order they came, once the database took
 * them; a crash in between only means some are offered again, which the writer's idempotent
 * insert absorbs.
 *
 * A line without its final newline is an append that never completed (nobody was told it was
 * durable): it is cut off when the spool is opened.
 */
import { open, rename, stat, truncate, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';

export class Spool {
  private handle: FileHandle | null = null;
  /** Records in the file. */
  private records = 0;
  /** Appends and compactions run one after another. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  get count(): number {
    return this.records;
  }

  async open(): Promise<void> {
    const size = await stat(this.path).then((s) => s.size, () => -1);
    if (size > 0) {
      const { lines, end } = await this.scan(size);
      if (end < size) await truncate(this.path, end);
      this.records = lines;
    }
    this.handle = await open(this.path, 'a');
  }

  /** Appends records; resolves once they are on disk. */
  append(records: readonly unknown[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const body = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    return this.serial(async () => {
      const h = this.handle;
      if (!h) throw new Error('the provenance spool is closed');
      await h.write(body);
      await h.datasync();
      this.records += records.length;
    });
  }

  /** Up to `max` records from the start, and the byte offset just after them. */
  async head(max: number): Promise<{ records: unknown[]; end: number }> {
    await this.chain.catch(() => undefined);
    const records: unknown[] = [];
    let end = 0;
    let tail = '';
    const stream = createReadStream(this.path, { encoding: 'utf8', highWaterMark: 1 << 20 });
    try {
      for await (const chunk of stream as AsyncIterable<string>) {
        const text = tail + chunk;
        let from = 0;
        for (;;) {
          const nl = text.indexOf('\n', from);
          if (nl < 0) break;
          records.push(JSON.parse(text.slice(from, nl)));
          end += Buffer.byteLength(text.slice(from, nl + 1));
          from = nl + 1;
          if (records.length >= max) return { records, end };
        }
        tail = text.slice(from);
      }
    } finally {
      stream.destroy();
    }
    return { records, end };
  }

  /** Drops the first `end` bytes, holding `n` records, that the database has taken. */
  consume(end: number, n: number): Promise<void> {
    return this.serial(async () => {
      const size = (await stat(this.path)).size;
      if (end >= size) {
        await this.handle?.truncate(0);
      } else {
        // Keep the tail: copy it to a new file, then swap it in atomically.
        const tmp = `${this.path}.compact`;
        const src = await open(this.path, 'r');
        const dst = await open(tmp, 'w');
        try {
          const buf = Buffer.allocUnsafe(1 << 20);
          let pos = end;
          for (;;) {
            const { bytesRead } = await src.read(buf, 0, buf.length, pos);
            if (bytesRead === 0) break;
            await dst.write(buf.subarray(0, bytesRead));
            pos += bytesRead;
          }
          await dst.datasync();
        } finally {
          await src.close();
          await dst.close();
        }
        await this.handle?.close();
        await rename(tmp, this.path);
        this.handle = await open(this.path, 'a');
      }
      this.records = Math.max(0, this.records - n);
    });
  }

  async close(): Promise<void> {
    await this.chain.catch(() => undefined);
    await this.handle?.close();
    this.handle = null;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Counts complete lines and where the last one ends. */
  private async scan(size: number): Promise<{ lines: number; end: number }> {
    let lines = 0;
    let end = 0;
    let pos = 0;
    const stream = createReadStream(this.path, { start: 0, end: size - 1, highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
        lines++;
        end = pos + i + 1;
      }
      pos += chunk.length;
    }
    return { lines, end };
  }
}
