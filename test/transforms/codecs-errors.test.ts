/**
 * Values that do not fit their column are a CodecError saying so, and the server agrees that
 * they do not fit; field bytes the server would not send for a type are a CodecError too.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CodecError, decodeValue, encodeValue, type ColumnType, type JsValue } from '../../plugins/shared/codecs/codecs.js';
import { attachPgCluster } from '../support/pg-cluster.js';
import { ServerError, WireClient } from './wire-client.js';

const cluster = attachPgCluster(inject('pg'));

const col = (oid: number, format: 0 | 1 = 0, typmod = -1): ColumnType => ({ oid, typmod, format });

interface Misfit {
  readonly value: unknown;
  readonly oid: number;
  readonly typmod?: number;
  /** The message, or a part of it. */
  readonly message: string | RegExp;
  /** The same value as SQL text, which the server must refuse for the cast. */
  readonly server?: { readonly text: string; readonly cast: string };
}

const cyclic: { [k: string]: JsValue } = { a: 1 };
(cyclic as Record<string, unknown>)['self'] = cyclic;
const sparse: JsValue[] = [1];
sparse[2] = 3;
class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const MISFITS: readonly Misfit[] = [
  { value: 70000, oid: 21, message: 'value 70000 does not fit int2: out of range [-32768, 32767]', server: { text: '70000', cast: 'int2' } },
  { value: -32769, oid: 21, message: 'value -32769 does not fit int2', server: { text: '-32769', cast: 'int2' } },
  { value: 1.5, oid: 21, message: 'value 1.5 does not fit int2: not an integer' },
  { value: 2147483648, oid: 23, message: 'does not fit int4: out of range', server: { text: '2147483648', cast: 'int4' } },
  { value: NaN, oid: 23, message: 'value NaN does not fit int4: not an integer', server: { text: 'NaN', cast: 'int4' } },
  { value: Infinity, oid: 23, message: 'value Infinity does not fit int4' },
  { value: '42', oid: 23, message: 'value "42" does not fit int4: expected a number' },
  { value: 2n ** 40n, oid: 23, message: 'value 1099511627776n does not fit int4' },
  { value: 2n ** 63n, oid: 20, message: 'value 9223372036854775808n does not fit int8: out of range', server: { text: '9223372036854775808', cast: 'int8' } },
  { value: -(2n ** 63n) - 1n, oid: 20, message: 'does not fit int8: out of range', server: { text: '-9223372036854775809', cast: 'int8' } },
  { value: 2 ** 60, oid: 20, message: 'does not fit int8: beyond 2^53 an int8 must be given as a bigint' },
  { value: 0.5, oid: 20, message: 'value 0.5 does not fit int8: not an integer' },
  { value: -1, oid: 26, message: 'value -1 does not fit oid: out of range [0, 4294967295]' },
  { value: 'true', oid: 16, message: 'value "true" does not fit bool: expected a boolean' },
  { value: 1, oid: 16, message: 'value 1 does not fit bool' },
  { value: '1.5', oid: 701, message: 'value "1.5" does not fit float8: expected a number' },
  { value: 1e40, oid: 700, message: 'value 1e+40 does not fit float4: out of range', server: { text: '1e40', cast: 'float4' } },
  { value: 1e-50, oid: 700, message: 'value 1e-50 does not fit float4: too small', server: { text: '1e-50', cast: 'float4' } },
  { value: 'abc', oid: 1700, message: 'value "abc" does not fit numeric: not a numeric literal', server: { text: 'abc', cast: 'numeric' } },
  { value: '1.2.3', oid: 1700, message: 'not a numeric literal', server: { text: '1.2.3', cast: 'numeric' } },
  { value: '-NaN', oid: 1700, message: 'not a numeric literal', server: { text: '-NaN', cast: 'numeric' } },
  { value: '1e-20000', oid: 1700, message: 'more than 16383 digits after the decimal point', server: { text: '1e-20000', cast: 'numeric' } },
  { value: NaN, oid: 1700, message: "a number must be finite (use the string 'NaN' or 'Infinity')" },
  { value: true, oid: 1700, message: 'expected a decimal string, a number or a bigint' },
  {
    value: '1000',
    oid: 1700,
    typmod: ((5 << 16) | 2) + 4,
    message: 'value "1000" does not fit numeric(5,2): numeric field overflow (rounds to 1000.00)',
    server: { text: '1000', cast: 'numeric(5,2)' },
  },
  {
    value: '999.995',
    oid: 1700,
    typmod: ((5 << 16) | 2) + 4,
    message: 'numeric field overflow (rounds to 1000.00)',
    server: { text: '999.995', cast: 'numeric(5,2)' },
  },
  {
    value: 'Infinity',
    oid: 1700,
    typmod: ((5 << 16) | 2) + 4,
    message: 'cannot hold an infinite value',
    server: { text: 'Infinity', cast: 'numeric(5,2)' },
  },
  { value: '0.001', oid: 1700, typmod: ((2 << 16) | 5) + 4, message: 'numeric field overflow', server: { text: '0.001', cast: 'numeric(2,5)' } },
  { value: 'abcd', oid: 1043, typmod: 7, message: 'value "abcd" does not fit varchar(3): longer than 3 characters', server: { text: 'abcd', cast: 'varchar(3)' } },
  { value: 'ab ', oid: 1043, typmod: 6, message: 'does not fit varchar(2)' },
  { value: 'abcdef', oid: 1042, typmod: 9, message: 'value "abcdef" does not fit bpchar(5): longer than 5 characters' },
  { value: 'a\u0000b', oid: 25, message: 'does not fit text: PostgreSQL text cannot contain NUL (U+0000)', server: { text: 'a\u0000b', cast: 'text' } },
  { value: 'x\uD800y', oid: 25, message: 'does not fit text: contains an unpaired UTF-16 surrogate' },
  { value: 42, oid: 25, message: 'value 42 does not fit text: expected a string' },
  { value: 'n'.repeat(64), oid: 19, message: 'does not fit name: longer than 63 bytes' },
  { value: 'ab', oid: 18, message: `value "ab" does not fit "char": expected '', one ASCII character or '\\ooo' (one byte)` },
  { value: 'é', oid: 18, message: 'does not fit "char"' },
  { value: 'deadbeef', oid: 17, message: 'value "deadbeef" does not fit bytea: expected a Uint8Array' },
  { value: [1, 2], oid: 17, message: 'value an array of 2 does not fit bytea' },
  { value: 'not-a-uuid', oid: 2950, message: 'value "not-a-uuid" does not fit uuid: expected 32 hex digits as 8-4-4-4-12', server: { text: 'not-a-uuid', cast: 'uuid' } },
  { value: { n: 1n } as unknown as JsValue, oid: 114, message: 'value an object does not fit json: bigint is not JSON at .n' },
  { value: 5n, oid: 3802, message: 'value 5n does not fit jsonb: bigint is not JSON' },
  { value: { a: undefined } as unknown as JsValue, oid: 114, message: 'undefined is not JSON at .a' },
  { value: [() => 1] as unknown as JsValue, oid: 3802, message: 'function is not JSON at [0]' },
  { value: { d: new Date(0) } as unknown as JsValue, oid: 114, message: 'a Date is not JSON at .d' },
  { value: new Date(0), oid: 3802, message: 'a Date is not JSON' },
  { value: new Uint8Array(2), oid: 114, message: 'a Uint8Array is not JSON' },
  { value: new Point(1, 2) as unknown as JsValue, oid: 114, message: 'a non-plain object is not JSON' },
  { value: cyclic, oid: 3802, message: 'cyclic structure at .self' },
  { value: sparse, oid: 114, message: 'array hole at [1]' },
  { value: [NaN], oid: 114, message: 'NaN is not a JSON number at [0]' },
  { value: { x: Infinity }, oid: 3802, message: 'Infinity is not a JSON number at .x' },
  { value: 'a\u0000', oid: 3802, message: 'jsonb strings cannot contain U+0000', server: { text: '"a\\u0000"', cast: 'jsonb' } },
  { value: { '\uDC00': 1 }, oid: 114, message: 'unpaired UTF-16 surrogate' },
  { value: '2023-02-29', oid: 1082, message: 'value "2023-02-29" does not fit date: day out of range', server: { text: '2023-02-29', cast: 'date' } },
  { value: '2023-13-01', oid: 1082, message: 'month out of range', server: { text: '2023-13-01', cast: 'date' } },
  { value: '0000-01-01', oid: 1082, message: 'there is no year 0', server: { text: '0000-01-01', cast: 'date' } },
  { value: '4714-11-23 BC', oid: 1082, message: 'out of range', server: { text: '4714-11-23 BC', cast: 'date' } },
  { value: '5874898-01-01', oid: 1082, message: 'out of range', server: { text: '5874898-01-01', cast: 'date' } },
  { value: '27/10/2024', oid: 1082, message: "expected 'YYYY-MM-DD'" },
  { value: new Date(Date.UTC(2024, 0, 1, 12)), oid: 1082, message: 'the Date has a time of day' },
  { value: new Date(-8.64e15), oid: 1082, message: 'does not fit date: out of range' },
  { value: new Date(-8.64e15), oid: 1184, message: 'does not fit timestamptz: out of range' },
  { value: new Date(NaN), oid: 1184, message: 'value Invalid Date does not fit timestamptz: invalid Date' },
  { value: '2024-10-27T10:00:00Z', oid: 1114, message: 'a timestamp has no time zone: drop the UTC offset' },
  { value: '2024-10-27T10:00:00', oid: 1184, message: 'a timestamptz needs a UTC offset' },
  { value: '2024-10-27T10:00:00.1234567Z', oid: 1184, message: 'more than 6 fraction digits' },
  { value: '2024-10-27T25:00:00', oid: 1114, message: 'time field out of range', server: { text: '2024-10-27 25:00:00', cast: 'timestamp' } },
  { value: '2024-10-27T10:60:00', oid: 1114, message: 'time field out of range', server: { text: '2024-10-27 10:60:00', cast: 'timestamp' } },
  { value: '2024-10-27T10:00:00+16:00', oid: 1184, message: 'UTC offset out of range', server: { text: '2024-10-27 10:00:00+16:00', cast: 'timestamptz' } },
  { value: '294277-01-01T00:00:00', oid: 1114, message: 'out of range', server: { text: '294277-01-01 00:00:00', cast: 'timestamp' } },
  { value: '4714-11-23T23:59:59.999999 BC', oid: 1114, message: 'out of range', server: { text: '4714-11-23 23:59:59.999999 BC', cast: 'timestamp' } },
  { value: 1700000000000, oid: 1184, message: 'expected' },
  { value: '24:00:01', oid: 1083, message: 'time field out of range', server: { text: '24:00:01', cast: 'time' } },
  { value: 12, oid: 1186, message: 'an unsupported type is passed through and must be a string in text format' },
];

