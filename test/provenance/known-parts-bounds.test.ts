/** The keys of parts known stored are bounded by count and by size, oldest forgotten first. */
import { describe, expect, it } from 'vitest';
import { KnownParts } from '../../plugins/provenance/known-parts.js';

describe('parts known stored', () => {
  it('forgets the oldest beyond its count', () => {
    const k = new KnownParts(3, 1_000_000);
    for (const c of ['a', 'b', 'c', 'd']) k.learn('x', c, `key-${c}`);
    expect(k.size).toBe(3);
    expect(k.get('x', 'a')).toBeUndefined();
    expect(k.get('x', 'd')).toBe('key-d');
  });

  it('forgets the oldest beyond its size, and keeps no part longer than a 64th of it', () => {
    const k = new KnownParts(1_000, 6_400);
    k.learn('s', 'q'.repeat(101), 'long');
    expect(k.get('s', 'q'.repeat(101))).toBeUndefined();
    for (let i = 0; i < 80; i++) k.learn('s', `${String(i).padStart(2, '0')}${'q'.repeat(97)}`, `k${i}`);
    // 100 characters each (name and content): 64 fit.
    expect(k.size).toBe(64);
    expect(k.get('s', `00${'q'.repeat(97)}`)).toBeUndefined();
    expect(k.get('s', `79${'q'.repeat(97)}`)).toBe('k79');
    k.forget();
    expect(k.size).toBe(0);
    k.learn('t', 'again', 'k');
    expect(k.get('t', 'again')).toBe('k');
  });
});
