/** Seeding of the isolate's Math.random. */
import { createHash } from 'node:crypto';

export type SeedWords = readonly [number, number, number, number];

/** The 128-bit sfc32 state for a batch seed: the first 16 bytes of SHA-256(seed). */
export function seedWords(seed: string): SeedWords {
  const digest = createHash('sha256').update(seed, 'utf8').digest();
  return [digest.readUInt32BE(0), digest.readUInt32BE(4), digest.readUInt32BE(8), digest.readUInt32BE(12)];
}
