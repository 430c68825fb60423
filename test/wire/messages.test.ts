import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import {
  decodeBind, decodeBindHead, decodeCancel, decodeCopyFail, decodeExecute, decodeParse, decodeQuery, decodeStartup,
  decodeTarget, encodeBindHead, encodeCancel, encodeParse, encodeQuery, encodeSimple, encodeSSLRequest, encodeStartup,
  encodeTarget, type ParseMessage,
} from '../../proxy/wire/frontend-messages.js';
import {
  authenticationOk, backendKeyData, commandComplete, copyInResponse, dataRow, emptyQueryResponse, errorResponse,
  notificationResponse, parameterStatus, readyForQuery, rowDescription, textResult, type FieldDescription,
} from '../../proxy/wire/backend-messages.js';
import {
  decodeBackendKeyData, decodeCommandComplete, decodeErrorResponse, decodeNotificationResponse, decodeParameterStatus, decodeReadyForQuery, decodeRowDescription,
} from '../../proxy/wire/backend-decoders.js';
import { wholeFrames } from '../../proxy/wire/server-scanner.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';

/** One DataRow's values, as the session reads them. */
const decodeDataRow = (raw: Buffer): (Buffer | null)[] => RowBatch.fromFrames([raw]).values()[0]!;
import { Frontend } from '../../proxy/wire/codes.js';
import { PgError } from '../../proxy/errors.js';
import { fieldArbitrary, expectProtocolViolation } from './helpers.js';

/** Decode server→client bytes with pg-protocol's own parser, an independent implementation. */
function pgParse(...bufs: Buffer[]): BackendMessage[] {
  const parser = new Parser();
  const out: BackendMessage[] = [];
  parser.parse(Buffer.concat(bufs), (m) => out.push(m));
  return out;
}

/** Check a typed message's header: its code and a length that matches its size. */
function expectTyped(raw: Buffer, code: number): void {
  expect(raw[0]).toBe(code);
  expect(raw.readInt32BE(1)).toBe(raw.length - 1);
}

const cstr = fc.string({ maxLength: 30 }).map((s) => s.replace(/\0/g, ''));

