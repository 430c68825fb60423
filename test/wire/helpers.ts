/** Shared fixtures and utilities for the wire-level tests. */
import { expect } from 'vitest';
import { serialize } from 'pg-protocol';
import fc from 'fast-check';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import { PgError } from '../../proxy/errors.js';
import type { Frame } from '../../proxy/wire/framer.js';

/**
 * A copy of `b` in its own ArrayBuffer. Small Node buffers share an 8 KiB pool, so two unrelated
 * buffers can have the same `.buffer`; an unpooled chunk makes "is a view of" checks exact.
 */
export function unpooled(b: Uint8Array): Buffer {
  const out = Buffer.from(new ArrayBuffer(b.length));
  out.set(b);
  return out;
}

/** True when `sub` lies inside `parent`'s bytes (same memory, no copy). */
export function isViewOf(sub: Uint8Array, parent: Uint8Array): boolean {
  return (
    sub.buffer === parent.buffer &&
    sub.byteOffset >= parent.byteOffset &&
    sub.byteOffset + sub.length <= parent.byteOffset + parent.length
  );
}

/** True when `a` and `b` share any byte of memory. */
export function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  if (a.buffer !== b.buffer || a.length === 0 || b.length === 0) return false;
  return a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}

/** Cut `data` at the given offsets (any order, duplicates and out-of-range values allowed), as unpooled chunks. */
export function splitAt(data: Uint8Array, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(data.length, c))))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, data.length]) {
    if (p < prev) continue;
    chunks.push(unpooled(data.subarray(prev, p)));
    prev = p;
  }
  return chunks;
}

/** A typed message: code, Int32 length (self-inclusive), body. */
export function typed(code: number, body: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = code;
  out.writeInt32BE(4 + body.length, 1);
  out.set(body, 5);
  return out;
}

/** A typed header claiming `len` (which may be invalid), with no body. */
export function header(code: number, len: number): Buffer {
  const out = Buffer.alloc(5);
  out[0] = code;
  out.writeInt32BE(len | 0, 1);
  return out;
}

/** An untyped (startup-phase) packet: Int32 length (self-inclusive), body. */
export function untyped(body: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeInt32BE(4 + body.length, 0);
  out.set(body, 4);
  return out;
}

export function frameSummary(frames: readonly Frame[]): { code: number; raw: string }[] {
  return frames.map((f) => ({ code: f.code, raw: f.raw.toString('hex') }));
}

/** Call `fn` and assert it throws a PgError 08P01 FATAL; returns the error. */
export function expectProtocolViolation(fn: () => unknown): PgError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a PgError to be thrown').toBeInstanceOf(PgError);
  const err = caught as PgError;
  expect(err.code).toBe('08P01');
  expect(err.severity).toBe('FATAL');
  expect(err.fatal).toBe(true);
  return err;
}

/** A realistic client→server sequence in the extended and simple protocols, plus COPY and Terminate. */
export function clientMessages(): Buffer[] {
  return [
    serialize.query('SELECT 1'),
    serialize.parse({ name: 's1', text: 'SELECT $1::int4, $2::bytea, $3::text', types: [23, 17, 25] }),
    serialize.bind({ statement: 's1', portal: 'p1', values: ['42', Buffer.from([0xde, 0xad, 0xbe, 0xef]), null], binary: true }),
    serialize.describe({ type: 'P', name: 'p1' }),
    serialize.execute({ portal: 'p1', rows: 100 }),
    serialize.sync(),
    serialize.query("COPY t FROM STDIN -- 'é'"),
    serialize.copyData(Buffer.from('1\thello\n2\twörld\n')),
    serialize.copyData(Buffer.alloc(300, 0x61)),
    serialize.copyDone(),
    serialize.parse({ text: 'SELECT now()' }),
    serialize.bind({}),
    serialize.describe({ type: 'S', name: '' }),
    serialize.execute(),
    serialize.close({ type: 'S', name: 's1' }),
    serialize.flush(),
    serialize.sync(),
    serialize.copyFail('client gave up'),
    serialize.password('hunter2'),
    serialize.end(),
  ].map((b) => Buffer.from(b)); // own copies: pg-protocol reuses some constant buffers
}

/** Startup-phase packets a client may send: SSLRequest, GSSENCRequest, StartupMessage, CancelRequest. */
export function startupPackets(): Buffer[] {
  const gssenc = Buffer.alloc(8);
  gssenc.writeInt32BE(8, 0);
  gssenc.writeInt32BE(80877104, 4);
  return [
    serialize.requestSsl(),
    gssenc,
    serialize.startup({ user: 'alice', database: 'db', application_name: 'wire-test' }),
    serialize.cancel(4242, -123456789),
  ].map((b) => Buffer.from(b));
}

/** Any RowDescription field a server could send (names without NUL). */
export function fieldArbitrary(maxNameLength = 30): fc.Arbitrary<FieldDescription> {
  return fc.record({
    name: fc.string({ maxLength: maxNameLength }).map((x) => x.replace(/\0/g, '')),
    tableID: fc.nat({ max: 0xffffffff }),
    columnID: fc.integer({ min: -32768, max: 32767 }),
    dataTypeID: fc.nat({ max: 0xffffffff }),
    dataTypeSize: fc.integer({ min: -32768, max: 32767 }),
    dataTypeModifier: fc.integer({ min: -2147483648, max: 2147483647 }),
    format: fc.constantFrom(0 as const, 1 as const),
  });
}