describe('values that do not fit', () => {
  for (const m of MISFITS) {
    const typmod = m.typmod ?? -1;
    for (const format of [0, 1] as const) {
      it(`${String(m.message)} (${format === 0 ? 'text' : 'binary'})`, () => {
        if (m.oid === 1186 && format === 1) return; // the binary pass-through wants a Uint8Array: below
        const attempt = (): Buffer | null => encodeValue(m.value as JsValue, col(m.oid, format, typmod));
        expect(attempt).toThrow(CodecError);
        expect(attempt).toThrow(m.message);
      });
    }
  }

  it('binary pass-through wants a Uint8Array', () => {
    expect(() => encodeValue('1 day', col(1186, 1))).toThrow('must be a Uint8Array in binary format');
  });

  describe('the server refuses them too', () => {
    let client: WireClient;
    beforeAll(async () => {
      client = await WireClient.connect(cluster.port);
    });
    afterAll(() => client.end());

    for (const m of MISFITS.filter((x) => x.server !== undefined)) {
      const server = m.server!;
      it(`${server.cast}: ${JSON.stringify(server.text)}`, async () => {
        // Stored into a column of the type, from a parameter whose type the server infers from
        // it: the server's own input function and assignment rules decide (an explicit cast
        // would silently truncate a varchar).
        await client.simple(`DROP TABLE IF EXISTS misfit; CREATE TEMP TABLE misfit (v ${server.cast})`);
        const raw = Buffer.from(server.text, 'utf8');
        await expect(client.query('INSERT INTO misfit VALUES ($1)', [{ value: raw, format: 0 }])).rejects.toThrow(ServerError);
      });
    }
  });
});

