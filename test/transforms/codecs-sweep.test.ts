/**
 * Many pseudo-random values of the types whose text forms are computed (floats, numeric,
 * dates and timestamps), checked against the server's own output in both formats.
 * The generator is seeded so that a failure reproduces.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CodecError, decodeValue, encodeValue, type ColumnType } from '../../plugins/shared/codecs/codecs.js';
import { mulberry32 } from '../support/rng.js';
import { attachPgCluster } from '../support/pg-cluster.js';
import { ServerError, WireClient, type Result } from './wire-client.js';

const cluster = attachPgCluster(inject('pg'));

const rng = mulberry32;

/** A number as text the server reads back exactly (String() drops the sign of -0). */
const jsText = (x: number): string => (Object.is(x, -0) ? '-0' : String(x));

let client: WireClient;
beforeAll(async () => {
  client = await WireClient.connect(cluster.port);
});
afterAll(() => client.end());

/** `SELECT unnest($1::text[])::<cast>` in both formats: each value as the server reads its text. */
async function viaServer(texts: readonly string[], cast: string): Promise<{ text: Result; binary: Result }> {
  const literal = `{${texts.map((t) => `"${t.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
  const params = [{ value: Buffer.from(literal, 'utf8'), format: 0 as const, oid: 1009 }];
  const sql = `SELECT v::${cast} FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i) ORDER BY i`;
  return { text: await client.query(sql, params, 0), binary: await client.query(sql, params, 1) };
}

function typeOf(r: Result, format: 0 | 1): ColumnType {
  const f = r.fields[0]!;
  return { oid: f.oid, typmod: f.typmod, format };
}

/** Every row: decodes to `expected(i)` in both formats and re-encodes to the server's bytes. */
function checkRows(r: { text: Result; binary: Result }, expected: (i: number) => unknown, same: (a: unknown, b: unknown) => boolean): void {
  const tt = typeOf(r.text, 0);
  const bt = typeOf(r.binary, 1);
  expect(r.text.rows.length).toBe(r.binary.rows.length);
  for (let i = 0; i < r.text.rows.length; i++) {
    const rawText = r.text.rows[i]![0]!;
    const rawBinary = r.binary.rows[i]![0]!;
    const fromText = decodeValue(rawText, tt);
    const fromBinary = decodeValue(rawBinary, bt);
    const want = expected(i);
    if (!same(fromText, want) || !same(fromBinary, want)) {
      expect({ row: i, fromText, fromBinary }).toEqual({ row: i, fromText: want, fromBinary: want });
    }
    // The value from either format encodes to the server's bytes in both formats.
    for (const value of [fromText, fromBinary]) {
      const t = encodeValue(value, tt)!;
      const b = encodeValue(value, bt)!;
      if (!t.equals(rawText) || !b.equals(rawBinary)) {
        expect({ row: i, text: t.toString(), binary: b.toString('hex') }).toEqual({ row: i, text: rawText.toString(), binary: rawBinary.toString('hex') });
      }
    }
  }
}

describe('floats', () => {
  it('float8: 20000 doubles of every magnitude print as the server prints them', async () => {
    const next = rng(8);
    const view = new DataView(new ArrayBuffer(8));
    const values: number[] = [];
    while (values.length < 20000) {
      const kind = next() % 4;
      let x: number;
      if (kind === 0) {
        view.setUint32(0, next());
        view.setUint32(4, next());
        x = view.getFloat64(0);
      } else if (kind === 1) {
        x = (next() % 2000000) / 10 ** (next() % 12); // short decimals
      } else if (kind === 2) {
        x = (next() - 2 ** 31) * 2 ** ((next() % 200) - 100); // binary fractions and large integers
      } else {
        x = Number(`${next() % 1000}e${(next() % 640) - 330}`); // powers of ten, subnormals, overflow
      }
      if (!Number.isNaN(x)) values.push(x);
    }
    values.push(NaN, -0, 0, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, 2 ** 53, 2 ** 63, 1e15, 1e16, 1e-4, 1e-5, 123456789012345.6);
    const r = await viaServer(values.map(jsText), 'float8');
    checkRows(r, (i) => values[i], Object.is);
  });

  it('float4: 20000 binary32 values print as the server prints them', async () => {
    const next = rng(4);
    const view = new DataView(new ArrayBuffer(4));
    const values: number[] = [];
    while (values.length < 20000) {
      let x: number;
      if (next() % 2 === 0) {
        view.setUint32(0, next());
        x = view.getFloat32(0);
      } else {
        x = Math.fround((next() % 2000000) / 10 ** (next() % 10));
      }
      if (!Number.isNaN(x) && Number.isFinite(x)) values.push(x);
    }
    values.push(...[-0, 2 ** -149, 2 ** -126, 3.4028235e38, 16777216, 1e6, 999999, 1e-4, 1e-5].map(Math.fround));
    const r = await viaServer(values.map(jsText), 'float4');
    checkRows(r, (i) => values[i], Object.is);
  });
});

