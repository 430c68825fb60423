/**
 * The codecs against a real PostgreSQL: what the server sends decodes to the documented value in
 * both formats, re-encodes to the very same bytes, and what the codecs encode for new values is
 * what the server itself reads and prints back.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decodeValue, encodeValue, TYPE_NAMES, type ColumnType, type JsValue } from '../../plugins/shared/codecs/codecs.js';
import { attachPgCluster } from '../support/pg-cluster.js';
import { WireClient } from './wire-client.js';

const cluster = attachPgCluster(inject('pg'));

const FORMATS = [0, 1] as const;
const fmtName = (f: 0 | 1): string => (f === 0 ? 'text' : 'binary');

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const all256 = new Uint8Array(256).map((_, i) => i);
const ALL_BYTES_SQL = "(SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') FROM generate_series(0, 255) i)";

interface Case {
  /** A SQL expression yielding one value. */
  readonly sql: string;
  /** The decoded value in both formats, unless text/binary say otherwise. */
  readonly value?: JsValue;
  readonly text?: JsValue;
  readonly binary?: JsValue;
  /** The oid the server should report (checked, so a case cannot test the wrong type). */
  readonly oid: number;
  readonly typmod?: number;
}

const c = (oid: number, sql: string, value: JsValue, extra: Partial<Case> = {}): Case => ({ oid, sql, value, ...extra });

