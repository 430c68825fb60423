import { mulberry32 } from '../support/rng.js';
import { describe, expect, it, vi } from 'vitest';
import { serialize } from 'pg-protocol';
import { Framer, MAX_STARTUP_PACKET, type Frame } from '../../proxy/wire/framer.js';
import { FRONTEND_CODES } from '../../proxy/wire/codes.js';
import {
  clientMessages, expectProtocolViolation, frameSummary, header, isViewOf, overlaps, splitAt, startupPackets, typed,
  unpooled, untyped,
} from './helpers.js';

const MAX = 1 << 20;

function typedFramer(maxMessageSize = MAX): Framer {
  return new Framer({ maxMessageSize, codes: FRONTEND_CODES, peer: 'client' });
}

function startupFramer(): Framer {
  return new Framer({ maxMessageSize: MAX, peer: 'client' }, true);
}

function feed(framer: Framer, chunks: readonly Buffer[]): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) out.push(...framer.push(c));
  return out;
}

/** Deterministic PRNG so random splits are reproducible: floats in [0, 1). */
function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

const messages = clientMessages();
const stream = Buffer.concat(messages);
const expected = messages.map((m) => ({ code: m[0]!, raw: m.toString('hex') }));

const packets = startupPackets();
const startupStream = Buffer.concat(packets);
const expectedStartup = packets.map((p) => ({ code: 0, raw: p.toString('hex') }));

describe('Framer: typed client messages', () => {
  it('frames a realistic message sequence pushed as one chunk', () => {
    const framer = typedFramer();
    const frames = framer.push(unpooled(stream));
    expect(frameSummary(frames)).toEqual(expected);
    expect(framer.buffered).toBe(0);
    // Codes seen are what the fixtures say they are.
    expect(String.fromCharCode(...frames.map((f) => f.code))).toBe('QPBDESQddcPBDECHSfpX');
    for (const f of frames) expect(f.raw.readInt32BE(1) + 1).toBe(f.raw.length);
  });

  it('frames each fixture pushed on its own, including the 5-byte ones', () => {
    const framer = typedFramer();
    for (const m of messages) {
      const frames = framer.push(unpooled(m));
      expect(frames).toHaveLength(1);
      expect(frames[0]!.code).toBe(m[0]);
      expect(frames[0]!.raw.equals(m)).toBe(true);
    }
    expect(serialize.sync().length).toBe(5);
    expect(framer.buffered).toBe(0);
  });

  it('gives the same frames for every split point of the stream into 2 chunks', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const framer = typedFramer();
      const chunks = splitAt(stream, [cut]);
      const frames = feed(framer, chunks);
      expect(frameSummary(frames), `split at ${cut}`).toEqual(expected);
      expect(framer.buffered).toBe(0);
    }
  });

  it('gives the same frames for random splits into many chunks, including 1-byte ones', () => {
    const rand = rng(0xc0ffee);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rand() * 60);
      const cuts = Array.from({ length: n }, () => Math.floor(rand() * (stream.length + 1)));
      const framer = typedFramer();
      const frames = feed(framer, splitAt(stream, cuts));
      expect(frameSummary(frames), `cuts ${cuts.join(',')}`).toEqual(expected);
      expect(framer.buffered).toBe(0);
    }
    const framer = typedFramer();
    const frames = feed(framer, [...stream].map((b) => unpooled(Buffer.from([b]))));
    expect(frameSummary(frames)).toEqual(expected);
  });

  it('reports partially received bytes in `buffered` and returns nothing until a frame is whole', () => {
    const q = messages[0]!;
    const framer = typedFramer();
    for (let i = 0; i < q.length - 1; i++) {
      expect(framer.push(unpooled(q.subarray(i, i + 1)))).toEqual([]);
      expect(framer.buffered).toBe(i + 1);
    }
    const frames = framer.push(unpooled(q.subarray(q.length - 1)));
    expect(frameSummary(frames)).toEqual([{ code: 0x51, raw: q.toString('hex') }]);
    expect(framer.buffered).toBe(0);
  });

  it('accepts an empty chunk at any point', () => {
    const framer = typedFramer();
    expect(framer.push(Buffer.alloc(0))).toEqual([]);
    const q = messages[0]!;
    expect(framer.push(unpooled(q.subarray(0, 3)))).toEqual([]);
    expect(framer.push(Buffer.alloc(0))).toEqual([]);
    expect(framer.buffered).toBe(3);
    expect(frameSummary(framer.push(unpooled(q.subarray(3))))).toEqual([{ code: 0x51, raw: q.toString('hex') }]);
  });
});

