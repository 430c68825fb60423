/**
 * End to end through the listener: a client that sends its first Query in the same TCP write as
 * its StartupMessage (no authentication round trip is needed on a trust login, and PostgreSQL
 * itself reads such pipelined bytes from its input buffer).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { startTarget, type Target } from '../support/proxy-matrix.js';

interface Reply {
  codes: string;
  errors: string[];
  tags: string[];
}

/** Write `bytes` in one go and read typed server messages until the `rfqCount`-th ReadyForQuery, an error close, or a timeout. */
function exchange(port: number, bytes: Buffer, rfqCount: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const reply: Reply = { codes: '', errors: [], tags: [] };
    let seen = 0;
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(reply);
    };
    const timer = setTimeout(done, 10_000);
    sock.on('connect', () => sock.write(bytes));
    sock.on('error', reject);
    sock.on('close', done);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= buf.readInt32BE(1) + 1) {
        const len = buf.readInt32BE(1) + 1;
        const msg = buf.subarray(0, len);
        buf = buf.subarray(len);
        const code = String.fromCharCode(msg[0]!);
        reply.codes += code;
        if (code === 'E') {
          const m = msg.indexOf(0x4d, 5); // 'M' field
          reply.errors.push(msg.toString('utf8', m + 1, msg.indexOf(0, m + 1)));
        }
        if (code === 'C') reply.tags.push(msg.toString('utf8', 5, msg.length - 1));
        if (code === 'Z' && ++seen === rfqCount) return done();
      }
    });
  });
}

describe('startup packet and first Query in one TCP write [embedded]', () => {
  let target: Target | undefined;
  beforeAll(async () => {
    target = await startTarget('embedded');
  });
  afterAll(async () => {
    await target?.proxy.stop(2_000);
  });

  const startup = (t: Target): Buffer => serialize.startup({ user: t.user, database: t.database });

  it('control: startup alone logs in (trust) and reaches ReadyForQuery', async () => {
    const t = target!;
    const r = await exchange(t.port, startup(t), 1);
    expect(r.errors).toEqual([]);
    expect(r.codes.startsWith('R')).toBe(true);
    expect(r.codes.endsWith('Z')).toBe(true);
  });

  it('pipelined: the Query sent right after the startup packet is answered', async () => {
    const t = target!;
    const r = await exchange(t.port, Buffer.concat([startup(t), serialize.query('SELECT 1')]), 2);
    expect(r.errors).toEqual([]);
    expect(r.tags).toEqual(['SELECT 1']);
  });
});
