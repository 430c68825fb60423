import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ServerScanner, type Piece } from '../../proxy/wire/server-scanner.js';
import {
  authenticationOk, backendKeyData, commandComplete, copyInResponse, dataRow, emptyQueryResponse, errorResponse,
  notificationResponse, parameterStatus, readyForQuery, rowDescription, type FieldDescription,
} from '../../proxy/wire/backend-messages.js';
import { PgError } from '../../proxy/errors.js';
import { fieldArbitrary, expectProtocolViolation, header, isViewOf, splitAt, typed, unpooled } from './helpers.js';

const T = 0x54; // RowDescription
const D = 0x44; // DataRow
const C = 0x43; // CommandComplete
const Z = 0x5a; // ReadyForQuery
const E = 0x45; // ErrorResponse
const I = 0x49; // EmptyQueryResponse

interface Scanned {
  pieces: Piece[];
  /** For every piece, whether it was a view into the chunk passed to the scan() that returned it. */
  views: boolean[];
}

function scanAll(watch: (code: number) => boolean, chunks: readonly Buffer[]): Scanned {
  const scanner = new ServerScanner(watch);
  const pieces: Piece[] = [];
  const views: boolean[] = [];
  for (const c of chunks) {
    for (const p of scanner.scan(c)) {
      pieces.push(p);
      views.push(isViewOf(p.kind === 'raw' ? p.bytes : p.raw, c));
    }
  }
  return { pieces, views };
}

function bytesOf(p: Piece): Buffer {
  return p.kind === 'raw' ? p.bytes : p.raw;
}

/** Where each frame piece starts in the output stream, with its code. */
function framePositions(pieces: readonly Piece[]): { offset: number; code: number }[] {
  const out: { offset: number; code: number }[] = [];
  let off = 0;
  for (const p of pieces) {
    if (p.kind === 'frame') out.push({ offset: off, code: p.code });
    off += bytesOf(p).length;
  }
  return out;
}

/** Where each watched message starts in the input stream, with its code. */
function watchedPositions(msgs: readonly Buffer[], watch: (code: number) => boolean): { offset: number; code: number }[] {
  const out: { offset: number; code: number }[] = [];
  let off = 0;
  for (const m of msgs) {
    if (watch(m[0]!)) out.push({ offset: off, code: m[0]! });
    off += m.length;
  }
  return out;
}

/** Everything the scanner promises for a valid stream. */
function checkScan(msgs: readonly Buffer[], chunks: readonly Buffer[], watch: (code: number) => boolean, label = ''): void {
  const input = Buffer.concat(msgs);
  const { pieces, views } = scanAll(watch, chunks);

  // 1. Lossless: all pieces in order reproduce the input byte for byte.
  expect(Buffer.concat(pieces.map(bytesOf)).equals(input), `${label} reassembles the input`).toBe(true);

  // 2. Watched messages come out as exactly one whole frame each, at their place; unwatched never do.
  expect(framePositions(pieces), `${label} frame positions`).toEqual(watchedPositions(msgs, watch));
  const watchedMsgs = msgs.filter((m) => watch(m[0]!));
  const frames = pieces.filter((p): p is Extract<Piece, { kind: 'frame' }> => p.kind === 'frame');
  expect(frames.map((f) => f.raw.toString('hex')), `${label} frame bytes`).toEqual(watchedMsgs.map((m) => m.toString('hex')));
  for (const f of frames) {
    expect(f.code).toBe(f.raw[0]);
    expect(f.raw.readInt32BE(1) + 1).toBe(f.raw.length);
  }

  // 3. A watched message lying wholly inside one chunk comes out as a view into it (no copy).
  const chunkStarts: number[] = [];
  chunks.reduce((off, c) => (chunkStarts.push(off), off + c.length), 0);
  let outOff = 0;
  pieces.forEach((p, i) => {
    const len = bytesOf(p).length;
    if (p.kind === 'frame') {
      const inOne = chunks.some((c, j) => chunkStarts[j]! <= outOff && outOff + len <= chunkStarts[j]! + c.length);
      expect(views[i], `${label} frame at ${outOff} is a view iff it lies inside one chunk`).toBe(inOne);
    }
    outOff += len;
  });

  // 4. No empty pieces, and raw pieces are views into the chunk they came from, except the
  //    5-byte header of an unwatched message that was held back because it was split.
  pieces.forEach((p, i) => {
    expect(bytesOf(p).length, `${label} piece ${i} is not empty`).toBeGreaterThan(0);
    if (p.kind === 'raw' && !views[i]) expect(p.bytes.length, `${label} non-view raw piece ${i} is a held-back header`).toBe(5);
  });
}