describe('frontend messages', () => {
  it('decodeParse reads what pg-protocol serializes, and encodeParse writes the same bytes', () => {
    const cases: ParseMessage[] = [
      { name: '', text: 'SELECT 1', paramTypes: [] },
      { name: 's1', text: 'SELECT $1::int4, $2::text', paramTypes: [23, 25] },
      { name: 'ünï', text: "SELECT 'héllo ✓', $1", paramTypes: [0] },
    ];
    for (const m of cases) {
      const wire = serialize.parse({ name: m.name, text: m.text, types: [...m.paramTypes] });
      expect(decodeParse(wire)).toEqual(m);
      const mine = encodeParse(m);
      expectTyped(mine, Frontend.Parse);
      expect(mine.toString('hex')).toBe(wire.toString('hex'));
    }
  });

  it('encodeParse/decodeParse round-trip, including OIDs above 2^31', () => {
    fc.assert(
      fc.property(cstr, cstr, fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 10 }), (name, text, paramTypes) => {
        const raw = encodeParse({ name, text, paramTypes });
        expectTyped(raw, Frontend.Parse);
        expect(decodeParse(raw)).toEqual({ name, text, paramTypes });
      }),
    );
  });

  it('decodeParse of a truncated message is a protocol violation', () => {
    const raw = serialize.parse({ name: 's', text: 'SELECT $1', types: [23] });
    expectProtocolViolation(() => decodeParse(raw.subarray(0, raw.length - 2)));
    expectProtocolViolation(() => decodeParse(raw.subarray(0, 8))); // name read, text has no terminator
  });

  it('decodeBindHead splits off the names and encodeBindHead puts them back byte for byte', () => {
    const wire = serialize.bind({ portal: 'p1', statement: 's1', values: ['a', null, Buffer.from([1, 2])], binary: true });
    const head = decodeBindHead(wire);
    expect(head.portal).toBe('p1');
    expect(head.statement).toBe('s1');
    expect(head.rest.length).toBe(wire.length - 5 - 3 - 3);
    expect(encodeBindHead(head).toString('hex')).toBe(wire.toString('hex'));
    // Renaming the statement keeps the rest intact and fixes the length.
    const renamed = encodeBindHead({ ...head, statement: 'proxy_stmt_42' });
    expectTyped(renamed, Frontend.Bind);
    expect(decodeBind(renamed)).toEqual({ ...decodeBind(wire), statement: 'proxy_stmt_42', rest: head.rest });
  });

  it('decodeBind reads text, binary and NULL parameters and result formats from serialize.bind', () => {
    const bin = Buffer.from([0x00, 0xff, 0x10]);
    const wire = serialize.bind({
      portal: '',
      statement: 'stmt',
      values: ['42', 'héllo', null, bin, '', Buffer.alloc(0)],
      binary: true,
    });
    const b = decodeBind(wire);
    expect(b.portal).toBe('');
    expect(b.statement).toBe('stmt');
    expect(b.paramFormats).toEqual([0, 0, 0, 1, 0, 1]);
    expect(b.params.map((p) => (p === null ? null : p.toString('hex')))).toEqual([
      Buffer.from('42').toString('hex'),
      Buffer.from('héllo').toString('hex'),
      null,
      bin.toString('hex'),
      '',
      '',
    ]);
    expect(b.resultFormats).toEqual([1]);

    const text = decodeBind(serialize.bind({ values: ['x'] }));
    expect(text).toMatchObject({ portal: '', statement: '', paramFormats: [0], resultFormats: [0] });
    expect(text.params.map((p) => p?.toString())).toEqual(['x']);

    const none = decodeBind(serialize.bind());
    expect(none).toMatchObject({ paramFormats: [], params: [], resultFormats: [0] });
  });

  it('decodeBind matches arbitrary serialize.bind inputs', () => {
    const value = fc.oneof(cstr, fc.constant(null), fc.uint8Array({ maxLength: 20 }).map((u) => Buffer.from(u)));
    fc.assert(
      fc.property(cstr, cstr, fc.array(value, { maxLength: 8 }), fc.boolean(), (portal, statement, values, binary) => {
        const b = decodeBind(serialize.bind({ portal, statement, values, binary }));
        expect(b.portal).toBe(portal);
        expect(b.statement).toBe(statement);
        expect(b.paramFormats).toEqual(values.map((v) => (Buffer.isBuffer(v) ? 1 : 0)));
        expect(b.params.map((p) => (p === null ? null : p.toString('hex')))).toEqual(
          values.map((v) => (v === null ? null : Buffer.isBuffer(v) ? v.toString('hex') : Buffer.from(v).toString('hex'))),
        );
        expect(b.resultFormats).toEqual([binary ? 1 : 0]);
      }),
    );
  });

  it('decodeBind of a Bind whose value runs past the end is a protocol violation', () => {
    const wire = Buffer.from(serialize.bind({ values: ['abcdef'] }));
    // Value length field sits after: code(1) len(4) portal(1) stmt(1) nfmt(2) fmt(2) nparams(2).
    wire.writeInt32BE(1000, 13);
    expectProtocolViolation(() => decodeBind(wire));
  });

  it('decodeTarget/encodeTarget for Describe and Close, statement and portal', () => {
    for (const type of ['S', 'P'] as const) {
      for (const name of ['', 's1', 'ñame']) {
        const d = serialize.describe({ type, name });
        expect(decodeTarget(d)).toEqual({ target: type, name });
        expect(encodeTarget(Frontend.Describe, { target: type, name }).toString('hex')).toBe(d.toString('hex'));
        const c = serialize.close({ type, name });
        expect(decodeTarget(c)).toEqual({ target: type, name });
        expect(encodeTarget(Frontend.Close, { target: type, name }).toString('hex')).toBe(c.toString('hex'));
      }
    }
  });

  it('decodeStartup reads serialize.startup in order; encodeStartup writes the same bytes', () => {
    const opts = { user: 'alice', database: 'db', application_name: 'wire ✓', options: '-c search_path=x' };
    const wire = serialize.startup(opts);
    const s = decodeStartup(wire);
    expect(s.protocol).toBe(196608);
    expect([...s.params]).toEqual([...Object.entries(opts), ['client_encoding', 'UTF8']]);
    const mine = encodeStartup(s.params);
    expect(mine.readInt32BE(0)).toBe(mine.length);
    expect(mine.toString('hex')).toBe(wire.toString('hex'));
  });

  it('encodeStartup/decodeStartup round-trip with any protocol and non-empty parameter names', () => {
    const params = fc.uniqueArray(fc.tuple(cstr.filter((k) => k !== ''), cstr), { selector: ([k]) => k, maxLength: 8 });
    fc.assert(
      fc.property(params, fc.integer(), (entries, protocol) => {
        const raw = encodeStartup(new Map(entries), protocol);
        expect(raw.readInt32BE(0)).toBe(raw.length);
        const s = decodeStartup(raw);
        expect(s.protocol).toBe(protocol);
        expect([...s.params]).toEqual(entries);
      }),
    );
  });

  it('decodeCancel/encodeCancel against serialize.cancel, including negative keys', () => {
    for (const [pid, secret] of [[1, 2], [4242, -123456789], [2147483647, -2147483648]] as const) {
      const wire = serialize.cancel(pid, secret);
      expect(decodeCancel(wire)).toEqual({ pid, secret });
      const mine = encodeCancel(pid, secret);
      expect(mine.toString('hex')).toBe(wire.toString('hex'));
      expect(mine.readInt32BE(0)).toBe(16);
      expect(mine.readInt32BE(4)).toBe(80877102);
    }
  });

  it('encodeSSLRequest matches serialize.requestSsl', () => {
    expect(encodeSSLRequest().toString('hex')).toBe(serialize.requestSsl().toString('hex'));
  });

  it('Query, Execute, CopyFail and the body-less messages match pg-protocol', () => {
    for (const text of ['', 'SELECT 1', "SELECT 'ü'"]) {
      expect(encodeQuery(text).toString('hex')).toBe(serialize.query(text).toString('hex'));
      expect(decodeQuery(serialize.query(text))).toBe(text);
    }
    expect(decodeExecute(serialize.execute({ portal: 'p9', rows: 250 }))).toEqual({ portal: 'p9', maxRows: 250 });
    expect(decodeExecute(serialize.execute())).toEqual({ portal: '', maxRows: 0 });
    expect(decodeCopyFail(serialize.copyFail('no more'))).toBe('no more');
    expect(encodeSimple(Frontend.Sync).toString('hex')).toBe(serialize.sync().toString('hex'));
    expect(encodeSimple(Frontend.Flush).toString('hex')).toBe(serialize.flush().toString('hex'));
    expect(encodeSimple(Frontend.Terminate).toString('hex')).toBe(serialize.end().toString('hex'));
    expect(encodeSimple(Frontend.CopyDone).toString('hex')).toBe(serialize.copyDone().toString('hex'));
  });

  it('decodeQuery without a terminator is a protocol violation', () => {
    const raw = serialize.query('SELECT 1');
    expectProtocolViolation(() => decodeQuery(raw.subarray(0, raw.length - 1)));
  });
});

