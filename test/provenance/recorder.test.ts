import { mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Recorder } from '../../plugins/provenance/recorder.js';
import { Spool } from '../../plugins/provenance/spool.js';
import type { SqlRunner } from '../../plugins/registry/migrate.js';

/** A provenance database that can be taken down, keeping rows by id as the real insert does. */
class FakeStore implements SqlRunner {
  up = true;
  /** Ids in the order they were first inserted. */
  readonly ids: string[] = [];
  readonly seen = new Set<string>();
  inserts = 0;
  delayMs = 0;

  async query(_sql: string, params: readonly unknown[] = []): Promise<{ rows: Record<string, unknown>[] }> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (!this.up) throw new Error('connection refused');
    this.inserts++;
    for (const r of JSON.parse(String(params[0])) as { id: string }[]) {
      if (this.seen.has(r.id)) continue;
      this.seen.add(r.id);
      this.ids.push(r.id);
    }
    return { rows: [] };
  }

  async exec(): Promise<void> {}
}

/** Retries an assertion until it holds or the time is up (then its failure is reported). */
async function eventually(check: () => void, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

function spoolPath(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'pp-spool-')), 'provenance.spool');
}

async function recorderOn(file: string, db: FakeStore, extra: Partial<ConstructorParameters<typeof Recorder>[0]> = {}): Promise<Recorder> {
  const spool = new Spool(file);
  await spool.open();
  const r = new Recorder({
    spool, store: () => (db.up ? db : null), write: async (store, rows) => void (await store.query('INSERT', [JSON.stringify(rows)])), flushMs: 5, retryMs: 20, log: () => undefined, ...extra,
  });
  r.start();
  return r;
}

const rows = (from: number, n: number): { id: string }[] => Array.from({ length: n }, (_, i) => ({ id: `r${from + i}` }));
const ids = (from: number, n: number): string[] => rows(from, n).map((r) => r.id);

describe('provenance recorder', () => {
  it('writes queued records in batches, in order, off the caller\'s path', async () => {
    const db = new FakeStore();
    const r = await recorderOn(spoolPath(), db, { batchSize: 100 });
    for (let i = 0; i < 25; i++) expect(r.add(rows(i * 10, 10), false)).toBeUndefined();
    await eventually(() => expect(db.ids).toEqual(ids(0, 250)));
    expect(db.inserts).toBeLessThanOrEqual(5);
    expect(r.status()).toEqual({ queued: 0, spooled: 0, written: 250, lastError: null });
    await r.close();
  });

  it('keeps batches full under steady load: records that arrive during a write wait for their timer', async () => {
    // Writing whatever came in during the last write, at once, would shrink the batches under
    // steady load to the few records of one write's duration.
    const db = new FakeStore();
    const sizes: number[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((open) => (release = open));
    const query = db.query.bind(db);
    db.query = async (sql, params = []) => {
      sizes.push((JSON.parse(String(params[0])) as unknown[]).length);
      await gate;
      return query(sql, params);
    };
    const r = await recorderOn(spoolPath(), db, { batchSize: 100, flushMs: 5_000 });
    r.add(rows(0, 1), false);
    const first = r.flush();
    for (let i = 1; i <= 5; i++) r.add(rows(i, 1), false);
    release();
    await first;
    await new Promise((done) => setTimeout(done, 50));
    // The five wait for their timer (or a full batch, or close), not for the first write to end.
    expect(sizes).toEqual([1]);
    await r.close();
    expect(sizes).toEqual([1, 5]);
    expect(db.ids).toEqual(ids(0, 6));
  });

  it('spools while the database is down, then writes the spool first, in order, exactly once', async () => {
    const db = new FakeStore();
    const file = spoolPath();
    const r = await recorderOn(file, db, { batchSize: 10 });
    r.add(rows(0, 5), false);
    await r.flush();
    db.up = false;
    r.add(rows(5, 30), false);
    await r.flush();
    expect(r.status().spooled).toBe(30);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(30);
    // Records that arrive while the spool is not empty queue behind it, even with the database back.
    db.up = true;
    r.add(rows(35, 5), false);
    await eventually(() => expect(db.ids).toEqual(ids(0, 40)));
    // The spool's lines are removed once the database has them.
    await eventually(() => expect(r.status()).toMatchObject({ spooled: 0, queued: 0, written: 40, lastError: null }));
    expect(readFileSync(file, 'utf8')).toBe('');
    await r.close();
  });

  it('sync: add resolves only once the records are in the database, or on disk in the spool', async () => {
    const db = new FakeStore();
    const file = spoolPath();
    const r = await recorderOn(file, db);
    db.delayMs = 30;
    let settled = false;
    const p = r.add(rows(0, 3), true)!.then(() => (settled = true));
    await new Promise((res) => setTimeout(res, 10));
    expect(settled).toBe(false);
    await p;
    expect(db.ids).toEqual(ids(0, 3));
    db.delayMs = 0;
    db.up = false;
    await r.add(rows(3, 2), true);
    expect(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(ids(3, 2));
    db.up = true;
    await eventually(() => expect(db.ids).toEqual(ids(0, 5)));
    await r.close();
  });

  it('a graceful close spools what the database cannot take; the next start writes it', async () => {
    const db = new FakeStore();
    const file = spoolPath();
    db.up = false;
    const first = await recorderOn(file, db);
    first.add(rows(0, 7), false);
    await first.close();
    expect(db.ids).toEqual([]);
    db.up = true;
    const second = await recorderOn(file, db);
    await eventually(() => expect(db.ids).toEqual(ids(0, 7)));
    await second.close();
  });

  it('records offered twice (a crash between insert and spool removal) are stored once', async () => {
    const db = new FakeStore();
    const file = spoolPath();
    // The spool of a process that died after its database insert but before removing the lines.
    writeFileSync(file, rows(0, 4).map((x) => JSON.stringify(x)).join('\n') + '\n');
    await db.query('INSERT', [JSON.stringify(rows(0, 4))]);
    const r = await recorderOn(file, db);
    await eventually(() => expect(r.status().spooled).toBe(0));
    r.add(rows(4, 1), false);
    await eventually(() => expect(db.ids).toEqual(ids(0, 5)));
    await r.close();
  });

  it('cuts a torn last line (an append that never completed) when the spool is opened', async () => {
    const db = new FakeStore();
    db.up = false;
    const file = spoolPath();
    writeFileSync(file, rows(0, 2).map((x) => JSON.stringify(x)).join('\n') + '\n');
    appendFileSync(file, '{"id":"r2"');
    const r = await recorderOn(file, db);
    expect(r.status().spooled).toBe(2);
    r.add(rows(3, 1), false);
    await r.flush();
    db.up = true;
    await eventually(() => expect(db.ids).toEqual(['r0', 'r1', 'r3']));
    await r.close();
  });

  it('keeps memory bounded: far behind, the queue is spilled to the spool', async () => {
    const db = new FakeStore();
    db.delayMs = 50;
    const file = spoolPath();
    const r = await recorderOn(file, db, { batchSize: 10, maxQueued: 50 });
    r.add(rows(0, 10), false);
    for (let i = 1; i < 30; i++) r.add(rows(i * 10, 10), false);
    await r.flush();
    expect(r.status().queued).toBe(0);
    await eventually(() => expect(db.ids).toEqual(ids(0, 300)), 10_000);
    await r.close();
  });
});
