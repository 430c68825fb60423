/**
 * The malformed packets of the security report, one by one. Before login the proxy answers as
 * PostgreSQL 15 does (compared with the real server of the test run); after login the client
 * gets an ErrorResponse 08P01; either way every other session goes on.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { eachUpstream, sharedCluster } from '../support/proxy-matrix.js';
import { RawClient, sqlstate } from '../support/raw-client.js';
import { decodingPlugin } from '../support/frontend-fuzz.js';

interface Answer {
  /** Every byte the server sent before it closed the connection. */
  readonly bytes: Buffer;
  readonly closed: boolean;
}

/** Connect, send, and read until the server closes the connection (or 3 s pass). */
function exchange(port: number, bytes: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => finish(false), 3_000);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => finish(true));
  });
}

/** The answer's shape: "closed without a word", or the first message's code and SQLSTATE. */
function shape(a: Answer): string {
  if (a.bytes.length === 0) return a.closed ? 'closed silently' : 'no answer, still open';
  const code = String.fromCharCode(a.bytes[0]!);
  const body = a.bytes.subarray(5, a.bytes.readInt32BE(1) + 1);
  return `${code} ${code === 'E' ? sqlstate(body) : ''}${a.closed ? ', closed' : ''}`;
}

const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

/** Startup-phase packet: Int32 length (counting itself), body. */
const untyped = (body: Buffer): Buffer => Buffer.concat([be32(body.length + 4), body]);

const BEFORE_LOGIN: readonly (readonly [string, Buffer])[] = [
  ['StartupMessage without its final NULs', Buffer.from('00000012000300007573657200616c696365', 'hex')],
  ['StartupMessage whose last value lacks its NUL', untyped(Buffer.concat([be32(196608), Buffer.from('user\0alice\0x\0y')]))],
  ['CancelRequest of length 12', Buffer.from('0000000c04d2162e00000001', 'hex')],
  ['Terminate before the startup packet', Buffer.from('5800000004', 'hex')],
  ['startup length 4', be32(4)],
  ['startup length 7', Buffer.concat([be32(7), Buffer.from([0, 3, 0])])],
  ['startup length 10005 (the server takes at most 10000 after the length)', Buffer.concat([be32(10_005), be32(196608)])],
  ['negative startup length', be32(-8)],
];

/** Typed message: code, Int32 length, body. */
const msg = (code: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(code), be32(body.length + 4), body]);

const AFTER_LOGIN: readonly (readonly [string, Buffer])[] = [
  ['Query whose text has no terminating NUL', msg('Q', Buffer.from('select 1'))],
  ['Parse whose text has no terminating NUL', msg('P', Buffer.from('s\0select 1'))],
  ['empty Describe', msg('D', Buffer.alloc(0))],
  ['empty Close', msg('C', Buffer.alloc(0))],
  ['truncated Execute', msg('E', Buffer.from('\0\0\0'))],
  ['truncated Bind', Buffer.concat([serialize.parse({ text: 'select 1' }), msg('B', Buffer.from('\0\0\0\x01\0'))])],
];

describe('malformed startup packets, straight to PostgreSQL 15', () => {
  for (const [name, bytes] of BEFORE_LOGIN) {
    it(`${name}: the server's answer is the one the proxy must give`, async () => {
      const expected = name.startsWith('StartupMessage') ? 'E 08P01, closed' : 'closed silently';
      expect(shape(await exchange(sharedCluster().port, bytes))).toBe(expected);
    });
  }
});

eachUpstream('malformed client input', (t) => {
  for (const [name, bytes] of BEFORE_LOGIN) {
    it(`${name}: answered as PostgreSQL answers it, other sessions go on`, async () => {
      const user = t().kind === 'postgres' ? 'trustuser' : 'postgres';
      const other = await RawClient.connect(t().port, user);
      const expected = name.startsWith('StartupMessage') ? 'E 08P01, closed' : 'closed silently';
      expect(shape(await exchange(t().port, bytes))).toBe(expected);
      other.write(serialize.query('select 1'));
      expect((await other.untilReady()).map((m) => m.code).join('')).toBe('TDCZ');
      other.end();
    });
  }

  for (const [name, bytes] of AFTER_LOGIN) {
    it(`${name}: ErrorResponse 08P01 for that connection only`, async () => {
      const user = t().kind === 'postgres' ? 'trustuser' : 'postgres';
      const other = await RawClient.connect(t().port, user);
      const bad = await RawClient.connect(t().port, user);
      bad.write(Buffer.concat([bytes, serialize.sync()]));
      let m = await bad.next();
      while (m.code === '1') m = await bad.next();
      expect(m.code).toBe('E');
      expect(sqlstate(m.body)).toBe('08P01');
      bad.end();
      other.write(serialize.query('select 1'));
      expect((await other.untilReady()).map((x) => x.code).join('')).toBe('TDCZ');
      other.end();
      const fresh = await RawClient.connect(t().port, user);
      fresh.write(serialize.query('select 2'));
      expect((await fresh.untilReady()).map((x) => x.code).join('')).toBe('TDCZ');
      fresh.end();
    });
  }
}, () => [decodingPlugin()]);