describe('field bytes the server would not send', () => {
  const cases: readonly [string, number, 0 | 1, Buffer][] = [
    ['bool text', 16, 0, Buffer.from('true')],
    ['bool binary', 16, 1, Buffer.from([1, 0])],
    ['int4 text', 23, 0, Buffer.from('12a')],
    ['int4 binary', 23, 1, Buffer.from([0, 0, 1])],
    ['int8 text', 20, 0, Buffer.from('9223372036854775808')],
    ['float8 text', 701, 0, Buffer.from('0x10')],
    ['float8 binary', 701, 1, Buffer.alloc(4)],
    ['numeric text', 1700, 0, Buffer.from('1e5')],
    ['numeric binary sign', 1700, 1, Buffer.from([0, 0, 0, 0, 0x12, 0x34, 0, 0])],
    ['numeric binary digit', 1700, 1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10])],
    ['numeric binary length', 1700, 1, Buffer.from([0, 2, 0, 0, 0, 0, 0, 0, 0, 1])],
    ['text invalid UTF-8', 25, 0, Buffer.from([0x61, 0xff])],
    ['bytea hex', 17, 0, Buffer.from('\\x0g')],
    ['bytea odd hex', 17, 0, Buffer.from('\\x012')],
    ['bytea escape', 17, 0, Buffer.from('a\\9')],
    ['uuid', 2950, 1, Buffer.alloc(15)],
    ['"char" text', 18, 0, Buffer.from('ab')],
    ['json', 114, 0, Buffer.from('{"a":')],
    ['jsonb version', 3802, 1, Buffer.from('\u0002{}')],
    ['date DateStyle German', 1082, 0, Buffer.from('27.10.2024')],
    ['timestamp DateStyle Postgres', 1114, 0, Buffer.from('Sun Oct 27 10:00:00 2024')],
    ['timestamptz without offset', 1184, 0, Buffer.from('2024-10-27 10:00:00')],
    ['time binary beyond 24h', 1083, 1, Buffer.from([0, 0, 0, 0x14, 0x1d, 0xd7, 0x60, 0x01])],
  ];
  for (const [name, oid, format, raw] of cases) {
    it(name, () => {
      expect(() => decodeValue(raw, col(oid, format))).toThrow(CodecError);
    });
  }

  it('names the type and format and shows the bytes', () => {
    expect(() => decodeValue(Buffer.from('maybe'), col(16))).toThrow('malformed bool value in text format: "maybe"');
    expect(() => decodeValue(Buffer.from([1, 2, 3]), col(23, 1))).toThrow('malformed int4 value in binary format: 0x010203');
  });

  it('a DateStyle other than ISO is refused by name', async () => {
    const client = await WireClient.connect(cluster.port);
    try {
      await client.simple("SET DateStyle = 'SQL, DMY'");
      const { field, raw } = await client.scalar("SELECT '2024-10-27 10:00:00'::timestamp", 0);
      expect(raw?.toString()).toBe('27/10/2024 10:00:00');
      expect(() => decodeValue(raw, { oid: field.oid, typmod: field.typmod, format: 0 })).toThrow('DateStyle must be ISO');
    } finally {
      client.end();
    }
  });
});