describe('backend messages', () => {
  it('errorResponse carries severity, SQLSTATE, message, detail, hint and position', () => {
    const err = new PgError('42501', 'permission denied for table t', 'ERROR', { detail: 'd ✓', hint: 'ask', position: 17 });
    const raw = errorResponse(err);
    expectTyped(raw, 0x45);
    expect(raw[raw.length - 1]).toBe(0);
    const [msg] = pgParse(raw);
    expect(msg).toMatchObject({
      name: 'error',
      severity: 'ERROR',
      code: '42501',
      message: 'permission denied for table t',
      detail: 'd ✓',
      hint: 'ask',
      position: '17',
    });

    // Raw field walk: exactly S, V, C, M, D, H, P in that order.
    const codes: string[] = [];
    let off = 5;
    while (raw[off] !== 0) {
      codes.push(String.fromCharCode(raw[off]!));
      off = raw.indexOf(0, off + 1) + 1;
    }
    expect(codes).toEqual(['S', 'V', 'C', 'M', 'D', 'H', 'P']);
    expect(off).toBe(raw.length - 1);
  });

  it('errorResponse omits absent optional fields; notice=true makes a NoticeResponse', () => {
    const fatal = new PgError('08P01', 'bad', 'FATAL');
    const raw = errorResponse(fatal);
    const [msg] = pgParse(raw);
    expect(msg).toMatchObject({ name: 'error', severity: 'FATAL', code: '08P01', message: 'bad' });
    expect(msg).toMatchObject({ detail: undefined, hint: undefined, position: undefined });

    const notice = errorResponse(new PgError('01000', 'heads up', 'WARNING', { hint: 'h' }), true);
    expectTyped(notice, 0x4e);
    expect(pgParse(notice)[0]).toMatchObject({ name: 'notice', severity: 'WARNING', code: '01000', message: 'heads up', hint: 'h' });
  });

  it('rowDescription and dataRow decode back through decodeRowDescription/decodeDataRow and through pg-protocol', () => {
    const fields: FieldDescription[] = [
      { name: 'id', tableID: 16384, columnID: 1, dataTypeID: 23, dataTypeSize: 4, dataTypeModifier: -1, format: 0 },
      { name: 'blob ✓', tableID: 4294967295, columnID: -7, dataTypeID: 3000000000, dataTypeSize: -1, dataTypeModifier: 65540, format: 1 },
      { name: '', tableID: 0, columnID: 0, dataTypeID: 25, dataTypeSize: -2, dataTypeModifier: -1, format: 0 },
    ];
    const rd = rowDescription(fields);
    expectTyped(rd, 0x54);
    expect(decodeRowDescription(rd)).toEqual(fields);
    const [parsed] = pgParse(rd);
    expect(parsed).toMatchObject({ name: 'rowDescription', fieldCount: 3 });
    const pgFields = (parsed as unknown as { fields: { name: string; tableID: number; dataTypeID: number; format: string }[] }).fields;
    expect(pgFields.map((f) => [f.name, f.tableID, f.dataTypeID, f.format])).toEqual([
      ['id', 16384, 23, 'text'],
      ['blob ✓', 4294967295, 3000000000, 'binary'],
      ['', 0, 25, 'text'],
    ]);

    const values = [Buffer.from('1'), null, Buffer.alloc(0), Buffer.from([0, 0xff])];
    const dr = dataRow(values);
    expectTyped(dr, 0x44);
    expect(decodeDataRow(dr).map((v) => (v === null ? null : v.toString('hex')))).toEqual(['31', null, '', '00ff']);
    expect(pgParse(dr)[0]).toMatchObject({ name: 'dataRow', fieldCount: 4 });
  });

  it('rowDescription/dataRow round-trip for arbitrary fields and values', () => {
    const field = fieldArbitrary(30);
    fc.assert(
      fc.property(fc.array(field, { maxLength: 10 }), (fields) => {
        expect(decodeRowDescription(rowDescription(fields))).toEqual(fields);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }), { maxLength: 12 }), (values) => {
        const decoded = decodeDataRow(dataRow(values));
        expect(decoded.map((v) => (v === null ? null : v.toString('hex')))).toEqual(
          values.map((v) => (v === null ? null : Buffer.from(v).toString('hex'))),
        );
      }),
    );
  });

  it('decodeDataRow of a column running past the end is a protocol violation', () => {
    const dr = Buffer.from(dataRow([Buffer.from('abc')]));
    dr.writeInt32BE(10, 7); // column length 10, only 3 bytes follow
    expectProtocolViolation(() => decodeDataRow(dr));
  });

  it('the other encoders produce what pg-protocol parses', () => {
    const msgs = pgParse(
      readyForQuery('T'),
      authenticationOk(),
      parameterStatus('TimeZone', 'UTC'),
      backendKeyData(77, -88),
      commandComplete('UPDATE 3'),
      emptyQueryResponse(),
      notificationResponse(99, 'chan', 'payload ✓'),
      copyInResponse(1, 3),
    );
    expect(msgs).toMatchObject([
      { name: 'readyForQuery', status: 'T' },
      { name: 'authenticationOk' },
      { name: 'parameterStatus', parameterName: 'TimeZone', parameterValue: 'UTC' },
      { name: 'backendKeyData', processID: 77, secretKey: -88 },
      { name: 'commandComplete', text: 'UPDATE 3' },
      { name: 'emptyQuery' },
      { name: 'notification', processId: 99, channel: 'chan', payload: 'payload ✓' },
      { name: 'copyInResponse', binary: true, columnTypes: [1, 1, 1] },
    ]);
    expect(readyForQuery('I').toString('hex')).toBe('5a0000000549');
    expect(authenticationOk().toString('hex')).toBe('520000000800000000');
  });

  it('textResult is a RowDescription of text columns, the rows, and a CommandComplete', () => {
    const parts = textResult(['a', 'b'], [['1', null], ['x', 'y']], 'SELECT 2');
    expect(parts.map((p) => String.fromCharCode(p[0]!))).toEqual(['T', 'D', 'D', 'C']);
    expect(decodeRowDescription(parts[0]!).map((f) => [f.name, f.dataTypeID, f.format])).toEqual([['a', 25, 0], ['b', 25, 0]]);
    expect(decodeDataRow(parts[1]!).map((v) => v?.toString() ?? null)).toEqual(['1', null]);
    expect(decodeDataRow(parts[2]!).map((v) => v?.toString() ?? null)).toEqual(['x', 'y']);
    expect(pgParse(parts[3]!)[0]).toMatchObject({ name: 'commandComplete', text: 'SELECT 2' });
  });
});

