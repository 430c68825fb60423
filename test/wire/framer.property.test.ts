import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Framer, MAX_STARTUP_PACKET, type Frame } from '../../proxy/wire/framer.js';
import { FRONTEND_CODES } from '../../proxy/wire/codes.js';
import { PgError } from '../../proxy/errors.js';
import { frameSummary, splitAt, typed, untyped } from './helpers.js';

const CODES = [...FRONTEND_CODES];

const typedMessage = fc
  .record({ code: fc.constantFrom(...CODES), body: fc.uint8Array({ maxLength: 80 }) })
  .map(({ code, body }) => typed(code, body));

const startupPacket = fc.uint8Array({ minLength: 4, maxLength: 120 }).map((body) => untyped(body));

/** Cut points as fractions of the stream length, so shrinking keeps them meaningful. */
const cutFractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });

function cutsFor(length: number, fractions: readonly number[]): number[] {
  return fractions.map((f) => Math.round(f * length));
}

interface Outcome {
  frames: Frame[];
  error: unknown;
  consumed: number;
  pushed: number;
}

/** Push every chunk, stopping at the first error; record what came out. */
function run(framer: Framer, chunks: readonly Buffer[]): Outcome {
  const frames: Frame[] = [];
  let pushed = 0;
  let error: unknown;
  for (const c of chunks) {
    pushed += c.length;
    try {
      frames.push(...framer.push(c));
    } catch (err) {
      error = err;
      break;
    }
  }
  return { frames, error, consumed: frames.reduce((n, f) => n + f.raw.length, 0), pushed };
}

