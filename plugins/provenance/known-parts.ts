/**
 * The keys of shared parts (execution-parts.ts) this process knows are stored, per connection to
 * the provenance database: a batch whose transforms, contexts and statements are all known names
 * them by key, and the server neither computes their keys again nor probes their tables. Parts
 * are never deleted (executions are, parts stay), so a key once stored stays valid for as long as
 * the connection that stored it lives; a new connection (a reconnect, a store that was migrated
 * since) starts with nothing known, and so does one whose write failed: what failed may be the
 * schema itself, dropped and made again under a connection that stays.
 *
 * Bounded: beyond `limit` keys, or `chars` characters of content, the oldest learnt are forgotten
 * (a context is one per session), and a part longer than a 64th of `chars` (a long statement's
 * normalised text) is not kept at all: a batch naming it stores it by content, as before.
 */
import type { PartName } from './execution-parts.js';

export class KnownParts {
  private readonly keys = new Map<string, string>();
  private held = 0;

  constructor(private readonly limit = 10_000, private readonly chars = 4 * 1024 * 1024) {}

  get(name: PartName, content: string): string | undefined {
    return this.keys.get(name + content);
  }

  learn(name: PartName, content: string, key: string): void {
    const k = name + content;
    if (this.keys.has(k) || k.length > this.chars / 64) return;
    while (this.keys.size > 0 && (this.keys.size >= this.limit || this.held + k.length > this.chars)) {
      const oldest = this.keys.keys().next();
      if (oldest.done) break;
      this.keys.delete(oldest.value);
      this.held -= oldest.value.length;
    }
    this.keys.set(k, key);
    this.held += k.length;
  }

  forget(): void {
    this.keys.clear();
    this.held = 0;
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
