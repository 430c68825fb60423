import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SANDBOX_RUNTIME_VERSION, functionHash, sandboxFunction } from '../../sandbox/index.js';
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