const fields: FieldDescription[] = [
  { name: 'id', tableID: 16384, columnID: 1, dataTypeID: 23, dataTypeSize: 4, dataTypeModifier: -1, format: 0 },
  { name: 'payload', tableID: 16384, columnID: 2, dataTypeID: 17, dataTypeSize: -1, dataTypeModifier: -1, format: 1 },
];

/** A small but realistic server stream: startup answer, a query result, an error, an empty query. */
function smallSequence(): Buffer[] {
  return [
    authenticationOk(),
    parameterStatus('server_version', '17.0'),
    backendKeyData(1234, -5678),
    readyForQuery('I'),
    rowDescription(fields),
    dataRow([Buffer.from('1'), Buffer.from([0, 1, 2])]),
    dataRow([null, Buffer.alloc(0)]),
    commandComplete('SELECT 2'),
    readyForQuery('T'),
    errorResponse(new PgError('42P01', 'relation "nope" does not exist', 'ERROR', { position: 15 })),
    emptyQueryResponse(),
    readyForQuery('E'),
  ].map((b) => Buffer.from(b));
}

const watchSets: { name: string; watch: (code: number) => boolean }[] = [
  { name: 'none', watch: () => false },
  { name: 'all', watch: () => true },
  { name: 'T,D,C', watch: (c) => c === T || c === D || c === C },
  { name: 'Z,E', watch: (c) => c === Z || c === E },
  { name: 'I only (empty body)', watch: (c) => c === I },
];

describe('ServerScanner: exhaustive splits of a small sequence', () => {
  const msgs = smallSequence();
  const input = Buffer.concat(msgs);

  it('one chunk: frames for watched messages are views into the chunk', () => {
    for (const { name, watch } of watchSets) {
      const chunk = unpooled(input);
      const { views } = scanAll(watch, [chunk]);
      checkScan(msgs, [chunk], watch, name);
      expect(views.every(Boolean), `${name}: every piece is a view of the single chunk`).toBe(true);
    }
    // With nothing watched, a whole chunk passes through as one piece, uncopied.
    const chunk = unpooled(input);
    const { pieces } = scanAll(() => false, [chunk]);
    expect(pieces.map((p) => p.kind)).toEqual(['raw']);
    expect(bytesOf(pieces[0]!).length).toBe(chunk.length);
    expect(isViewOf(bytesOf(pieces[0]!), chunk)).toBe(true);
    // With everything watched, there is no raw piece at all.
    expect(scanAll(() => true, [unpooled(input)]).pieces.every((p) => p.kind === 'frame')).toBe(true);
  });

  it('every 2-chunk split point, for every watch set', () => {
    for (const { name, watch } of watchSets) {
      for (let cut = 0; cut <= input.length; cut++) {
        checkScan(msgs, splitAt(input, [cut]), watch, `${name} cut ${cut}`);
      }
    }
  });

  it('every 3-chunk split around each message header', () => {
    let start = 0;
    for (const m of msgs) {
      for (let a = start; a <= start + 5; a++) {
        for (let b = a; b <= start + 6 && b <= input.length; b++) {
          for (const { name, watch } of watchSets) checkScan(msgs, splitAt(input, [a, b]), watch, `${name} cuts ${a},${b}`);
        }
      }
      start += m.length;
    }
  });

  it('one byte at a time', () => {
    for (const { name, watch } of watchSets) {
      checkScan(msgs, [...input].map((b) => unpooled(Uint8Array.of(b))), watch, name);
    }
  });
});

