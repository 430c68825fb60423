/**
 * Whatever bytes a client sends, before or after login, only its own connection is affected:
 * after each case a client connected before it and a client connecting after it are served.
 * Cases are arbitrary bytes and mutated sequences of valid messages of every frontend kind,
 * against a proxy with no plugins (bytes pass undecoded) and one whose plugins make it decode
 * every message, on both upstreams. The seed is fixed and the count bounded, so a failure
 * reproduces and the suite stays short.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { startTarget, type Target, type UpstreamKind } from '../support/proxy-matrix.js';
import { RawClient } from '../support/raw-client.js';
import { AFTER_LOGIN, BEFORE_LOGIN, DURING_LOGIN, decodingPlugin, mutate, mutation, type Mutation } from '../support/frontend-fuzz.js';

const SEED = 20261204;
const RUNS = Number(process.env.MALFORMED_RUNS ?? 60);

type Case =
  | { phase: 'bytes'; bytes: Uint8Array }
  | { phase: 'before' | 'during' | 'after'; picks: readonly number[]; mutations: Mutation[] };

const picks = (pool: readonly Buffer[]): fc.Arbitrary<number[]> => fc.array(fc.nat({ max: pool.length - 1 }), { minLength: 1, maxLength: 4 });

const caseArb: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ phase: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  // Only the first startup packet counts before login: one packet, mutated.
  fc.record({ phase: fc.constant('before' as const), picks: fc.tuple(fc.nat({ max: BEFORE_LOGIN.length - 1 })), mutations: fc.array(mutation, { minLength: 1, maxLength: 2 }) }),
  fc.record({ phase: fc.constant('during' as const), picks: picks(DURING_LOGIN), mutations: fc.array(mutation, { minLength: 1, maxLength: 2 }) }),
  fc.record({ phase: fc.constant('after' as const), picks: picks(AFTER_LOGIN), mutations: fc.array(mutation, { minLength: 1, maxLength: 2 }) }),
  fc.record({ phase: fc.constant('after' as const), picks: picks(AFTER_LOGIN), mutations: fc.array(mutation, { minLength: 1, maxLength: 2 }) }),
);

/** A socket connected to the proxy that has sent nothing yet. */
async function connect(port: number): Promise<net.Socket> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return sock;
}

/** Send the bytes and give the proxy a moment with them (or until it closes the connection). */
async function sendAndLinger(sock: net.Socket, bytes: Uint8Array): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 40);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    sock.write(bytes);
  });
  sock.destroy();
}

async function runCase(t: Target, c: Case): Promise<void> {
  const user = t.kind === 'postgres' ? 'trustuser' : 'postgres';
  switch (c.phase) {
    case 'bytes':
      await sendAndLinger(await connect(t.port), c.bytes);
      return;
    case 'before':
      await sendAndLinger(await connect(t.port), mutate(c.picks.map((i) => BEFORE_LOGIN[i]!), c.mutations, false));
      return;
    case 'during': {
      // The superuser logs in with a password on the real server: these arrive during its exchange.
      const sock = await connect(t.port);
      sock.write(serialize.startup({ user: 'postgres', database: 'postgres' }));
      await sendAndLinger(sock, mutate(c.picks.map((i) => DURING_LOGIN[i]!), c.mutations, true));
      return;
    }
    case 'after': {
      const raw = await RawClient.connect(t.port, user);
      await sendAndLinger(raw.sock, mutate(c.picks.map((i) => AFTER_LOGIN[i]!), c.mutations, true));
      return;
    }
  }
}

async function selectOne(c: RawClient): Promise<void> {
  c.write(serialize.query('select 1 as alive'));
  const answer = await c.untilReady();
  expect(answer.map((m) => m.code).join('')).toBe('TDCZ');
}

for (const kind of ['embedded', 'postgres'] as const satisfies readonly UpstreamKind[]) {
  for (const decoding of [false, true]) {
    describe(`malformed client input [${kind}${decoding ? ', plugins decoding every message' : ''}]`, () => {
      let t: Target;
      let sentinel: RawClient;
      // What would end a proxy process outside the test runner.
      const escaped: unknown[] = [];
      const onEscaped = (err: unknown): void => void escaped.push(err);
      beforeAll(async () => {
        process.on('uncaughtException', onEscaped);
        process.on('unhandledRejection', onEscaped);
        t = await startTarget(kind, decoding ? [decodingPlugin()] : []);
        sentinel = await RawClient.connect(t.port, kind === 'postgres' ? 'trustuser' : 'postgres');
      });
      afterAll(async () => {
        process.off('uncaughtException', onEscaped);
        process.off('unhandledRejection', onEscaped);
        sentinel?.end();
        await t?.proxy.stop(2_000);
      });

      it('keeps serving a connected client and new clients after each case', async () => {
        await fc.assert(
          fc.asyncProperty(caseArb, async (c) => {
            await runCase(t, c);
            expect(escaped).toEqual([]);
            await selectOne(sentinel);
            const fresh = await RawClient.connect(t.port, kind === 'postgres' ? 'trustuser' : 'postgres');
            try {
              await selectOne(fresh);
            } finally {
              fresh.end();
            }
          }),
          { seed: SEED, numRuns: RUNS, endOnFailure: true },
        );
      }, 120_000);
    });
  }
}