describe('Framer: zero-copy views', () => {
  it('frames wholly inside the first chunk are views into it', () => {
    const chunk = unpooled(stream);
    const frames = typedFramer().push(chunk);
    expect(frames.length).toBe(messages.length);
    let off = 0;
    for (const f of frames) {
      expect(isViewOf(f.raw, chunk)).toBe(true);
      expect(f.raw.byteOffset).toBe(chunk.byteOffset + off);
      off += f.raw.length;
    }
    // A view really shares memory: writing the chunk is seen through the frame.
    chunk[frames[0]!.raw.length - 2] = 0x32; // 'SELECT 1' → 'SELECT 2'
    expect(frames[0]!.raw.toString('latin1', 5, 13)).toBe('SELECT 2');
  });

  it('a frame split across chunks is assembled into a fresh buffer, not aliasing either chunk', () => {
    const q = messages[0]!;
    const a = unpooled(q.subarray(0, 7));
    const b = unpooled(q.subarray(7));
    const framer = typedFramer();
    expect(framer.push(a)).toEqual([]);
    const [f] = framer.push(b);
    expect(f!.raw.equals(q)).toBe(true);
    expect(overlaps(f!.raw, a)).toBe(false);
    expect(overlaps(f!.raw, b)).toBe(false);
  });

  it('frames wholly inside a later chunk are views into that chunk even when an earlier frame was split', () => {
    // The module's contract: "Frames that lie wholly inside one chunk are views into it (no copy);
    // only a frame split across chunks is assembled into a fresh buffer."
    const [m0, m1, m2] = [messages[0]!, messages[1]!, messages[2]!];
    const first = unpooled(m0.subarray(0, 4));
    const second = unpooled(Buffer.concat([m0.subarray(4), m1, m2]));
    const framer = typedFramer();
    expect(framer.push(first)).toEqual([]);
    const frames = framer.push(second);
    expect(frameSummary(frames)).toEqual(expected.slice(0, 3));
    expect(isViewOf(frames[1]!.raw, second), 'Parse frame is a view of the chunk holding it').toBe(true);
    expect(isViewOf(frames[2]!.raw, second), 'Bind frame is a view of the chunk holding it').toBe(true);
  });

  it('assembles a large message sent in many chunks with linear, not quadratic, copying', () => {
    // 512 KiB CopyData in 1 KiB chunks: a framer that re-concatenates everything pending on every
    // chunk copies ~128 MiB here (and ~128 GiB for a 128 MiB message in 64 KiB socket reads).
    const size = 512 * 1024;
    const msg = typed(0x64, Buffer.alloc(size - 5, 0x5a));
    const chunkSize = 1024;
    const spy = vi.spyOn(Buffer, 'concat');
    let frames: Frame[] = [];
    try {
      const framer = typedFramer(4 * size);
      for (let off = 0; off < msg.length; off += chunkSize) {
        frames = frames.concat(framer.push(unpooled(msg.subarray(off, off + chunkSize))));
      }
      let copied = 0;
      for (const call of spy.mock.calls) {
        const [list, total] = call;
        copied += total ?? list.reduce((n, b) => n + b.length, 0);
      }
      expect(frameSummary(frames)).toEqual([{ code: 0x64, raw: msg.toString('hex') }]);
      expect(copied, `bytes copied by Buffer.concat to assemble a ${size}-byte message`).toBeLessThanOrEqual(4 * size);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('Framer: protocol violations (08P01 FATAL)', () => {
  it('rejects a type byte outside the frontend set', () => {
    const notFrontend = [0x00, 0x01, 0x31, 0x41, 0x47, 0x4b, 0x52, 0x54, 0x5a, 0x6e, 0x71, 0xff];
    for (const code of notFrontend) {
      const err = expectProtocolViolation(() => typedFramer().push(typed(code, Buffer.from('x\0'))));
      expect(err.message).toContain(`invalid frontend message type ${code}`);
    }
    // After valid frames in the same chunk, too.
    expectProtocolViolation(() => typedFramer().push(Buffer.concat([messages[0]!, typed(0x5a, Buffer.from('I'))])));
  });

  it('accepts every frontend code, and any code when no set is given', () => {
    for (const code of FRONTEND_CODES) {
      expect(typedFramer().push(typed(code))).toHaveLength(1);
    }
    const open = new Framer({ maxMessageSize: MAX, peer: 'server' });
    const frames = open.push(Buffer.concat([typed(0x5a, Buffer.from('I')), typed(0x00), typed(0xff, Buffer.from([1, 2]))]));
    expect(frames.map((f) => f.code)).toEqual([0x5a, 0x00, 0xff]);
  });

  it('names the backend direction for a server peer', () => {
    const framer = new Framer({ maxMessageSize: MAX, codes: new Set([0x5a]), peer: 'server' });
    const err = expectProtocolViolation(() => framer.push(typed(0x51)));
    expect(err.message).toContain('invalid backend message type 81');
  });

  it('rejects a length below 4, including negative lengths', () => {
    for (const len of [3, 2, 1, 0, -1, -4, -2147483648]) {
      const err = expectProtocolViolation(() => typedFramer().push(Buffer.concat([header(0x51, len), Buffer.alloc(8)])));
      expect(err.message).toContain(`invalid message length ${len}`);
      // A bare header is enough to reject it.
      expectProtocolViolation(() => typedFramer().push(header(0x51, len)));
    }
  });

  it('accepts length exactly 4 (an empty body)', () => {
    const frames = typedFramer().push(header(0x53, 4));
    expect(frameSummary(frames)).toEqual([{ code: 0x53, raw: '5300000004' }]);
  });

  it('rejects a message larger than maxMessageSize (header included) and accepts one exactly at the limit', () => {
    const limit = 64;
    const atLimit = typed(0x64, Buffer.alloc(limit - 5, 1));
    expect(atLimit.length).toBe(limit);
    expect(typedFramer(limit).push(atLimit)).toHaveLength(1);

    const over = typed(0x64, Buffer.alloc(limit - 4, 1));
    const err = expectProtocolViolation(() => typedFramer(limit).push(over));
    expect(err.message).toContain(`message of ${limit + 1} bytes exceeds the limit of ${limit} bytes`);
    expect(err.fields.hint).toMatch(/max-message-size/);
  });

  it('rejects an oversized message from its header alone, before the body arrives', () => {
    expectProtocolViolation(() => typedFramer(1024).push(header(0x64, 0x7fffffff)));
    expectProtocolViolation(() => typedFramer(1024).push(Buffer.concat([header(0x64, 2000), Buffer.alloc(10)])));
    // Also when it follows complete frames in the same chunk.
    expectProtocolViolation(() => typedFramer(1024).push(Buffer.concat([messages[0]!, header(0x64, 2000)])));
  });

  it('rejects a split oversized header as soon as its 5th byte arrives, for every way of splitting it', () => {
    const bad = header(0x64, 50_000);
    // All compositions of the 5 header bytes into chunks (2^4 = 16 ways).
    for (let mask = 0; mask < 16; mask++) {
      const cuts = [1, 2, 3, 4].filter((_, i) => (mask >> i) & 1);
      const chunks = splitAt(bad, cuts);
      const framer = typedFramer(1024);
      chunks.slice(0, -1).forEach((c) => expect(framer.push(c)).toEqual([]));
      expectProtocolViolation(() => framer.push(chunks[chunks.length - 1]!));
    }
    // With a complete message before it and body bytes after the header in the last chunk.
    const framer = typedFramer(1024);
    expect(framer.push(Buffer.concat([messages[0]!, bad.subarray(0, 2)]))).toHaveLength(1);
    expect(framer.push(bad.subarray(2, 4))).toEqual([]);
    expectProtocolViolation(() => framer.push(Buffer.concat([bad.subarray(4), Buffer.alloc(3)])));
  });

  it('rejects an invalid type byte as soon as the header is complete, even when split', () => {
    const bad = header(0x5a, 5);
    const framer = typedFramer();
    expect(framer.push(bad.subarray(0, 3))).toEqual([]);
    expectProtocolViolation(() => framer.push(bad.subarray(3)));
  });
});

describe('Framer: startup phase (untyped)', () => {
  it('frames SSLRequest, GSSENCRequest, StartupMessage and CancelRequest pushed as one chunk', () => {
    const framer = startupFramer();
    const frames = framer.push(unpooled(startupStream));
    expect(frameSummary(frames)).toEqual(expectedStartup);
    expect(frames.map((f) => f.raw.readInt32BE(4))).toEqual([80877103, 80877104, 196608, 80877102]);
    for (const f of frames) expect(f.raw.readInt32BE(0)).toBe(f.raw.length);
    expect(framer.buffered).toBe(0);
  });

  it('gives the same frames for every 2-chunk split and for random many-chunk splits', () => {
    for (let cut = 0; cut <= startupStream.length; cut++) {
      const frames = feed(startupFramer(), splitAt(startupStream, [cut]));
      expect(frameSummary(frames), `split at ${cut}`).toEqual(expectedStartup);
    }
    const rand = rng(7);
    for (let trial = 0; trial < 200; trial++) {
      const cuts = Array.from({ length: 1 + Math.floor(rand() * 30) }, () => Math.floor(rand() * (startupStream.length + 1)));
      const frames = feed(startupFramer(), splitAt(startupStream, cuts));
      expect(frameSummary(frames), `cuts ${cuts.join(',')}`).toEqual(expectedStartup);
    }
  });

  it('rejects startup packets shorter than 8 bytes', () => {
    for (const len of [7, 4, 0, -1]) {
      const p = Buffer.alloc(8);
      p.writeInt32BE(len, 0);
      const err = expectProtocolViolation(() => startupFramer().push(p));
      expect(err.message).toContain(`invalid length of startup packet (${len})`);
    }
  });

  it('rejects startup packets longer than MAX_STARTUP_PACKET from the length alone, accepts exactly the maximum', () => {
    expect(MAX_STARTUP_PACKET).toBe(10_004);
    const atMax = untyped(Buffer.alloc(MAX_STARTUP_PACKET - 4));
    atMax.writeInt32BE(196608, 4);
    expect(startupFramer().push(atMax)).toHaveLength(1);

    const lenOnly = Buffer.alloc(4);
    lenOnly.writeInt32BE(MAX_STARTUP_PACKET + 1, 0);
    expectProtocolViolation(() => startupFramer().push(lenOnly));

    // Split length word: rejected when its 4th byte arrives, not before.
    const framer = startupFramer();
    expect(framer.push(lenOnly.subarray(0, 2))).toEqual([]);
    expect(framer.push(lenOnly.subarray(2, 3))).toEqual([]);
    expectProtocolViolation(() => framer.push(lenOnly.subarray(3)));
  });

  it('is not bound by maxMessageSize in the startup phase, only by MAX_STARTUP_PACKET', () => {
    const framer = new Framer({ maxMessageSize: 16, peer: 'client' }, true);
    const startup = packets[2]!;
    expect(startup.length).toBeGreaterThan(16);
    expect(frameSummary(framer.push(startup))).toEqual([{ code: 0, raw: startup.toString('hex') }]);
  });
});

describe('Framer: stopAfterOne and drain()', () => {
  it('returns one frame and keeps the rest buffered; drain() returns exactly the rest', () => {
    const framer = startupFramer();
    const [ssl, , startup] = packets;
    const chunk = unpooled(Buffer.concat([ssl!, startup!]));
    const frames = framer.push(chunk, true);
    expect(frameSummary(frames)).toEqual([{ code: 0, raw: ssl!.toString('hex') }]);
    expect(framer.buffered).toBe(startup!.length);
    const rest = framer.drain();
    expect(rest.equals(startup!)).toBe(true);
    expect(framer.buffered).toBe(0);
    expect(framer.drain().length).toBe(0);
    // After draining, the framer starts afresh.
    expect(frameSummary(framer.push(unpooled(startup!)))).toEqual([{ code: 0, raw: startup!.toString('hex') }]);
  });

  it('walks a typed chunk one frame at a time when asked', () => {
    const framer = typedFramer();
    const all: Frame[] = [];
    let frames = framer.push(unpooled(stream), true);
    while (frames.length > 0) {
      expect(frames).toHaveLength(1);
      all.push(...frames);
      frames = framer.push(Buffer.alloc(0), true);
    }
    expect(frameSummary(all)).toEqual(expected);
    expect(framer.buffered).toBe(0);
  });

  it('drain() returns a partial frame plus later chunks, in order', () => {
    const framer = typedFramer();
    const q = messages[0]!;
    framer.push(unpooled(Buffer.concat([messages[5]!, q.subarray(0, 6)])));
    framer.push(unpooled(q.subarray(6, 9)));
    expect(framer.buffered).toBe(9);
    expect(framer.drain().equals(q.subarray(0, 9))).toBe(true);
  });

  it('lets the caller switch from startup to typed framing when a typed message follows the startup packet in one chunk', () => {
    // The startup packet and the client's first message can arrive in one TCP read (a client that
    // pipelines after trust authentication, or coalesced writes). stopAfterOne exists so the caller
    // can switch modes between frames; the bytes after the first frame must not be judged as a
    // startup packet before the caller had the chance to switch.
    const startup = packets[2]!;
    const query = messages[0]!;
    const framer = startupFramer();
    const frames = framer.push(unpooled(Buffer.concat([startup, query])), true);
    expect(frameSummary(frames)).toEqual([{ code: 0, raw: startup.toString('hex') }]);
    expect(framer.buffered).toBe(query.length);
    framer.untyped = false;
    expect(frameSummary(framer.push(Buffer.alloc(0)))).toEqual([{ code: 0x51, raw: query.toString('hex') }]);
  });

  it('drain() after a startup packet returns a following typed message intact (what the listener hands to the session)', () => {
    const startup = packets[2]!;
    const password = messages[18]!;
    expect(password[0]).toBe(0x70);
    const framer = startupFramer();
    const frames = framer.push(unpooled(Buffer.concat([startup, password])), true);
    expect(frames).toHaveLength(1);
    expect(framer.drain().equals(password)).toBe(true);
  });
});
