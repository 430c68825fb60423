/**
 * `/data` streams, on both upstreams: its rows are read from the upstream a slice at a time, as the
 * HTTP client takes the body. While the client reads nothing, the proxy reads no further than what
 * the sockets' buffers hold (counted by the transform executions /metrics reports, one per slice);
 * once it reads on, the rest follows. No timing is asserted: the count is read once it stopped
 * moving, and a proxy that read the whole result first would have run every slice by then.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type pg from 'pg';
import { uniqueName, useTarget, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { call, httpBase } from './http-client.js';

const PASSWORD = 'http-pw';
const ROWS = 40_000;
const LIMIT = 39_750;
/** The API reads 500 rows at a time: 79 whole slices and one of 250. */
const SLICES = 80;

async function executions(t: Target, transform: string): Promise<number> {
  const text = (await call(t, '/metrics')).text;
  const m = new RegExp(`^provenance_proxy_transform_executions_total\\{transform="${transform}",kind="read"\\} (\\d+)$`, 'm').exec(text);
  return Number(m?.[1] ?? 0);
}

/** The count once five readings 100 ms apart agree. */
async function settled(t: Target, transform: string): Promise<number> {
  const seen: number[] = [];
  return eventually(async () => {
    await new Promise((r) => setTimeout(r, 100));
    seen.push(await executions(t, transform));
    return seen.slice(-5);
  }, (last) => last.length === 5 && last.every((n) => n === last[0]), 60_000).then((last) => last[0]!);
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`HTTP /data streams a large table [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 } }));
    const reader = uniqueName('reader');
    const table = uniqueName('wide');
    const mask = uniqueName('mask');
    let admin: pg.Client;

    beforeAll(async () => {
      await t.proxy.registryLoaded;
      admin = await t.pg();
      await admin.query(`CREATE ROLE ${reader} LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, pad text)`);
      await admin.query(`INSERT INTO ${table} SELECT i, 'u' || i || '@example.com', repeat('x', 1000) FROM generate_series(1, ${ROWS}) i`);
      await admin.query(`GRANT SELECT ON ${table} TO ${reader}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [mask, table, '(v) => v.split("@")[0] + "***"']);
      await eventually(async () => (await call(t, `/data/${table}/1`, { user: reader, password: PASSWORD })).text, (s) => s.includes('u1***'));
    }, 120_000);
    afterAll(async () => {
      await admin?.end();
    });

    it('reads no further ahead than the client takes', async () => {
      const before = await executions(t, mask);
      const body: Buffer[] = [];
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get(`${httpBase(t)}/data/${table}?limit=${LIMIT}`, { auth: `${reader}:${PASSWORD}` }, resolve).on('error', reject);
      });
      expect(res.statusCode).toBe(200);
      // The first piece of the body, then nothing taken until the proxy stopped reading.
      await new Promise<void>((resolve) => res.once('data', (d: Buffer) => {
        body.push(d);
        res.pause();
        resolve();
      }));
      const whilePaused = (await settled(t, mask)) - before;
      expect(whilePaused).toBeGreaterThan(0);
      expect(whilePaused).toBeLessThan(SLICES * 3 / 4);
      const ended = new Promise<void>((resolve, reject) => res.on('end', resolve).on('error', reject));
      res.on('data', (d: Buffer) => body.push(d));
      res.resume();
      await ended;
      const rows = (JSON.parse(Buffer.concat(body).toString()) as { rows: { id: number; email: string }[] }).rows;
      expect(rows).toHaveLength(LIMIT);
      expect(rows[LIMIT - 1]).toMatchObject({ id: LIMIT, email: `u${LIMIT}***` });
      expect((await settled(t, mask)) - before).toBe(SLICES);
    }, 120_000);
  });
}