describe('ServerScanner: headers split in the middle', () => {
  const before = commandComplete('INSERT 0 1');
  const target = dataRow([Buffer.from('hello'), null, Buffer.from('world')]);
  const after = readyForQuery('I');
  const msgs = [before, target, after].map((b) => Buffer.from(b));
  const input = Buffer.concat(msgs);
  const headerAt = before.length;

  for (let k = 1; k <= 4; k++) {
    it(`header cut after ${k} byte(s), watched and unwatched`, () => {
      const chunks = splitAt(input, [headerAt + k]);
      // The first chunk ends with k header bytes of the DataRow.
      expect(chunks[0]!.length).toBe(headerAt + k);

      const watched = scanAll((c) => c === D, chunks);
      checkScan(msgs, chunks, (c) => c === D, `watched k=${k}`);
      const frame = watched.pieces.find((p) => p.kind === 'frame');
      expect(frame && frame.kind === 'frame' ? frame.raw.equals(target) : false).toBe(true);

      const unwatched = scanAll(() => false, chunks);
      checkScan(msgs, chunks, () => false, `unwatched k=${k}`);
      // The partial header is held back from the first chunk's output (only `before` passes).
      const firstOut = new ServerScanner(() => false).scan(chunks[0]!);
      expect(Buffer.concat(firstOut.map(bytesOf)).equals(before)).toBe(true);
      expect(unwatched.pieces.every((p) => p.kind === 'raw')).toBe(true);
    });

    it(`header cut after ${k} byte(s) of a message with an empty body`, () => {
      const empty = Buffer.from(emptyQueryResponse());
      const seq = [before, empty, after].map((b) => Buffer.from(b));
      const data = Buffer.concat(seq);
      for (const watch of [(c: number) => c === I, () => false, () => true]) {
        checkScan(seq, splitAt(data, [before.length + k]), watch, `k=${k}`);
        checkScan(seq, splitAt(data, [before.length + k, before.length + 5]), watch, `k=${k} + body boundary`);
      }
    });
  }

  it('header spread over five 1-byte chunks between larger ones', () => {
    const cuts = [headerAt, headerAt + 1, headerAt + 2, headerAt + 3, headerAt + 4, headerAt + 5];
    for (const { name, watch } of watchSets) checkScan(msgs, splitAt(input, cuts), watch, name);
  });
});

describe('ServerScanner: invalid lengths (08P01 FATAL)', () => {
  for (const len of [3, 0, -1, -2147483648]) {
    it(`rejects length ${len}, watched or not, whole or split`, () => {
      const bad = header(D, len);
      for (const watch of [() => true, () => false]) {
        expectProtocolViolation(() => new ServerScanner(watch).scan(Buffer.concat([bad, Buffer.alloc(4)])));
        // After a valid message in the same chunk.
        expectProtocolViolation(() => new ServerScanner(watch).scan(Buffer.concat([readyForQuery('I'), bad])));
        // Header split across chunks: rejected when it completes.
        for (let k = 1; k <= 4; k++) {
          const s = new ServerScanner(watch);
          s.scan(unpooled(bad.subarray(0, k)));
          const err = expectProtocolViolation(() => s.scan(unpooled(bad.subarray(k))));
          expect(err.message).toContain(`invalid length ${len}`);
        }
        // After a message that was passed through or collected across chunks.
        const s = new ServerScanner(watch);
        const row = dataRow([Buffer.from('abc')]);
        s.scan(unpooled(row.subarray(0, 7)));
        expectProtocolViolation(() => s.scan(unpooled(Buffer.concat([row.subarray(7), bad]))));
      }
    });
  }

  it('accepts length exactly 4', () => {
    const msg = header(0x31, 4); // ParseComplete
    const { pieces } = scanAll(() => true, [msg]);
    expect(pieces).toEqual([{ kind: 'frame', code: 0x31, raw: msg }]);
  });
});