describe('Framer properties', () => {
  it('valid typed sequences split arbitrarily yield the same frames as one chunk', () => {
    fc.assert(
      fc.property(fc.array(typedMessage, { maxLength: 25 }), cutFractions, (msgs, fractions) => {
        const stream = Buffer.concat(msgs);
        const expected = msgs.map((m) => ({ code: m[0]!, raw: m.toString('hex') }));
        const whole = new Framer({ maxMessageSize: 1024, codes: FRONTEND_CODES, peer: 'client' });
        expect(frameSummary(whole.push(stream))).toEqual(expected);

        const framer = new Framer({ maxMessageSize: 1024, codes: FRONTEND_CODES, peer: 'client' });
        const out = run(framer, splitAt(stream, cutsFor(stream.length, fractions)));
        expect(out.error).toBeUndefined();
        expect(frameSummary(out.frames)).toEqual(expected);
        expect(framer.buffered).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('valid startup-phase sequences split arbitrarily yield the same frames as one chunk', () => {
    fc.assert(
      fc.property(fc.array(startupPacket, { maxLength: 10 }), cutFractions, (pkts, fractions) => {
        const stream = Buffer.concat(pkts);
        const expected = pkts.map((p) => ({ code: 0, raw: p.toString('hex') }));
        const framer = new Framer({ maxMessageSize: 16, peer: 'client' }, true);
        const out = run(framer, splitAt(stream, cutsFor(stream.length, fractions)));
        expect(out.error).toBeUndefined();
        expect(frameSummary(out.frames)).toEqual(expected);
        expect(framer.buffered).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('a valid sequence with a truncated tail yields the whole frames and buffers the tail', () => {
    fc.assert(
      fc.property(fc.array(typedMessage, { minLength: 1, maxLength: 10 }), fc.nat(), cutFractions, (msgs, drop, fractions) => {
        const stream = Buffer.concat(msgs);
        const last = msgs[msgs.length - 1]!;
        const cut = stream.length - 1 - (drop % last.length); // drop 1..last.length bytes
        const framer = new Framer({ maxMessageSize: 1024, codes: FRONTEND_CODES, peer: 'client' });
        const out = run(framer, splitAt(stream.subarray(0, cut), cutsFor(cut, fractions)));
        expect(out.error).toBeUndefined();
        expect(frameSummary(out.frames)).toEqual(msgs.slice(0, -1).map((m) => ({ code: m[0]!, raw: m.toString('hex') })));
        expect(framer.buffered).toBe(cut - (stream.length - last.length));
        expect(framer.drain().equals(stream.subarray(stream.length - last.length, cut))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  /**
   * Garbage in: frames or a PgError 08P01 FATAL, nothing else. Every frame returned must agree
   * with its own header and the limits, and frames + buffered bytes must account for every byte.
   * Termination is bounded: each frame consumes at least 5 bytes, so a run is at most len/5 frames.
   */
  function checkGarbage(framer: Framer, data: Uint8Array, fractions: readonly number[], mode: 'typed' | 'untyped', maxMessageSize: number): void {
    const chunks = splitAt(data, cutsFor(data.length, fractions));
    const out = run(framer, chunks);
    if (out.error !== undefined) {
      expect(out.error).toBeInstanceOf(PgError);
      const err = out.error as PgError;
      expect(err.code).toBe('08P01');
      expect(err.severity).toBe('FATAL');
    } else {
      // Every byte pushed is either in a frame or still buffered.
      expect(out.consumed + framer.buffered).toBe(out.pushed);
    }
    // Frames are a gapless prefix of the input.
    expect(Buffer.concat(out.frames.map((f) => f.raw)).equals(Buffer.from(data.subarray(0, out.consumed)))).toBe(true);
    expect(out.frames.length).toBeLessThanOrEqual(Math.floor(data.length / (mode === 'typed' ? 5 : 8)));
    for (const f of out.frames) {
      if (mode === 'typed') {
        expect(f.code).toBe(f.raw[0]);
        expect(FRONTEND_CODES.has(f.code)).toBe(true);
        expect(f.raw.length).toBe(f.raw.readInt32BE(1) + 1);
        expect(f.raw.length).toBeGreaterThanOrEqual(5);
        expect(f.raw.length).toBeLessThanOrEqual(maxMessageSize);
      } else {
        expect(f.code).toBe(0);
        expect(f.raw.length).toBe(f.raw.readInt32BE(0));
        expect(f.raw.length).toBeGreaterThanOrEqual(8);
        expect(f.raw.length).toBeLessThanOrEqual(MAX_STARTUP_PACKET);
      }
    }
  }

  /** Bytes that often look like headers: a frontend code followed by a small big-endian length. */
  const plausibleBytes = fc
    .array(
      fc.oneof(
        { arbitrary: typedMessage.map((m) => new Uint8Array(m)), weight: 6 },
        { arbitrary: fc.uint8Array({ maxLength: 12 }), weight: 1 },
        { arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => Uint8Array.of(b)), weight: 1 },
        { arbitrary: fc.tuple(fc.constantFrom(...CODES), fc.integer({ min: -8, max: 300 })).map(([code, len]) => {
          const b = Buffer.alloc(5);
          b[0] = code;
          b.writeInt32BE(len, 1);
          return new Uint8Array(b);
        }), weight: 1 },
      ),
      { maxLength: 30 },
    )
    .map((parts) => new Uint8Array(Buffer.concat(parts)));

  const garbage = fc.oneof({ arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 1 }, { arbitrary: plausibleBytes, weight: 3 });

  it('typed framing of garbage: frames consistent with headers, or PgError 08P01 and nothing else', () => {
    fc.assert(
      fc.property(garbage, cutFractions, fc.integer({ min: 5, max: 400 }), (data, fractions, maxMessageSize) => {
        const framer = new Framer({ maxMessageSize, codes: FRONTEND_CODES, peer: 'client' });
        checkGarbage(framer, data, fractions, 'typed', maxMessageSize);
      }),
      { numRuns: 1500 },
    );
  });

  it('startup framing of garbage: frames consistent with headers, or PgError 08P01 and nothing else', () => {
    const plausibleStartup = fc
      .array(
        fc.oneof(
          { arbitrary: startupPacket.map((p) => new Uint8Array(p)), weight: 5 },
          { arbitrary: fc.uint8Array({ maxLength: 12 }), weight: 1 },
          {
            arbitrary: fc.integer({ min: -4, max: MAX_STARTUP_PACKET + 2 }).map((len) => {
              const b = Buffer.alloc(4);
              b.writeInt32BE(len, 0);
              return new Uint8Array(b);
            }),
            weight: 1,
          },
        ),
        { maxLength: 30 },
      )
      .map((parts) => new Uint8Array(Buffer.concat(parts)));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), plausibleStartup), cutFractions, (data, fractions) => {
        const framer = new Framer({ maxMessageSize: 64, peer: 'client' }, true);
        checkGarbage(framer, data, fractions, 'untyped', 64);
      }),
      { numRuns: 1000 },
    );
  });

  /** A straightforward reference framer over the whole stream: frames until the first bad header or the end. */
  function reference(data: Uint8Array, maxMessageSize: number): { frames: { code: number; raw: string }[]; rejected: boolean } {
    const buf = Buffer.from(data);
    const frames: { code: number; raw: string }[] = [];
    let off = 0;
    while (buf.length - off >= 5) {
      const code = buf[off]!;
      const len = buf.readInt32BE(off + 1);
      if (!FRONTEND_CODES.has(code) || len < 4 || len + 1 > maxMessageSize) return { frames, rejected: true };
      if (buf.length - off < len + 1) break;
      frames.push({ code, raw: buf.subarray(off, off + len + 1).toString('hex') });
      off += len + 1;
    }
    return { frames, rejected: false };
  }

  it('garbage split arbitrarily agrees with a reference framer (same frames, rejected iff a complete header is bad)', () => {
    fc.assert(
      fc.property(garbage, cutFractions, (data, fractions) => {
        const ref = reference(data, 200);
        const framer = new Framer({ maxMessageSize: 200, codes: FRONTEND_CODES, peer: 'client' });
        const out = run(framer, splitAt(data, cutsFor(data.length, fractions)));
        expect(out.error !== undefined).toBe(ref.rejected);
        const got = frameSummary(out.frames);
        if (ref.rejected) {
          // Frames returned before the error are a prefix of the reference's (the throwing push returns none).
          expect(got).toEqual(ref.frames.slice(0, got.length));
        } else {
          expect(got).toEqual(ref.frames);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
