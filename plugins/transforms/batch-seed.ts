/** The Math.random seed of one batch a transform runs on. */
import { hash } from 'node:crypto';

/**
 * Seed for Math.random: the function and the exact input bytes, so a replay draws the same numbers.
 * SHA-256 over the function hash, then per input `\0N` for NULL or `\0<length>:` and the bytes;
 * laid out in one buffer and hashed at once (an update call per value cost more than the hashing).
 */
export function batchSeed(functionHash: string, inputs: readonly (Buffer | null)[]): string {
  const head = Buffer.from(functionHash, 'utf8');
  let size = head.length;
  for (const b of inputs) size += b === null ? 2 : 2 + decimalDigits(b.length) + b.length;
  const out = Buffer.allocUnsafe(size);
  out.set(head, 0);
  let off = head.length;
  for (const b of inputs) {
    out[off++] = 0;
    if (b === null) {
      out[off++] = 0x4e; // N
      continue;
    }
    off = writeDecimal(out, off, b.length);
    out[off++] = 0x3a; // :
    out.set(b, off);
    off += b.length;
  }
  return hash('sha256', out, 'hex');
}

/** n's ASCII decimal digits at off; returns the offset after them. */
function writeDecimal(out: Buffer, off: number, n: number): number {
  const end = off + decimalDigits(n);
  for (let i = end - 1; i >= off; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

function decimalDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}
