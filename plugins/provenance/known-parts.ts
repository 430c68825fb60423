/**
 * The keys of shared parts (execution-parts.ts) this process knows are stored, per connection to
 * the provenance database: a batch whose transforms, contexts and statements are all known names
 * them by key, and the server neither computes their keys again nor probes their tables. Parts
 * are never deleted (executions are, parts stay), so a key once stored stays valid for as long as
 * the connection that stored it lives; a new connection (a reconnect, a store that was migrated
 * since) starts with nothing known, and so does one whose write failed: what failed may be the
 * schema itself, dropped and made again under a connection that stays.
 *
 * Bounded: beyond `limit` keys the oldest learnt are forgotten (a context is one per session).
 */
import type { PartName } from './execution-parts.js';

export class KnownParts {
  private readonly keys = new Map<string, string>();

  constructor(private readonly limit = 10_000) {}

  get(name: PartName, content: string): string | undefined {
    return this.keys.get(name + content);
  }

  learn(name: PartName, content: string, key: string): void {
    const k = name + content;
    if (this.keys.has(k)) return;
    if (this.keys.size >= this.limit) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
    this.keys.set(k, key);
  }

  forget(): void {
    this.keys.clear();
  }

  get size(): number {
    return this.keys.size;
  }
}

const byConnection = new WeakMap<object, KnownParts>();

/** What is known stored through connection `db`. */
export function knownParts(db: object): KnownParts {
  let known = byConnection.get(db);
  if (known === undefined) byConnection.set(db, (known = new KnownParts()));
  return known;
}
