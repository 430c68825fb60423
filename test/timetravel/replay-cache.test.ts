/**
 * The replay cache on a real sandbox: a batch seen before is answered without the sandbox, keys
 * tell apart what may change an output (parameters, context, input), the bound is in bytes, and
 * the option that sets it is read from the flag or the environment.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool, sandboxFunction, type RunBatch, type SandboxValue } from '../../sandbox/index.js';
import { ReplayCache } from '../../plugins/transforms/replay-cache.js';
import { ConfigError, parseConfig, type ProxyConfig } from '../../proxy/config.js';

const pool = new SandboxPool({ isolates: 1 });
afterAll(() => pool.close());

const fn = sandboxFunction('suffix', 'column', '(v, p, ctx) => v + p.s + ctx.user');
const clock = new Date('2026-10-27T10:00:00Z');

function batch(items: string[], params: SandboxValue = { s: '!' }, user = 'alice'): RunBatch & { items: SandboxValue[] } {
  return { fn, params, ctx: { user }, clock, seed: 'seed', items };
}

describe('replay cache', () => {
  it('answers a batch it saw from memory, and runs anything that differs in the sandbox', async () => {
    const cache = new ReplayCache(pool, 1024 * 1024);
    const runs = (): number => pool.stats.cacheHits + pool.stats.compiled;
    const input = (items: string[]) => () => JSON.stringify(items);
    const before = runs();
    expect((await cache.run(batch(['a', 'b']), input(['a', 'b']))).items).toEqual(['a!alice', 'b!alice']);
    expect(runs()).toBe(before + 1);
    expect((await cache.run(batch(['a', 'b']), input(['a', 'b']))).items).toEqual(['a!alice', 'b!alice']);
    expect(runs()).toBe(before + 1);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1 });
    expect(cache.stats().bytes).toBeGreaterThan(0);
    // Other parameters, another context, another input: each its own entry.
    expect((await cache.run(batch(['a', 'b'], { s: '?' }), input(['a', 'b']))).items).toEqual(['a?alice', 'b?alice']);
    expect((await cache.run(batch(['a', 'b'], { s: '!' }, 'bob'), input(['a', 'b']))).items).toEqual(['a!bob', 'b!bob']);
    expect((await cache.run(batch(['c']), input(['c']))).items).toEqual(['c!alice']);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 4 });
    expect(runs()).toBe(before + 4);
  });

  it('keeps within its bound in bytes, and keeps nothing with a bound of 0', async () => {
    const cache = new ReplayCache(pool, 4096);
    for (let i = 0; i < 20; i++) {
      const items = [`${i}`.padEnd(500, 'x')];
      await cache.run(batch(items), () => items[0]!);
    }
    expect(cache.stats().bytes).toBeLessThanOrEqual(4096);
    expect(cache.stats().bytes).toBeGreaterThan(0);
    const none = new ReplayCache(pool, 0);
    await none.run(batch(['a']), () => 'a');
    await none.run(batch(['a']), () => 'a');
    expect(none.stats()).toEqual({ hits: 0, misses: 2, bytes: 0 });
  });

  it('is sized by --replay-cache-size or PROVENANCE_REPLAY_CACHE_SIZE, 256 MB by default', () => {
    const size = (argv: string[], env: NodeJS.ProcessEnv = {}): number | undefined => (parseConfig(argv, env) as ProxyConfig).replayCacheMb;
    expect(size([])).toBe(256);
    expect(size([], { PROVENANCE_REPLAY_CACHE_SIZE: '32' })).toBe(32);
    expect(size(['--replay-cache-size', '0'], { PROVENANCE_REPLAY_CACHE_SIZE: '32' })).toBe(0);
    expect(() => size(['--replay-cache-size', 'lots'])).toThrow(ConfigError);
    expect(() => size([], { PROVENANCE_REPLAY_CACHE_SIZE: '-1' })).toThrow(ConfigError);
  });
});
