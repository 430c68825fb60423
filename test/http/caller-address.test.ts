/**
 * The records of an HTTP read name the HTTP caller's address and port, not the loopback socket
 * the API opened to the proxy; and no client of the Postgres port can claim an address by what
 * it sends at startup.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { httpBase } from './http-client.js';

const PASSWORD = 'http-pw';

/** A GET from a socket bound to `localAddress`; with the port the request came from. */
function getFrom(url: string, localAddress: string, auth: string): Promise<{ status: number; body: string; port: number }> {
  return new Promise((resolve, reject) => {
    let port = 0;
    const req = http.get(url, { localAddress, headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}` }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, port }));
    });
    req.on('socket', (s: net.Socket) => s.once('connect', () => (port = s.localPort ?? 0)));
    req.on('error', reject);
  });
}

/** A socket for node-postgres that connects from `localAddress`. */
function boundSocket(localAddress: string): () => net.Socket {
  return () => {
    const s = new net.Socket();
    const connect = s.connect.bind(s) as (o: net.TcpSocketConnectOpts) => net.Socket;
    (s as unknown as { connect: (port: number, host: string) => net.Socket }).connect = (port, host) => connect({ port, host, localAddress });
    return s;
  };
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`HTTP records name the HTTP caller [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 } }));
    const reader = uniqueName('reader');
    const table = uniqueName('addressed');
    let admin: pg.Client;

    beforeAll(async () => {
      await t.proxy.registryLoaded;
      admin = await t.pg();
      await admin.query(`CREATE ROLE ${reader} LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'ann@example.com')`);
      await admin.query(`GRANT SELECT ON ${table} TO ${reader}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [uniqueName('mask'), table, '(v) => v.slice(0, 2) + "***"']);
    });
    afterAll(async () => {
      await admin?.end();
    });

    it('records an HTTP read with the address and port the HTTP request came from', async () => {
      const r = await eventually(
        () => getFrom(`${httpBase(t)}/data/${table}/1`, '127.0.0.5', `${reader}:${PASSWORD}`),
        (a) => a.status === 200 && a.body.includes('an***'),
      );
      const ids = (JSON.parse(r.body) as { executions: string[] }).executions;
      expect(ids).toHaveLength(1);
      const rec = (await admin.query('SELECT client_addr, client_port, application_name, user_name FROM provenance.executions WHERE id = $1', [ids[0]])).rows[0];
      expect(rec).toEqual({ client_addr: '127.0.0.5', client_port: r.port, application_name: 'http', user_name: reader });
    });

    it('records a Postgres client at its own address, whatever it says at startup', async () => {
      const c = await t.pg({
        user: reader, password: PASSWORD, application_name: 'http', options: '-c application_name=http',
        stream: boundSocket('127.0.0.6'),
      });
      try {
        const port = ((c as unknown as { connection: { stream: net.Socket } }).connection.stream).localPort;
        const before = Date.now();
        await eventually(async () => (await c.query(`SELECT email FROM ${table}`)).rows[0]?.email, (e) => e === 'an***');
        const rec = await eventually(
          async () => (await admin.query(
            `SELECT client_addr, client_port FROM provenance.executions
              WHERE table_name = $1 AND user_name = $2 AND executed_at >= to_timestamp($3::float8 / 1000) ORDER BY executed_at DESC LIMIT 1`,
            [`public.${table}`, reader, before],
          )).rows,
          (rows) => rows.length > 0,
        );
        expect(rec[0]).toEqual({ client_addr: '127.0.0.6', client_port: port });
      } finally {
        await c.end();
      }
    });
  });
}
