/**
 * The documented limits of the identity round trip (why the caller keeps the original bytes of
 * values a transform did not change), and the shape of what decodeValue hands out.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CodecError, decodeValue, encodeValue, isSupportedType, TYPE_NAMES, type ColumnType } from '../../plugins/shared/codecs/codecs.js';
import { attachPgCluster } from '../support/pg-cluster.js';
import { WireClient } from './wire-client.js';

const cluster = attachPgCluster(inject('pg'));

let client: WireClient;
beforeAll(async () => {
  client = await WireClient.connect(cluster.port);
});
afterAll(() => client.end());

async function fetch(sql: string, format: 0 | 1): Promise<{ type: ColumnType; raw: Buffer | null }> {
  const { field, raw } = await client.scalar(sql, format);
  return { type: { oid: field.oid, typmod: field.typmod, format }, raw };
}

/** Whether the server considers two values equal, each sent as text of the type. */
async function serverEqual(cast: string, a: Buffer, b: Buffer): Promise<boolean> {
  const { raw } = await client.scalar(`SELECT $1::${cast} = $2::${cast}`, 0, [
    { value: a, format: 0 },
    { value: b, format: 0 },
  ]);
  return raw?.toString() === 't';
}

describe('json keeps its input text; the codec does not', () => {
  it('whitespace, key order and duplicate keys are not kept', async () => {
    const { type, raw } = await fetch(`SELECT '{ "b" : 1, "a" : [1, 2], "b" : 3 }'::json`, 0);
    expect(raw?.toString()).toBe('{ "b" : 1, "a" : [1, 2], "b" : 3 }');
    const value = decodeValue(raw, type);
    expect(value).toEqual({ b: 3, a: [1, 2] });
    const encoded = encodeValue(value, type)!;
    expect(encoded.toString()).toBe('{"b":3,"a":[1,2]}');
    // Same meaning as jsonb, which keeps the last duplicate.
    expect(await serverEqual('jsonb', encoded, raw!)).toBe(true);
  });

  it('jsonb numbers keep their scale on the server, not in JavaScript', async () => {
    const { type, raw } = await fetch(`SELECT '{"price": 1.50, "n": 100.0}'::jsonb`, 0);
    expect(raw?.toString()).toBe('{"n": 100.0, "price": 1.50}');
    const value = decodeValue(raw, type);
    expect(value).toEqual({ n: 100, price: 1.5 });
    const encoded = encodeValue(value, type)!;
    expect(encoded.toString()).toBe('{"n": 100, "price": 1.5}');
    expect(await serverEqual('jsonb', encoded, raw!)).toBe(true);
  });

  it('a top-level JSON null decodes to null, which encodes as SQL NULL', async () => {
    for (const format of [0, 1] as const) {
      const { type, raw } = await fetch(`SELECT 'null'::jsonb`, format);
      expect(raw).not.toBeNull();
      expect(decodeValue(raw, type)).toBeNull();
      expect(encodeValue(null, type)).toBeNull();
    }
    // Nested nulls are JSON nulls as usual.
    expect(encodeValue({ a: null }, { oid: 3802, typmod: -1, format: 0 })?.toString()).toBe('{"a": null}');
  });

  it('numbers a double cannot hold are refused rather than rounded', async () => {
    for (const [sql, token] of [
      [`SELECT '{"id": 12345678901234567890}'::jsonb`, '12345678901234567890'],
      [`SELECT '[1e400]'::json`, '1e400'],
      [`SELECT '0.1000000000000000000001'::jsonb`, '0.1000000000000000000001'],
      [`SELECT '{"big": 9007199254740993}'::json`, '9007199254740993'],
    ] as const) {
      for (const format of [0, 1] as const) {
        const { type, raw } = await fetch(sql, format);
        expect(() => decodeValue(raw, type)).toThrow(CodecError);
        expect(() => decodeValue(raw, type)).toThrow(`number ${token} cannot be represented exactly as a JavaScript number`);
      }
    }
  });

  it('numbers that only print differently are accepted', () => {
    const json = { oid: 114, typmod: -1, format: 0 } as const;
    expect(decodeValue(Buffer.from('[1.0, 1E2, 0.50, -0, 9007199254740992, 1e-7]'), json)).toEqual([1, 100, 0.5, -0, 9007199254740992, 1e-7]);
    expect(decodeValue(Buffer.from('{"s": "12345678901234567890 in a string"}'), json)).toEqual({ s: '12345678901234567890 in a string' });
  });
});

