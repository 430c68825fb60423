/**
 * Record ids: UUID version 7 (RFC 9562), a millisecond timestamp followed by random bits. Being
 * time-ordered, new ids land at the right edge of the primary-key and result indexes instead of
 * on random pages, which keeps the writer's index maintenance cheap on a large table.
 *
 * Layout: 48-bit big-endian Unix milliseconds, version 7 (4 bits), 12 random bits, variant 10
 * (2 bits), 62 random bits.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

export function uuidv7(now: number = Date.now()): string {
  if (offset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const b = Buffer.from(pool.subarray(offset, offset + 16));
  offset += 16;
  b.writeUIntBE(now, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