describe('numeric', () => {
  function randomDecimal(next: () => number): string {
    const digits = (n: number): string => {
      let s = '';
      // Runs of zeros exercise stripped base-10000 digits and weights.
      for (let i = 0; i < n; i++) s += next() % 3 === 0 ? '0' : String(next() % 10);
      return s;
    };
    const int = digits(next() % 30);
    const frac = digits(next() % 30);
    const sign = next() % 2 === 0 ? '-' : '';
    const exp = next() % 4 === 0 ? `e${(next() % 60) - 30}` : '';
    return `${sign}${int || '0'}${frac ? `.${frac}` : ''}${exp}`;
  }

  it('5000 decimals: text, binary and the codec agree', async () => {
    const next = rng(1700);
    const literals: string[] = [];
    for (let i = 0; i < 5000; i++) literals.push(randomDecimal(next));
    literals.push('NaN', 'Infinity', '-Infinity', '0', '-0', '0.0000', '10000', '99999999', '100000000', '0.0001', '0.00001');
    const r = await viaServer(literals, 'numeric');
    // The expected value is the server's text; the binary must decode to it as well.
    checkRows(r, (i) => r.text.rows[i]![0]!.toString(), (a, b) => a === b);
    // And what the codec makes of the literal is what the server made of it.
    const tt = typeOf(r.text, 0);
    for (let i = 0; i < literals.length; i++) {
      expect(encodeValue(literals[i]!, tt)?.toString(), literals[i]).toBe(r.text.rows[i]![0]!.toString());
    }
  });

  it('300 numeric(p,s) roundings and overflows match the server', async () => {
    const next = rng(5);
    for (let i = 0; i < 300; i++) {
      const precision = 1 + (next() % 12);
      const scale = (next() % 16) - 4; // negative, zero, within and beyond the precision
      const literal = randomDecimal(next);
      const typmod = ((precision << 16) | (scale & 0x7ff)) + 4;
      let server: string | Error;
      try {
        const { raw } = await client.scalar(`SELECT $1::text::numeric(${precision},${scale})`, 0, [{ value: Buffer.from(literal), format: 0 }]);
        server = raw!.toString();
      } catch (e) {
        if (!(e instanceof ServerError)) throw e;
        server = e;
      }
      const what = `${literal}::numeric(${precision},${scale})`;
      for (const format of [0, 1] as const) {
        const type: ColumnType = { oid: 1700, typmod, format };
        if (server instanceof Error) {
          expect(() => encodeValue(literal, type), what).toThrow(CodecError);
        } else {
          expect(decodeValue(encodeValue(literal, type), type), what).toBe(server);
        }
      }
    }
  });
});

describe('dates and timestamps', () => {
  const TS_MIN = -211813488000000000n;
  const TS_END = 9223371331200000000n;

  function randomMicros(next: () => number): bigint {
    const span = TS_END - TS_MIN;
    const r = (BigInt(next()) << 32n) | BigInt(next());
    // Half anywhere in the range, half within a few centuries of 2000, fractions or whole seconds.
    const us = next() % 2 === 0 ? TS_MIN + (r % span) : (r % (2n * 10n ** 16n)) - 10n ** 16n;
    return next() % 3 === 0 ? us - (us % 1000000n) : us;
  }

  function int64(us: bigint): Buffer {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(us);
    return b;
  }

  for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Europe/Amsterdam']) {
    it(`timestamptz: 3000 instants in TimeZone ${zone}`, async () => {
      await client.simple(`SET TimeZone = '${zone}'`);
      const next = rng(zone.length);
      const micros: bigint[] = [];
      for (let i = 0; i < 3000; i++) micros.push(randomMicros(next));
      const binaryType: ColumnType = { oid: 1184, typmod: -1, format: 1 };
      const textType: ColumnType = { oid: 1184, typmod: -1, format: 0 };
      // The codec's text of each instant (UTC) is read by the server as that instant.
      const texts = micros.map((us) => encodeValue(decodeValue(int64(us), binaryType), textType)!.toString());
      const r = await viaServer(texts, 'timestamptz');
      for (let i = 0; i < micros.length; i++) {
        const rawText = r.text.rows[i]![0]!;
        const rawBinary = r.binary.rows[i]![0]!;
        expect(rawBinary.readBigInt64BE(), texts[i]).toBe(micros[i]);
        // Text in the session's zone: decodes with its offset and re-encodes identically,
        // and means the same instant.
        const local = decodeValue(rawText, textType);
        expect(encodeValue(local, textType)?.toString(), rawText.toString()).toBe(rawText.toString());
        expect(encodeValue(local, binaryType)?.readBigInt64BE(), rawText.toString()).toBe(micros[i]);
        if (zone === 'UTC') expect(rawText.toString()).toBe(texts[i]);
      }
      await client.simple("SET TimeZone = 'UTC'");
    });
  }

  it('timestamp: 3000 wall-clock times', async () => {
    const next = rng(1114);
    const micros: bigint[] = [];
    for (let i = 0; i < 3000; i++) micros.push(randomMicros(next));
    const binaryType: ColumnType = { oid: 1114, typmod: -1, format: 1 };
    const values = micros.map((us) => decodeValue(int64(us), binaryType) as string);
    // The server reads the JavaScript form itself ('T', six fraction digits, ' BC').
    const r = await viaServer(values, 'timestamp');
    checkRows(r, (i) => values[i], (a, b) => a === b);
    for (let i = 0; i < micros.length; i++) expect(r.binary.rows[i]![0]!.readBigInt64BE()).toBe(micros[i]);
  });

  it('date: 3000 days', async () => {
    const next = rng(1082);
    const days: number[] = [];
    for (let i = 0; i < 3000; i++) {
      days.push(next() % 2 === 0 ? -2451545 + (next() % (2147483494 - 1)) : (next() % 2000000) - 1000000);
    }
    const binaryType: ColumnType = { oid: 1082, typmod: -1, format: 1 };
    const values = days.map((d) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(d);
      return decodeValue(b, binaryType) as string;
    });
    const r = await viaServer(values, 'date');
    checkRows(r, (i) => values[i], (a, b) => a === b);
    for (let i = 0; i < days.length; i++) expect(r.binary.rows[i]![0]!.readInt32BE()).toBe(days[i]);
  });
});