describe('other text forms that carry more than the value', () => {
  it('bytea in the escape format decodes to the same bytes and re-encodes as hex', async () => {
    const c = await WireClient.connect(cluster.port);
    try {
      await c.simple("SET bytea_output = 'escape'");
      const sql = "SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') FROM generate_series(0, 255) i";
      const { field, raw } = await c.scalar(sql, 0);
      expect(raw?.subarray(0, 8).toString()).toBe('\\000\\001');
      const type: ColumnType = { oid: field.oid, typmod: field.typmod, format: 0 };
      const value = decodeValue(raw, type);
      expect(value).toEqual(new Uint8Array(256).map((_, i) => i));
      expect(encodeValue(value, type)?.subarray(0, 6).toString()).toBe('\\x0001');
    } finally {
      c.end();
    }
  });

  it('a NaN the server computed may carry a sign bit that JavaScript does not keep', async () => {
    for (const [cast, nan] of [
      ['float8', ['7ff8000000000000', 'fff8000000000000']],
      ['float4', ['7fc00000', 'ffc00000']],
    ] as const) {
      // x86 produces the negative quiet NaN for Infinity - Infinity; other machines the positive.
      const { type, raw } = await fetch(`SELECT 'Infinity'::${cast} - 'Infinity'::${cast}`, 1);
      expect(nan).toContain(raw?.toString('hex'));
      expect(Number.isNaN(decodeValue(raw, type))).toBe(true);
      // The NaN of 'NaN' is the positive quiet NaN, and so is JavaScript's.
      const canonical = await fetch(`SELECT 'NaN'::${cast}`, 1);
      expect(canonical.raw?.toString('hex')).toBe(nan[0]);
      expect(encodeValue(NaN, type)?.toString('hex')).toBe(nan[0]);
    }
  });
});

describe('decoded values', () => {
  it('bytea is a plain Uint8Array copy, not a view of the DataRow', () => {
    const row = Buffer.from('xx\u0001\u0002\u0003yy', 'latin1');
    const field = row.subarray(2, 5);
    const value = decodeValue(field, { oid: 17, typmod: -1, format: 1 });
    expect(Object.getPrototypeOf(value)).toBe(Uint8Array.prototype);
    (value as Uint8Array)[0] = 0xff;
    expect(row[2]).toBe(1);
    const passThrough = decodeValue(field, { oid: 1186, typmod: -1, format: 1 }) as Uint8Array;
    passThrough[0] = 0xff;
    expect(row[2]).toBe(1);
  });

  it('encoding a bytea copies it', () => {
    const value = new Uint8Array([1, 2, 3]);
    const out = encodeValue(value, { oid: 17, typmod: -1, format: 1 })!;
    value[0] = 9;
    expect([...out]).toEqual([1, 2, 3]);
  });

  it('SQL NULL is null for every type and format', () => {
    for (const oid of [...TYPE_NAMES.keys(), 1186]) {
      for (const format of [0, 1] as const) {
        expect(decodeValue(null, { oid, typmod: -1, format })).toBeNull();
        expect(encodeValue(null, { oid, typmod: -1, format })).toBeNull();
      }
    }
  });

  it('TYPE_NAMES and isSupportedType list the supported types', () => {
    expect([...TYPE_NAMES]).toEqual([
      [16, 'bool'],
      [17, 'bytea'],
      [18, 'char'],
      [19, 'name'],
      [20, 'int8'],
      [21, 'int2'],
      [23, 'int4'],
      [25, 'text'],
      [26, 'oid'],
      [114, 'json'],
      [700, 'float4'],
      [701, 'float8'],
      [1042, 'bpchar'],
      [1043, 'varchar'],
      [1082, 'date'],
      [1083, 'time'],
      [1114, 'timestamp'],
      [1184, 'timestamptz'],
      [1700, 'numeric'],
      [2950, 'uuid'],
      [3802, 'jsonb'],
    ]);
    expect(isSupportedType(23)).toBe(true);
    expect(isSupportedType(1186)).toBe(false);
    expect(isSupportedType(1007)).toBe(false);
  });

  it('TYPE_NAMES agree with pg_type', async () => {
    const oids = [...TYPE_NAMES.keys()].join(',');
    const r = await client.query(`SELECT oid::int4, typname::text FROM pg_type WHERE oid IN (${oids}) ORDER BY oid`, [], 0);
    const fromServer = r.rows.map((row) => [Number(row[0]!.toString()), row[1]!.toString()]);
    expect(fromServer).toEqual([...TYPE_NAMES]);
  });
});