describe('backend decoders (one per message kind, shared by the session, the embedded upstream and the tests)', () => {
  it('decode what the encoders make', () => {
    const err = new PgError('42P01', 'relation "x" does not exist', 'ERROR', { detail: 'd', hint: 'h', position: 15 });
    const back = decodeErrorResponse(errorResponse(err));
    expect(back).toMatchObject({ code: '42P01', message: 'relation "x" does not exist', severity: 'ERROR', fields: { detail: 'd', hint: 'h', position: 15 } });
    expect(decodeErrorResponse(errorResponse(new PgError('57P01', 'bye', 'FATAL'))).fatal).toBe(true);
    expect(decodeReadyForQuery(readyForQuery('T'))).toBe('T');
    expect(decodeCommandComplete(commandComplete('SELECT 3'))).toBe('SELECT 3');
    expect(decodeParameterStatus(parameterStatus('TimeZone', 'UTC'))).toEqual({ name: 'TimeZone', value: 'UTC' });
    expect(decodeBackendKeyData(backendKeyData(42, -7))).toEqual({ pid: 42, secret: -7 });
    expect(decodeNotificationResponse(notificationResponse(7, 'ch', 'hi'))).toEqual({ pid: 7, channel: 'ch', payload: 'hi' });
  });

  it('read the severity from V, which is not localised, before S', () => {
    // S (localised) first, then V, as a server with lc_messages = 'de_DE' sends them.
    const body = Buffer.from('SFEHLER\0VFATAL\0C08006\0Mx\0\0', 'latin1');
    const head = Buffer.alloc(5);
    head[0] = 0x45;
    head.writeInt32BE(body.length + 4, 1);
    expect(decodeErrorResponse(Buffer.concat([head, body])).severity).toBe('FATAL');
  });

  it('refuse a message shorter than its contents with 08P01', () => {
    const raw = errorResponse(new PgError('42601', 'syntax error'));
    expectProtocolViolation(() => decodeErrorResponse(raw.subarray(0, 12)));
    expectProtocolViolation(() => decodeRowDescription(rowDescription([{ name: 'a', tableID: 1, columnID: 1, dataTypeID: 25, dataTypeSize: -1, dataTypeModifier: -1, format: 0 }]).subarray(0, 12)));
  });

  it('wholeFrames frames a buffer of whole messages as views, and refuses one cut short', () => {
    const all = Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]);
    const frames = wholeFrames(all);
    expect(frames.map((f) => f.code)).toEqual([0x43, 0x5a]);
    expect(frames[1]!.raw.buffer).toBe(all.buffer);
    expectProtocolViolation(() => wholeFrames(all.subarray(0, all.length - 1)));
  });
});
