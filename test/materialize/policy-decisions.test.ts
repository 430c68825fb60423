/**
 * What a materialisation policy decides, from what the proxy observed: the rules that ask for a
 * version after a read, the boundary an `every` rule has due, and what a budget evicts.
 */
import { describe, expect, it } from 'vitest';
import { afterRead, dueBoundary, evictions, IN_USE_MS, type Policy, type Stored } from '../../plugins/materialize-policy/decisions.js';

const policy = (p: Partial<Policy>): Policy => ({
  targetOid: 1, target: 't', setBy: 'admin', everyMs: null, afterReplayMs: null, afterReads: null, withinMs: 3_600_000, budgetBytes: null, ...p,
});

const stored = (id: number, p: Partial<Stored> = {}): Stored => ({ id, bytes: 100, readsServed: 0, lastRead: null, createdAt: id, asOf: id, reason: 'policy:every', ...p });

describe('materialisation policy decisions', () => {
  it('asks for a version after a read whose replay took longer than the rule says, and only then', () => {
    const p = policy({ afterReplayMs: 500 });
    expect(afterRead(p, 499, null)).toBeNull();
    expect(afterRead(p, 500, null)).toBeNull();
    expect(afterRead(p, 501, null)).toMatchObject({ rule: 'after_replay_ms' });
    expect(afterRead(policy({}), 10_000, 100)).toBeNull();
  });

  it('asks for a version of a moment read as often as the rule says', () => {
    const p = policy({ afterReads: 3 });
    expect(afterRead(p, 0, 2)).toBeNull();
    expect(afterRead(p, 0, 3)).toMatchObject({ rule: 'after_reads' });
    expect(afterRead(p, 0, null)).toBeNull();
    // Rules combine: the first that holds decides.
    expect(afterRead(policy({ afterReads: 3, afterReplayMs: 10 }), 20, 3)).toMatchObject({ rule: 'after_replay_ms' });
    expect(afterRead(policy({ afterReads: 3, afterReplayMs: 10 }), 5, 3)).toMatchObject({ rule: 'after_reads' });
  });

  it('has the latest boundary of an every rule due, from the epoch, once history has started', () => {
    const day = 86_400_000;
    const now = Date.UTC(2026, 9, 27, 14, 30);
    expect(dueBoundary(policy({ everyMs: day }), now, 0)).toBe(Date.UTC(2026, 9, 27));
    expect(dueBoundary(policy({ everyMs: 1_000 }), now + 1_500, 0)).toBe(now + 1_000);
    expect(dueBoundary(policy({ everyMs: day }), now, Date.UTC(2026, 9, 27, 1))).toBeNull();
    expect(dueBoundary(policy({}), now, 0)).toBeNull();
  });

  it('evicts the least read first until within budget', () => {
    const now = 10_000_000;
    const all = [
      stored(1, { readsServed: 5, lastRead: now - 2 * IN_USE_MS }),
      stored(2, { readsServed: 0, reason: 'policy:after_reads' }),
      stored(3, { readsServed: 1, lastRead: now - 3 * IN_USE_MS, reason: 'policy:after_replay_ms' }),
      stored(4, { readsServed: 1, lastRead: now - 5 * IN_USE_MS, reason: 'policy:after_replay_ms' }),
      stored(5, { readsServed: 1, lastRead: now - 4 * IN_USE_MS, asOf: 0 }),
    ];
    expect(evictions(all, 500, now)).toEqual({ evict: [], over: 0, kept: [] });
    // 4 is the version a read-triggered rule made last: it stays until a rule makes another.
    expect(evictions(all, 350, now).evict.map((m) => m.id)).toEqual([2, 5]);
    // The every rule's latest version (1, the latest moment) stays; an older one (5) may go.
    expect(evictions(all, 0, now).evict.map((m) => m.id)).toEqual([2, 5, 3]);
    expect(evictions([...all, stored(6, { reason: 'policy:after_reads' })], 0, now).evict.map((m) => m.id)).toEqual([2, 4, 5, 3]);
  });

  it('never evicts what is still needed: made by hand, the every rule\'s latest, read a moment ago', () => {
    const now = 10_000_000;
    const all = [
      stored(1, { reason: 'manual' }),
      stored(2, { asOf: 50 }),
      stored(3, { readsServed: 9, lastRead: now - 1_000, reason: 'policy:after_reads' }),
      stored(4, { readsServed: 1, lastRead: now - 2 * IN_USE_MS, reason: 'policy:after_reads' }),
      stored(5, { readsServed: 2, lastRead: now - 2 * IN_USE_MS, createdAt: 2, reason: 'policy:after_replay_ms' }),
    ];
    const e = evictions(all, 0, now);
    expect(e.evict.map((m) => m.id)).toEqual([5]);
    expect(e.over).toBe(400);
    expect(e.kept.map((k) => [k.m.id, k.why])).toEqual([
      [1, 'made by hand'], [2, 'the latest version of the every rule'], [4, 'the latest version a rule asked for after reads'],
      [3, 'read in the last minute'],
    ]);
    // The version a rule has just asked for is not evicted to make room for itself.
    expect(evictions(all, 0, now, 5).evict).toEqual([]);
  });

  it('keeps the version a read-triggered rule made last until a rule makes another, so a periodic look does not take it unread', () => {
    const now = 10_000_000;
    const first = stored(7, { createdAt: now - 2_000, reason: 'policy:after_replay_ms' });
    // Just made and not read yet: the tick a second later (no version just made) keeps it.
    expect(evictions([stored(1, { reason: 'manual' }), first], 1, now).evict).toEqual([]);
    // A later version, made by either read-triggered rule, takes its place; the first may go.
    const next = stored(8, { createdAt: now - 1_000, reason: 'policy:after_reads' });
    expect(evictions([stored(1, { reason: 'manual' }), first, next], 1, now).evict.map((m) => m.id)).toEqual([7]);
  });
});