describe('ServerScanner properties', () => {
  const field = fieldArbitrary(12);
  const cstr = fc.string({ maxLength: 20 }).map((s) => s.replace(/\0/g, ''));

  const serverMessage: fc.Arbitrary<Buffer> = fc.oneof(
    fc.constantFrom<'I' | 'T' | 'E'>('I', 'T', 'E').map((s) => readyForQuery(s)),
    fc.constant(null).map(() => authenticationOk()),
    fc.constant(null).map(() => emptyQueryResponse()),
    fc.tuple(cstr, cstr).map(([k, v]) => parameterStatus(k, v)),
    fc.tuple(fc.integer(), fc.integer()).map(([p, s]) => backendKeyData(p, s)),
    cstr.map((t) => commandComplete(t)),
    fc.tuple(fc.nat(), cstr, cstr).map(([p, c, m]) => notificationResponse(p, c, m)),
    fc.tuple(fc.constantFrom<0 | 1>(0, 1), fc.nat({ max: 5 })).map(([f, n]) => copyInResponse(f, n)),
    fc.array(field, { maxLength: 4 }).map((fs) => rowDescription(fs)),
    fc.array(fc.option(fc.uint8Array({ maxLength: 30 }), { nil: null }), { maxLength: 6 }).map((vs) => dataRow(vs)),
    fc.tuple(fc.constantFrom('ERROR', 'FATAL', 'NOTICE') , cstr, fc.boolean()).map(([sev, msg, notice]) =>
      errorResponse(new PgError('XX000', msg, sev as 'ERROR' | 'FATAL' | 'NOTICE', { hint: 'h' }), notice)),
    // Arbitrary codes and bodies, including empty bodies and bodies longer than typical chunks.
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 })).map(([code, body]) => typed(code, body)),
  ).map((b) => Buffer.from(b));

  /** A predicate chosen at random: a random set of codes, or nothing, or everything. */
  const watchArb = fc.oneof(
    fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }).map((codes) => new Set(codes)),
    fc.subarray([T, D, C, Z, E, I, 0x52, 0x53, 0x4b, 0x41, 0x47, 0x4e]).map((codes) => new Set(codes)),
    fc.constant(new Set<number>()),
    fc.constant(new Set(Array.from({ length: 256 }, (_, i) => i))),
  );

  const cutFractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 });

  it('random server streams split at random points: lossless, watched = whole frames, unwatched = raw', () => {
    fc.assert(
      fc.property(fc.array(serverMessage, { maxLength: 25 }), watchArb, cutFractions, (msgs, watched, fractions) => {
        const input = Buffer.concat(msgs);
        const chunks = splitAt(input, fractions.map((f) => Math.round(f * input.length)));
        checkScan(msgs, chunks, (c) => watched.has(c));
      }),
      { numRuns: 1000 },
    );
  });

  it('many tiny chunks (1..6 bytes) so that headers are split at every offset', () => {
    fc.assert(
      fc.property(fc.array(serverMessage, { minLength: 1, maxLength: 12 }), watchArb, fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 20 }), (msgs, watched, sizes) => {
        const input = Buffer.concat(msgs);
        const cuts: number[] = [];
        for (let off = 0, i = 0; off < input.length; i++) cuts.push((off += sizes[i % sizes.length]!));
        checkScan(msgs, splitAt(input, cuts), (c) => watched.has(c));
      }),
      { numRuns: 500 },
    );
  });

  it('a stream with a bad length after valid messages throws PgError 08P01, however split', () => {
    fc.assert(
      fc.property(fc.array(serverMessage, { maxLength: 8 }), fc.integer({ min: -2147483648, max: 3 }), watchArb, cutFractions, (msgs, len, watched, fractions) => {
        const input = Buffer.concat([...msgs, header(D, len), Buffer.alloc(3)]);
        const chunks = splitAt(input, fractions.map((f) => Math.round(f * input.length)));
        const scanner = new ServerScanner((c) => watched.has(c));
        let caught: unknown;
        try {
          for (const c of chunks) scanner.scan(c);
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(PgError);
        expect((caught as PgError).code).toBe('08P01');
        expect((caught as PgError).severity).toBe('FATAL');
      }),
      { numRuns: 400 },
    );
  });
});
