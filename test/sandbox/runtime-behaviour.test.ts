/**
 * The runtime's observable behaviour is pinned per runtime identity: a change to what a transform
 * can observe without a new behaviour version fails here, so recorded versions are never replayed
 * by a runtime that computes something else under the same identity.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, MAX_OUTPUT_DEPTH, MAX_SOURCE_CHARS, SANDBOX_ERROR_KINDS, SANDBOX_RUNTIME_VERSION } from '../../sandbox/index.js';
import { COMPATIBLE_IDENTITIES, behavesAs, currentForm } from '../../sandbox/runtime-identity.js';
import { replayContext } from '../../plugins/transforms/replay-plan.js';
import type { SessionInfo } from '../../plugins/hooks.js';
import type { AsOfMoment } from '../../plugins/services.js';
import { observeRuntime } from './support/runtime-behaviour.js';

const GOLDEN = JSON.parse(readFileSync(new URL('./support/runtime-behaviour.golden.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** The limits a transform runs under, with the golden set's outputs. */
async function observed(): Promise<unknown> {
  return { ...(await observeRuntime()), limits: { MAX_OUTPUT_DEPTH, MAX_SOURCE_CHARS, DEFAULT_LIMITS, errorKinds: SANDBOX_ERROR_KINDS } };
}

describe('the sandbox runtime behaviour', () => {
  it(`is what runtime identity ${SANDBOX_RUNTIME_VERSION} recorded`, async () => {
    const now = await observed();
    // To record an entry for a new identity: RUNTIME_BEHAVIOUR_OUT=file, then add it under the identity.
    if (process.env['RUNTIME_BEHAVIOUR_OUT']) writeFileSync(process.env['RUNTIME_BEHAVIOUR_OUT'], `${JSON.stringify(now, null, 2)}\n`);
    expect(GOLDEN[SANDBOX_RUNTIME_VERSION], `no golden entry for ${SANDBOX_RUNTIME_VERSION}: if this runtime behaves as one recorded, declare it in COMPATIBLE_IDENTITIES; otherwise bump SANDBOX_BEHAVIOUR and record an entry (RUNTIME_BEHAVIOUR_OUT)`).toBeDefined();
    expect(now).toEqual(GOLDEN[SANDBOX_RUNTIME_VERSION]);
  }, 30_000);

  it('gives a replay the context fields it always had', () => {
    const ctx = replayContext({ database: 'app' } as SessionInfo, { user: 'alice', roles: ['auditor'] } as unknown as AsOfMoment, new Date(0));
    // A change here is a change of what transforms observe: a new SANDBOX_BEHAVIOUR.
    expect(Object.keys(ctx as object)).toEqual(['user', 'roles', 'database', 'application_name', 'client_address', 'client_port',
      'session_id', 'statement_timestamp', 'as_of']);
  }, 30_000);

  it('is the same under every identity it declares it behaves as', () => {
    const declared = Object.keys(GOLDEN).filter((identity) => identity !== SANDBOX_RUNTIME_VERSION && behavesAs(identity));
    for (const identity of declared) expect(GOLDEN[identity], identity).toEqual(GOLDEN[SANDBOX_RUNTIME_VERSION]);
    for (const identity of COMPATIBLE_IDENTITIES) expect(GOLDEN[identity], `${identity} is declared compatible without a golden entry`).toBeDefined();
  });

  it('knows the earlier releases, whose runtime was named by Node.js and a digest of its bootstrap', () => {
    const node = process.versions.node;
    for (const digest of ['bd629e3570b7', 'f6967796a6df', '7f19465654a2', 'a8ed740f26ac']) {
      const earlier = `isolated-vm@5.0.4;node@${node};runtime@${digest}`;
      expect(currentForm(earlier)).toBe(SANDBOX_RUNTIME_VERSION);
      expect(behavesAs(earlier)).toBe(true);
      // Recorded on that release's runtime: the golden set's outputs were the same.
      expect(Object.keys(GOLDEN).some((k) => k.endsWith(`;runtime@${digest}`)), digest).toBe(true);
    }
    // An unknown bootstrap, another Node.js line (another V8), another isolated-vm, another behaviour.
    expect(behavesAs(`isolated-vm@5.0.4;node@${node};runtime@000000000000`)).toBe(false);
    expect(behavesAs('isolated-vm@5.0.4;node@18.20.0;runtime@bd629e3570b7')).toBe(false);
    expect(behavesAs(`isolated-vm@4.7.2;node@${node};runtime@bd629e3570b7`)).toBe(false);
    expect(behavesAs(SANDBOX_RUNTIME_VERSION.replace(/^sandbox@\d+/, 'sandbox@0'))).toBe(false);
  });
});
