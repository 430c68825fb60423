/**
 * Nothing lost, nothing twice: execution records under faults, with the real PostgreSQL cluster.
 * - The provenance database stops while clients read: records are spooled, then written once
 *   it is back; the table holds exactly one record per result served.
 * - The store's connection dies in the middle of a write: that batch is written again, once.
 * - sync durability, the proxy killed with SIGKILL under load: every result a client received
 *   has its record after the restart, none twice.
 * - async durability: the loss window the README states (records of the last 50 ms) holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freshDataDir, sharedCluster, startTarget, uniqueName, type Target, type UpstreamKind } from '../support/proxy-matrix.js';
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js';
import { startCli, type CliProcess } from '../support/cli-process.js';
import { eventually } from '../support/eventually.js';

const NO_TRANSFORMS_DIR = path.join(tmpdir(), 'pp-no-transforms-dir');

interface Login {
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

function client(l: Login, app: string): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port: l.port, user: l.user, password: l.password, database: 'postgres', application_name: app });
  c.on('error', () => undefined);
  return c;
}

/** A table with one masking transform, masked as seen through the proxy. */
async function maskedTable(l: Login): Promise<string> {
  const c = client(l, 'pp-setup');
  await c.connect();
  try {
    const table = uniqueName('audited');
    await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, secret text)`);
    await c.query(`INSERT INTO ${table} SELECT g, 'secret-' || g FROM generate_series(1, 20) g`);
    await c.query("SELECT provenance.register_transform($1, $2, ARRAY['secret'], '(v) => \"***\"')", [uniqueName('hide'), table]);
    await eventually(() => c.query(`SELECT secret FROM ${table} WHERE id = 1`), (r) => r.rows[0]?.secret === '***', 20_000);
    return table;
  } finally {
    await c.end();
  }
}

/**
 * Clients reading the table until `stop()`; counts the results each received in full. A read
 * cut off by a fault is not counted (its client did not get the result).
 */
function readers(l: Login, table: string, app: string, n: number): { stop: () => Promise<number>; received: () => number } {
  let running = true;
  let received = 0;
  const loops = Array.from({ length: n }, async () => {
    while (running) {
      const c = client(l, app);
      try {
        await c.connect();
        while (running) {
          const r = await c.query(`SELECT id, secret FROM ${table} WHERE id <= 5`);
          if (r.rows.length === 5 && r.rows.every((x: { secret: string }) => x.secret === '***')) received++;
        }
      } catch {
        await new Promise((res) => setTimeout(res, 50));
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  });
  return {
    received: () => received,
    async stop() {
      running = false;
      await Promise.all(loops);
      return received;
    },
  };
}

/** How many executions of `app` are recorded, and how many distinct ones. */
async function recordedVia(c: pg.Client, app: string): Promise<{ total: number; distinct: number }> {
  await c.connect();
  try {
    const r = await c.query('SELECT count(*)::int AS total, count(DISTINCT id)::int AS distinct FROM provenance.executions WHERE application_name = $1', [app]);
    return r.rows[0] as { total: number; distinct: number };
  } finally {
    await c.end();
  }
}

const recorded = (url: string, app: string): Promise<{ total: number; distinct: number }> => recordedVia(new pg.Client({ connectionString: url }), app);

async function status(l: Login): Promise<Record<string, string>> {
  const c = client(l, 'pp-status');
  await c.connect();
  try {
    return (await c.query('SHOW provenance.status')).rows[0] as Record<string, string>;
  } finally {
    await c.end();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const kind of ['embedded', 'postgres'] as const satisfies readonly UpstreamKind[]) {
  describe(`provenance under faults [${kind}]`, () => {
    let store: PgCluster;
    let t: Target;
    beforeAll(async () => {
      store = await startPgCluster();
      t = await startTarget(kind, [], { provenanceStore: store.url(), provenanceDurability: 'async' });
    }, 120_000);
    afterAll(async () => {
      await t?.proxy.stop(2_000);
      await store?.destroy();
    });

    it('spools while the provenance database is down and writes every record once when it returns', async () => {
      const table = await maskedTable(t);
      const app = uniqueName('pp-outage');
      const load = readers(t, table, app, 4);
      await eventually(async () => load.received(), (n) => n > 20, 20_000);
      await store.stop('fast');
      const during = load.received();
      await eventually(async () => load.received(), (n) => n > during + 50, 20_000);
      const spooled = await eventually(() => status(t), (s) => Number(s['spooled']) > 0, 10_000);
      expect(Number(spooled['spooled'])).toBeGreaterThan(0);
      await store.start();
      const after = load.received();
      await eventually(async () => load.received(), (n) => n > after + 20, 20_000);
      const served = await load.stop();
      const settled = await eventually(() => status(t), (s) => s['spooled'] === '0' && s['queued'] === '0', 30_000);
      expect(settled).toMatchObject({ spooled: '0', queued: '0' });
      const counts = await recorded(store.url(), app);
      expect(counts).toEqual({ total: served, distinct: served });
    }, 120_000);

    it('writes every record once when the store connection dies in the middle of a write', async () => {
      const table = await maskedTable(t);
      const app = uniqueName('pp-write-cut');
      const load = readers(t, table, app, 4);
      await eventually(async () => load.received(), (n) => n > 20, 20_000);
      // The store has its schema and takes records.
      await eventually(() => recorded(store.url(), app).catch(() => ({ total: 0 })), (r) => r.total > 0, 20_000);
      // The log locked: the next batch waits for it, in the middle of its transaction.
      const admin = new pg.Client({ connectionString: store.url() });
      await admin.connect();
      try {
        await admin.query('BEGIN');
        await admin.query('LOCK TABLE provenance.execution_log IN EXCLUSIVE MODE');
        const held = await eventually(
          // Activity is read afresh: in a transaction it is a snapshot taken at the first read.
          async () => (await admin.query('SELECT pg_stat_clear_snapshot()'), await admin.query<{ pid: number; query: string }>(
            `SELECT pid, query FROM pg_stat_activity
              WHERE application_name = 'provenance-proxy' AND state = 'active' AND wait_event_type = 'Lock'`,
          )).rows,
          (r) => r.length > 0, 20_000,
        );
        // The insert of small batches, or the COPY of large ones (plugins/provenance/execution-writer.ts).
        expect(held[0]!.query).toMatch(/^(WITH [tq] AS MATERIALIZED|COPY provenance\.execution_log)/);
        await admin.query('SELECT pg_terminate_backend($1)', [held[0]!.pid]);
        await admin.query('COMMIT');
      } finally {
        await admin.end();
      }
      const after = load.received();
      await eventually(async () => load.received(), (n) => n > after + 20, 20_000);
      const served = await load.stop();
      await eventually(() => status(t), (s) => s['spooled'] === '0' && s['queued'] === '0', 30_000);
      expect(await recorded(store.url(), app)).toEqual({ total: served, distinct: served });
    }, 120_000);
  });

  describe(`provenance when the proxy is killed [${kind}]`, () => {
    let dataDir: string;
    let upstreamArgs: string[];
    let login: Omit<Login, 'port'>;
    let storeUrl: string;
    beforeAll(() => {
      const cluster = sharedCluster();
      dataDir = kind === 'embedded' ? freshDataDir() : path.join(tmpdir(), uniqueName('pp-kill-'));
      upstreamArgs = kind === 'embedded' ? [] : ['--upstream', cluster.url().replace(/\?.*$/, '') + '?sslmode=disable'];
      login = kind === 'embedded' ? { user: 'postgres', password: '' } : { user: 'postgres', password: cluster.password };
      storeUrl = cluster.url();
    });
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    const start = (durability: 'sync' | 'async'): Promise<CliProcess> =>
      startCli(['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--transforms', NO_TRANSFORMS_DIR, '--no-demo',
        '--provenance-durability', durability, ...upstreamArgs], { OTEL_TRACES_EXPORTER: 'none' });

    /** Records of `app`, read through a proxy (embedded) or straight from the cluster. */
    function count(p: CliProcess, app: string): Promise<{ total: number; distinct: number }> {
      return kind === 'postgres' ? recorded(storeUrl, app) : recordedVia(client({ ...login, port: p.port }, 'pp-count'), app);
    }

    it('sync: every result a client received is recorded after a SIGKILL under load, none twice', async () => {
      let p = await start('sync');
      const l = { ...login, port: p.port };
      const table = await maskedTable(l);
      const app = uniqueName('pp-kill');
      const clients = 4;
      const load = readers(l, table, app, clients);
      await eventually(async () => load.received(), (n) => n > 100, 30_000);
      p.child.kill('SIGKILL');
      await p.exited;
      const served = await load.stop();
      p = await start('sync');
      try {
        await eventually(() => status({ ...login, port: p.port }), (s) => s['spooled'] === '0' && s['queued'] === '0', 30_000);
        const counts = await count(p, app);
        // Each client had at most one read in flight whose records were written but whose
        // CommandComplete never arrived.
        expect(counts.total).toBe(counts.distinct);
        expect(counts.total).toBeGreaterThanOrEqual(served);
        expect(counts.total).toBeLessThanOrEqual(served + clients);
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    }, 180_000);

    it('async: a SIGKILL loses nothing older than the stated window', async () => {
      let p = await start('async');
      const l = { ...login, port: p.port };
      const table = await maskedTable(l);
      const app = uniqueName('pp-window');
      const load = readers(l, table, app, 4);
      await eventually(async () => load.received(), (n) => n > 100, 30_000);
      const served = await load.stop();
      // The stated window is 50 ms; wait well past it, then crash.
      await sleep(500);
      p.child.kill('SIGKILL');
      await p.exited;
      p = await start('async');
      try {
        await eventually(() => status({ ...login, port: p.port }), (s) => s['spooled'] === '0' && s['queued'] === '0', 30_000);
        expect(await count(p, app)).toEqual({ total: served, distinct: served });
      } finally {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    }, 180_000);
  });
}
