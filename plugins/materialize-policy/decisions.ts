/**
 * What a materialisation policy decides, as pure functions of what the proxy observed: whether a
 * read's moment is worth storing, which boundary of an `every` rule is due, and which versions a
 * budget evicts. The runner (runner.ts) feeds them from the store and acts on their answers.
 */

/** A table's policy as the store gives it, intervals already in milliseconds (see the schema's checks). */
export interface Policy {
  readonly targetOid: number;
  readonly target: string;
  /** Whose context the `every` versions are made in: the admin who set the policy. */
  readonly setBy: string;
  readonly everyMs: number | null;
  readonly afterReplayMs: number | null;
  readonly afterReads: number | null;
  readonly withinMs: number;
  readonly budgetBytes: number | null;
}

/** `within` when a policy gives `after_reads` alone. */
export const DEFAULT_WITHIN_MS = 3_600_000;

export type Rule = 'every' | 'after_replay_ms' | 'after_reads' | 'budget_bytes';

/** The rule that asks for a version of the moment an as-of read replayed, or null if none does. */
export function afterRead(policy: Policy, replayMs: number, readsWithin: number | null): { rule: Rule; why: string } | null {
  if (policy.afterReplayMs !== null && replayMs > policy.afterReplayMs) {
    return { rule: 'after_replay_ms', why: `a read's replay took ${replayMs.toFixed(1)} ms, over ${policy.afterReplayMs} ms` };
  }
  if (policy.afterReads !== null && readsWithin !== null && readsWithin >= policy.afterReads) {
    return { rule: 'after_reads', why: `the moment was read ${readsWithin} times within ${policy.withinMs / 1000} s (the rule asks ${policy.afterReads})` };
  }
  return null;
}

/**
 * The latest boundary of an `every` rule at or before `nowMs`: a multiple of the interval since the
 * Unix epoch (so "1 day" is midnight UTC). Null when there is no such rule, or the boundary
 * comes before the table's history starts (nothing there to store).
 */
export function dueBoundary(policy: Policy, nowMs: number, historySinceMs: number): number | null {
  if (policy.everyMs === null || policy.everyMs <= 0) return null;
  const boundary = Math.floor(nowMs / policy.everyMs) * policy.everyMs;
  return boundary >= historySinceMs ? boundary : null;
}

/** A stored version as a budget weighs it. */
export interface Stored {
  readonly id: number;
  readonly bytes: number;
  readonly readsServed: number;
  /** Epoch milliseconds; null: never read. */
  readonly lastRead: number | null;
  readonly createdAt: number;
  /** The moment it stores, epoch milliseconds. */
  readonly asOf: number;
  /** `manual`, or `policy:<rule>` for the rule that made it. */
  readonly reason: string;
}

/** Reads this recent may still be streaming rows out of the version: it is not evicted under them. */
export const IN_USE_MS = 60_000;

/** The versions a budget keeps for the rules that made them (see neededBecause). */
export interface Latest {
  /** The latest moment an `every` rule stored. */
  readonly every: number | null;
  /** The version a read-triggered rule (`after_replay_ms`, `after_reads`) made last. */
  readonly asked: number | null;
}

/**
 * Why a version is still needed, or null when a budget may evict it: one made by hand was asked
 * for by someone; the latest version of an `every` rule is what that rule promises; one read a
 * moment ago may be serving a read still; the one a rule has just asked for is what it wants, and
 * it stays what a rule asked for last until a rule asks for another (else the next periodic look
 * at the budget would take it before it ever served a read).
 */
export function neededBecause(m: Stored, nowMs: number, latest: Latest, justMade: number | null = null): string | null {
  if (!m.reason.startsWith('policy:')) return 'made by hand';
  if (m.id === justMade) return 'just made, for a rule that asked for it';
  if (m.id === latest.every) return 'the latest version of the every rule';
  if (m.id === latest.asked) return 'the latest version a rule asked for after reads';
  if (m.lastRead !== null && nowMs - m.lastRead < IN_USE_MS) return 'read in the last minute';
  return null;
}

export interface Eviction {
  readonly evict: readonly Stored[];
  /** Bytes still over the budget once those are gone (0: within it). */
  readonly over: number;
  /** The versions kept although over budget, each with why. */
  readonly kept: readonly { readonly m: Stored; readonly why: string }[];
}

/**
 * The versions to evict to bring a table within `budget`: the least read first (fewest reads,
 * then least recently read, then oldest), skipping those still needed.
 */
export function evictions(stored: readonly Stored[], budget: number, nowMs: number, justMade: number | null = null): Eviction {
  const every = stored.filter((m) => m.reason === 'policy:every').sort((a, b) => b.asOf - a.asOf || b.id - a.id)[0];
  const asked = stored.filter((m) => m.reason === 'policy:after_replay_ms' || m.reason === 'policy:after_reads')
    .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id)[0];
  const latest: Latest = { every: every?.id ?? null, asked: asked?.id ?? null };
  let total = stored.reduce((n, m) => n + m.bytes, 0);
  if (total <= budget) return { evict: [], over: 0, kept: [] };
  const order = [...stored].sort((a, b) =>
    a.readsServed - b.readsServed || (a.lastRead ?? -Infinity) - (b.lastRead ?? -Infinity) || a.createdAt - b.createdAt || a.id - b.id);
  const evict: Stored[] = [];
  const kept: { m: Stored; why: string }[] = [];
  for (const m of order) {
    if (total <= budget) break;
    const why = neededBecause(m, nowMs, latest, justMade);
    if (why !== null) {
      kept.push({ m, why });
      continue;
    }
    evict.push(m);
    total -= m.bytes;
  }
  return { evict, over: Math.max(0, total - budget), kept };
}