const CASES: readonly Case[] = [
  c(16, 'true', true),
  c(16, 'false', false),
  c(16, 'NULL::bool', null),
  c(21, '32767::int2', 32767),
  c(21, '(-32768)::int2', -32768),
  c(21, '0::int2', 0),
  c(23, '2147483647', 2147483647),
  c(23, '(-2147483648)::int4', -2147483648),
  c(23, 'NULL::int4', null),
  c(20, '9223372036854775807::int8', 9223372036854775807n),
  c(20, '(-9223372036854775808)::int8', -9223372036854775808n),
  c(20, '9007199254740993::int8', 9007199254740993n),
  c(20, '0::int8', 0n),
  c(26, '4294967295::oid', 4294967295),
  c(26, '0::oid', 0),
  c(26, "'pg_class'::regclass::oid", 1259),
  c(701, "'NaN'::float8", NaN),
  c(701, "'Infinity'::float8", Infinity),
  c(701, "'-Infinity'::float8", -Infinity),
  c(701, "'-0'::float8", -0),
  c(701, '0::float8', 0),
  c(701, '1e-7::float8', 1e-7),
  c(701, '1.5e-7::float8', 1.5e-7),
  c(701, '1e100::float8', 1e100),
  c(701, '1e15::float8', 1e15),
  c(701, '123456789012345::float8', 123456789012345),
  c(701, '0.0001::float8', 0.0001),
  c(701, '0.00001::float8', 0.00001),
  c(701, '0.1::float8 + 0.2::float8', 0.30000000000000004),
  c(701, '(-1)::float8 / 3', -1 / 3),
  c(701, "'1.7976931348623157e308'::float8", 1.7976931348623157e308),
  c(701, "'5e-324'::float8", 5e-324),
  c(701, "'2.2250738585072014e-308'::float8", 2.2250738585072014e-308),
  c(701, '9007199254740993::float8', 9007199254740992),
  c(700, '1.1::float4', Math.fround(1.1)),
  c(700, "'NaN'::float4", NaN),
  c(700, "'-Infinity'::float4", -Infinity),
  c(700, "'-0'::float4", -0),
  c(700, "'3.4028235e38'::float4", Math.fround(3.4028235e38)),
  c(700, "'1e-45'::float4", Math.fround(1e-45)),
  c(700, "'1.17549435e-38'::float4", Math.fround(1.17549435e-38)),
  c(700, '16777217::float4', 16777216),
  c(700, '1e6::float4', 1e6),
  c(700, '123456::float4', 123456),
  c(700, '0.1::float4', Math.fround(0.1)),
  c(700, '1e-5::float4', Math.fround(1e-5)),
  c(1700, '12345678901234567890.0001::numeric', '12345678901234567890.0001'),
  c(1700, '0::numeric', '0'),
  c(1700, '0.000::numeric', '0.000'),
  c(1700, "'-0.0'::numeric", '0.0'),
  c(1700, '(-1.50)::numeric', '-1.50'),
  c(1700, "'NaN'::numeric", 'NaN'),
  c(1700, "'Infinity'::numeric", 'Infinity'),
  c(1700, "'-Infinity'::numeric", '-Infinity'),
  c(1700, '1e-20::numeric', '0.00000000000000000001'),
  c(1700, '0.0001::numeric', '0.0001'),
  c(1700, '10000::numeric', '10000'),
  c(1700, '9999.9999::numeric', '9999.9999'),
  c(1700, '100000000.00000001::numeric', '100000000.00000001'),
  c(1700, '1e100::numeric', `1${'0'.repeat(100)}`),
  c(1700, '1::numeric / 3', '0.33333333333333333333'),
  c(1700, "('-' || repeat('9', 1000) || '.' || repeat('0', 999) || '1')::numeric", `-${'9'.repeat(1000)}.${'0'.repeat(999)}1`),
  c(1700, '123.45::numeric(10,2)', '123.45', { typmod: ((10 << 16) | 2) + 4 }),
  c(1700, '7::numeric(10,2)', '7.00', { typmod: ((10 << 16) | 2) + 4 }),
  c(1700, '12345::numeric(2,-3)', '12000'),
  c(1700, '(-0.00099)::numeric(2,5)', '-0.00099'),
  c(25, "''::text", ''),
  c(25, "'héllo wörld ☃ 😀'::text", 'héllo wörld ☃ 😀'),
  c(25, "E'tab\\there\\nnew line \\\\ \\u0001'::text", 'tab\there\nnew line \\ \u0001'),
  c(25, "E'\\uFEFFstarts with a byte order mark'::text", '\uFEFFstarts with a byte order mark'),
  c(25, "repeat('x', 100000)", 'x'.repeat(100000)),
  c(1043, "'abc'::varchar(3)", 'abc', { typmod: 7 }),
  c(1043, "'ünï'::varchar(5)", 'ünï'),
  c(1043, "'unbounded'::varchar", 'unbounded', { typmod: -1 }),
  c(1042, "'ab'::char(5)", 'ab   ', { typmod: 9 }),
  c(1042, "'é'::char(3)", 'é  '),
  c(1042, "'ab  '::bpchar", 'ab  ', { typmod: -1 }),
  c(1042, "''::char(2)", '  '),
  c(19, "'pg_class'::name", 'pg_class'),
  c(19, "repeat('n', 63)::name", 'n'.repeat(63)),
  c(18, `'a'::"char"`, 'a'),
  c(18, `''::"char"`, ''),
  c(18, `'\\351'::"char"`, '\\351'),
  c(18, `'\\'::"char"`, '\\'),
  c(18, `'\\001'::"char"`, '\u0001'),
  c(17, "'\\x'::bytea", bytes()),
  c(17, "'\\xdeadbeef'::bytea", bytes(0xde, 0xad, 0xbe, 0xef)),
  c(17, ALL_BYTES_SQL, all256),
  c(2950, "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid", 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
  c(2950, "'00000000-0000-0000-0000-000000000000'::uuid", '00000000-0000-0000-0000-000000000000'),
  c(114, `'{"a":1,"b":[true,null,"x"],"c":{"d":"é\\n\\u0001"}}'::json`, { a: 1, b: [true, null, 'x'], c: { d: 'é\n\u0001' } }),
  c(114, "'[]'::json", []),
  c(114, `'"str"'::json`, 'str'),
  c(114, "'3.5'::json", 3.5),
  c(114, `'{"n":-0.5,"big":1e+100,"small":1e-7}'::json`, { n: -0.5, big: 1e100, small: 1e-7 }),
  c(3802, `'{"b": 1, "aa": [1, 2.5, {"x": null}], "1": true, "10": "s"}'::jsonb`, { b: 1, aa: [1, 2.5, { x: null }], 1: true, 10: 's' }),
  c(3802, `'{"é": 1, "z": 2, "ab": 3}'::jsonb`, { z: 2, ab: 3, é: 1 }),
  c(3802, `'{"k": "a\\u0001b\\"c\\\\d/é😀\\t"}'::jsonb`, { k: 'a\u0001b"c\\d/é😀\t' }),
  c(3802, "'[0.1, -0, 1e2, 1e-7, 1.5e300, -12345678901234]'::jsonb", [0.1, 0, 100, 1e-7, 1.5e300, -12345678901234]),
  c(3802, "'{}'::jsonb", {}),
  c(3802, "'[[], {}, [[{}]]]'::jsonb", [[], {}, [[{}]]]),
  c(3802, `'"scalar"'::jsonb`, 'scalar'),
  c(3802, "'false'::jsonb", false),
  c(1082, "'2024-10-27'::date", '2024-10-27'),
  c(1082, "'2000-01-01'::date", '2000-01-01'),
  c(1082, "'1999-12-31'::date", '1999-12-31'),
  c(1082, "'2024-02-29'::date", '2024-02-29'),
  c(1082, "'0001-01-01'::date", '0001-01-01'),
  c(1082, "'0001-12-31 BC'::date", '0001-12-31 BC'),
  c(1082, "'0044-03-15 BC'::date", '0044-03-15 BC'),
  c(1082, "'0005-02-29 BC'::date", '0005-02-29 BC'),
  c(1082, "'4714-11-24 BC'::date", '4714-11-24 BC'),
  c(1082, "'5874897-12-31'::date", '5874897-12-31'),
  c(1082, "'10000-01-01'::date", '10000-01-01'),
  c(1082, "'infinity'::date", 'infinity'),
  c(1082, "'-infinity'::date", '-infinity'),
  c(1083, "'10:00:00'::time", '10:00:00.000000'),
  c(1083, "'23:59:59.999999'::time", '23:59:59.999999'),
  c(1083, "'24:00:00'::time", '24:00:00.000000'),
  c(1083, "'00:00:00.5'::time(1)", '00:00:00.500000', { typmod: 1 }),
  c(1114, "'2024-10-27 10:00:00.123456'::timestamp", '2024-10-27T10:00:00.123456'),
  c(1114, "'2024-10-27 10:00:00'::timestamp", '2024-10-27T10:00:00.000000'),
  c(1114, "'2024-10-27 10:00:00.1'::timestamp", '2024-10-27T10:00:00.100000'),
  c(1114, "'1999-12-31 23:59:59.999999'::timestamp", '1999-12-31T23:59:59.999999'),
  c(1114, "'0044-03-15 10:00:00.5 BC'::timestamp", '0044-03-15T10:00:00.500000 BC'),
  c(1114, "'4714-11-24 00:00:00 BC'::timestamp", '4714-11-24T00:00:00.000000 BC'),
  c(1114, "'294276-12-31 23:59:59.999999'::timestamp", '294276-12-31T23:59:59.999999'),
  c(1114, "'infinity'::timestamp", 'infinity'),
  c(1114, "'-infinity'::timestamp", '-infinity'),
  c(1114, "'2024-10-27 10:00:00.5'::timestamp(0)", '2024-10-27T10:00:01.000000', { typmod: 0 }),
  c(1184, "'2024-10-27 10:00:00.123456+02'::timestamptz", '2024-10-27T08:00:00.123456Z'),
  c(1184, "'0044-03-15 10:00:00 BC'::timestamptz", '0044-03-15T10:00:00.000000Z BC'),
  c(1184, "'1999-12-31 23:59:59.999999+00'::timestamptz", '1999-12-31T23:59:59.999999Z'),
  c(1184, "'infinity'::timestamptz", 'infinity'),
  c(1184, "'-infinity'::timestamptz", '-infinity'),
  // Types without a codec pass through untouched.
  { oid: 1186, sql: "'1 day 02:03:04'::interval", text: '1 day 02:03:04' },
  { oid: 1007, sql: "'{1,2,3}'::int4[]", text: '{1,2,3}' },
];

/** timestamptz in text format carries the session's offset; binary is always UTC. */
const KOLKATA_CASES: readonly Case[] = [
  c(1184, "'2024-10-27 10:00:00.123456Z'::timestamptz", null, {
    text: '2024-10-27T15:30:00.123456+05:30',
    binary: '2024-10-27T10:00:00.123456Z',
  }),
  c(1184, "'1900-01-01 00:00:00'::timestamptz", null, {
    text: '1900-01-01T00:00:00.000000+05:21:10',
    binary: '1899-12-31T18:38:50.000000Z',
  }),
  c(1184, "'0044-03-15 10:00:00.5 BC'::timestamptz", null, {
    text: '0044-03-15T10:00:00.500000+05:53:28 BC',
    binary: '0044-03-15T04:06:32.500000Z BC',
  }),
  c(1184, "'infinity'::timestamptz", 'infinity'),
];

const NEW_YORK_CASES: readonly Case[] = [
  c(1184, "'2024-01-15 12:00:00.25Z'::timestamptz", null, {
    text: '2024-01-15T07:00:00.250000-05:00',
    binary: '2024-01-15T12:00:00.250000Z',
  }),
  c(1184, "'2024-07-15 12:00:00Z'::timestamptz", null, {
    text: '2024-07-15T08:00:00.000000-04:00',
    binary: '2024-07-15T12:00:00.000000Z',
  }),
];

function expectedFor(k: Case, format: 0 | 1): JsValue | undefined {
  const own = format === 0 ? k.text : k.binary;
  return own !== undefined ? own : k.value;
}

function defineRoundTrips(title: string, setup: string, cases: readonly Case[]): void {
  describe(title, () => {
    let client: WireClient;
    beforeAll(async () => {
      client = await WireClient.connect(cluster.port);
      await client.simple(setup);
    });
    afterAll(() => client.end());

    for (const format of FORMATS) {
      for (const k of cases) {
        const typeName = TYPE_NAMES.get(k.oid) ?? `oid ${k.oid}`;
        it(`${typeName} ${fmtName(format)}: SELECT ${k.sql.length > 70 ? `${k.sql.slice(0, 67)}...` : k.sql}`, async () => {
          const { field, raw } = await client.scalar(`SELECT ${k.sql}`, format);
          expect(field.oid).toBe(k.oid);
          expect(field.format).toBe(format);
          if (k.typmod !== undefined) expect(field.typmod).toBe(k.typmod);
          const type: ColumnType = { oid: field.oid, typmod: field.typmod, format };
          const decoded = decodeValue(raw, type);
          const expected = expectedFor(k, format);
          if (expected !== undefined) {
            if (typeof expected === 'number') expect(Object.is(decoded, expected), `${String(decoded)} is ${expected}`).toBe(true);
            else expect(decoded).toEqual(expected);
          } else {
            expect(decoded).toBeInstanceOf(Uint8Array);
          }
          // The identity transform changes nothing.
          const encoded = encodeValue(decoded, type);
          if (raw === null) expect(encoded).toBeNull();
          else expect(encoded?.toString('hex')).toBe(raw.toString('hex'));
        });
      }
    }
  });
}

defineRoundTrips('round trip (TimeZone UTC)', "SET TimeZone = 'UTC'", CASES);
defineRoundTrips('round trip (TimeZone Asia/Kolkata)', "SET TimeZone = 'Asia/Kolkata'", KOLKATA_CASES);
defineRoundTrips('round trip (TimeZone America/New_York)', "SET TimeZone = 'America/New_York'", NEW_YORK_CASES);

it('covers every supported type in both formats', () => {
  const tested = new Set(CASES.map((k) => k.oid));
  for (const oid of TYPE_NAMES.keys()) expect(tested.has(oid), TYPE_NAMES.get(oid)).toBe(true);
});

// ---------------------------------------------------------------------------------------------
// Values a transform returns: the server reads them as parameters in the same format and prints
// them back as exactly the bytes the codec produced (in the other format too).

interface NewValue {
  readonly value: JsValue;
  /** The decoded value PostgreSQL's answer must give, when it is not `value` itself. */
  readonly means?: JsValue;
}

interface Target {
  readonly oid: number;
  /** The type to cast the parameter to (with its modifier), so the result column carries it. */
  readonly cast: string;
  readonly typmod?: number;
  readonly values: readonly NewValue[];
}

const v = (value: JsValue, means?: JsValue): NewValue => (means === undefined ? { value } : { value, means });
const TARGETS: readonly Target[] = [
  { oid: 16, cast: 'bool', values: [v(true), v(false)] },
  { oid: 21, cast: 'int2', values: [v(12345), v(-1), v(-32768), v(12n, 12), v(-0, 0)] },
  { oid: 23, cast: 'int4', values: [v(-2147483648), v(2147483647), v(42n, 42)] },
  { oid: 20, cast: 'int8', values: [v(2n ** 62n), v(-(2n ** 63n)), v(-5, -5n), v(Number.MAX_SAFE_INTEGER, 9007199254740991n)] },
  { oid: 26, cast: 'oid', values: [v(4294967295), v(3000000000)] },
  {
    oid: 701,
    cast: 'float8',
    values: [v(0.1 + 0.2), v(-0), v(NaN), v(Infinity), v(-Infinity), v(1e-310), v(1.5e-7), v(1e21), v(-123.456), v(2 ** 53 + 2), v(1e-5), v(12345678.9)],
  },
  {
    oid: 700,
    cast: 'float4',
    values: [v(0.1, Math.fround(0.1)), v(3.14159, Math.fround(3.14159)), v(-0), v(1e-40, Math.fround(1e-40)), v(1e30, Math.fround(1e30)), v(NaN), v(Infinity), v(1234567, 1234567), v(16777217, 16777216)],
  },
  {
    oid: 1700,
    cast: 'numeric',
    values: [
      v('3.14159'),
      v('-1e3', '-1000'),
      v('.5', '0.5'),
      v(' 42 ', '42'),
      v('1.50'),
      v('-0.000', '0.000'),
      v('1.5e-3', '0.0015'),
      v('1.23e1', '12.3'),
      v(1.5, '1.5'),
      v(0.1, '0.1'),
      v(1e21, '1000000000000000000000'),
      v(-2.5e-8, '-0.000000025'),
      v(12345678901234567890123n, '12345678901234567890123'),
      v('NaN'),
      v('-inf', '-Infinity'),
      v('Infinity'),
      v(`1${'0'.repeat(200)}.${'0'.repeat(50)}1`),
    ],
  },
  { oid: 1700, cast: 'numeric(5,2)', typmod: ((5 << 16) | 2) + 4, values: [v('1.234', '1.23'), v('1.235', '1.24'), v('-1.235', '-1.24'), v('999.994', '999.99'), v(7, '7.00'), v('NaN')] },
  { oid: 1700, cast: 'numeric(3,-2)', typmod: ((3 << 16) | (-2 & 0x7ff)) + 4, values: [v('12345', '12300'), v('-149.99', '-100'), v('99949', '99900')] },
  { oid: 25, cast: 'text', values: [v('new ☃ value 😀'), v(''), v('\uFEFF'), v('line\nbreak\ttab\\')] },
  { oid: 1043, cast: 'varchar(5)', typmod: 9, values: [v('abc'), v('😀😀😀😀😀'), v('')] },
  { oid: 1042, cast: 'char(5)', typmod: 9, values: [v('ab', 'ab   '), v('abcde'), v('abc    ', 'abc  '), v('é', 'é    ')] },
  { oid: 1042, cast: 'bpchar', values: [v('no padding '), v('')] },
  { oid: 19, cast: 'name', values: [v('a_name'), v('ü'.repeat(31))] },
  { oid: 18, cast: '"char"', values: [v('z'), v(''), v('\\377'), v('\\200'), v('\\101', 'A'), v('\\')] },
  { oid: 17, cast: 'bytea', values: [v(new Uint8Array(all256).reverse()), v(bytes()), v(Buffer.from('a buffer'), new Uint8Array(Buffer.from('a buffer')))] },
  {
    oid: 2950,
    cast: 'uuid',
    values: [v('{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), v('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')],
  },
  {
    oid: 114,
    cast: 'json',
    values: [v({ a: [1, 'x', null], b: { c: true, d: 1e21 }, e: 'é\n\u0000' }), v([]), v('just a string'), v(-0.5), v(false)],
  },
  {
    oid: 3802,
    cast: 'jsonb',
    values: [
      v({ z: 1, aa: [1.5, 'x', null], 10: { c: true }, 2: 2, é: 'ü' }),
      v([1e21, 1e-7, -0, 0.1, 123456789.123], [1e21, 1e-7, 0, 0.1, 123456789.123]),
      v({}),
      v('\u0001 control'),
      v(true),
    ],
  },
  {
    oid: 1082,
    cast: 'date',
    values: [v('2024-02-29'), v(new Date(Date.UTC(2020, 0, 1)), '2020-01-01'), v('0001-01-01 BC'), v('2000-12-31 AD', '2000-12-31'), v('infinity'), v('-infinity'), v('5874897-12-31')],
  },
  { oid: 1083, cast: 'time', values: [v('12:34:56.789', '12:34:56.789000'), v('00:00', '00:00:00.000000'), v('24:00:00.000000')] },
  { oid: 1083, cast: 'time(2)', typmod: 2, values: [v('12:34:56.785', '12:34:56.790000'), v('23:59:59.999', '24:00:00.000000')] },
  {
    oid: 1114,
    cast: 'timestamp',
    values: [
      v('2024-10-27T10:00:00.1', '2024-10-27T10:00:00.100000'),
      v('2024-10-27 10:00', '2024-10-27T10:00:00.000000'),
      v(new Date(Date.UTC(2024, 9, 27, 10, 0, 0, 123)), '2024-10-27T10:00:00.123000'),
      v('2001-02-29T23:59:59.999999 BC'),
      v('2024-12-31T24:00:00', '2025-01-01T00:00:00.000000'),
      v('infinity'),
      v('-infinity'),
    ],
  },
  { oid: 1114, cast: 'timestamp(3)', typmod: 3, values: [v('2024-10-27T10:00:00.1235', '2024-10-27T10:00:00.124000'), // Half away from zero counts from 2000-01-01, so before it a half rounds down the clock.
      v('1999-12-31T23:59:59.9995', '1999-12-31T23:59:59.999000'),
      v('2000-01-01T00:00:00.0005', '2000-01-01T00:00:00.001000'),] },
  {
    oid: 1184,
    cast: 'timestamptz',
    values: [
      v('2024-10-27T10:00:00.123456Z'),
      v('2024-10-27T10:00:00.123456+05:30', '2024-10-27T04:30:00.123456Z'),
      v('2024-10-27T10:00:00-03:30', '2024-10-27T13:30:00.000000Z'),
      v('2024-10-27 10:00:00+0200', '2024-10-27T08:00:00.000000Z'),
      v('1000-01-01T00:00:00.000001+05:53:28 BC', '1001-12-31T18:06:32.000001Z BC'),
      v(new Date(Date.UTC(1969, 6, 20, 20, 17, 40)), '1969-07-20T20:17:40.000000Z'),
      v('infinity'),
    ],
  },
];

describe('new values are what the server reads and prints', () => {
  let client: WireClient;
  beforeAll(async () => {
    client = await WireClient.connect(cluster.port);
    await client.simple("SET TimeZone = 'UTC'");
  });
  afterAll(() => client.end());

  for (const t of TARGETS) {
    const typmod = t.typmod ?? -1;
    for (const paramFormat of FORMATS) {
      it(`${t.cast} sent in ${fmtName(paramFormat)}`, async () => {
        for (const nv of t.values) {
          const param = encodeValue(nv.value, { oid: t.oid, typmod, format: paramFormat });
          for (const resultFormat of FORMATS) {
            const type: ColumnType = { oid: t.oid, typmod, format: resultFormat };
            const { field, raw } = await client.scalar(`SELECT $1::${t.cast}`, resultFormat, [{ value: param, format: paramFormat, oid: t.oid }]);
            expect(field.oid).toBe(t.oid);
            expect(field.typmod).toBe(typmod);
            const what = `${String(nv.value)} sent in ${fmtName(paramFormat)}, read in ${fmtName(resultFormat)}`;
            const means = nv.means !== undefined ? nv.means : nv.value;
            // The server prints exactly what the codec produces for the value it means.
            expect(raw?.toString('hex'), what).toBe(encodeValue(means, type)?.toString('hex'));
            const decoded = decodeValue(raw, type);
            if (typeof means === 'number') expect(Object.is(decoded, means), `${what}: ${String(decoded)}`).toBe(true);
            else expect(decoded, what).toEqual(means);
          }
        }
      });
    }
  }

  it('covers every supported type', () => {
    const tested = new Set(TARGETS.map((t) => t.oid));
    for (const oid of TYPE_NAMES.keys()) expect(tested.has(oid), TYPE_NAMES.get(oid)).toBe(true);
  });
});
