import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { SANDBOX_RUNTIME_VERSION, SandboxPool, functionHash, sandboxFunction } from '../../sandbox/index.js';
import { registeredFunction } from '../../sandbox/hash.js';
import { column, failure } from './support/batch.js';
import { SANDBOX_BEHAVIOUR } from '../../sandbox/runtime-identity.js';

describe('function hashes', () => {
  it('name the runtime by its behaviour version and the V8 line, nothing that changes without changing behaviour', () => {
    expect(SANDBOX_RUNTIME_VERSION).toBe(`sandbox@${SANDBOX_BEHAVIOUR};v8@${process.versions.v8.split('.').slice(0, 2).join('.')}`);
    expect(SANDBOX_RUNTIME_VERSION).not.toContain(process.versions.node);
  });

  it('are the lowercase hex SHA-256 of source, NUL, runtime version', () => {
    const source = '(v) => v';
    const expected = createHash('sha256').update(`${source}\0${SANDBOX_RUNTIME_VERSION}`).digest('hex');
    expect(functionHash(source)).toBe(expected);
    expect(functionHash(source)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('differ for different sources, even by whitespace', () => {
    expect(functionHash('(v) => v')).not.toBe(functionHash('(v) =>  v'));
  });

  it('fill in a SandboxFunction', () => {
    expect(sandboxFunction('id', 'row', '(r) => r')).toEqual({ name: 'id', kind: 'row', source: '(r) => r', hash: functionHash('(r) => r') });
  });
});

describe('functions of versions registered under another runtime', () => {
  const pool = new SandboxPool({ isolates: 1 });
  afterAll(() => pool.close());
  const source = '(v) => v + 1';
  const previous = `isolated-vm@5.0.4;node@${process.versions.node};runtime@bd629e3570b7`;

  it('run under the hash they were registered with when this runtime behaves as that one', async () => {
    const fn = registeredFunction('earlier', 'column', source, previous);
    expect(fn).toEqual({ name: 'earlier', kind: 'column', source, hash: functionHash(source, previous) });
    expect(fn!.hash).not.toBe(functionHash(source));
    expect(await pool.run({ ...column(source, [1, 2]), fn: fn! })).toEqual({ items: [2, 3] });
    expect(registeredFunction('now', 'column', source, SANDBOX_RUNTIME_VERSION)).toEqual(sandboxFunction('now', 'column', source));
  });

  it('are not handed out for a runtime this one does not behave as, and a hash under one does not run', async () => {
    expect(registeredFunction('unknown', 'column', source, 'sandbox@99;v8@1.0')).toBeNull();
    expect(registeredFunction('unrecorded', 'column', source, null)).toBeNull();
    const forged = { name: 'unknown', kind: 'column' as const, source, hash: functionHash(source, 'sandbox@99;v8@1.0') };
    expect((await failure(pool.run({ ...column(source, [1]), fn: forged }))).kind).toBe('compile');
  });
});
