/**
 * Valid frontend messages of every kind, and the ways a broken or hostile client mangles them,
 * for tests that feed malformed input to a running proxy.
 */
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import type { Plugin } from '../../plugins/hooks.js';

/** FunctionCall ('F'): Int32 function OID, argument formats, arguments, result format. */
export function functionCall(oid: number, args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4), Buffer.from([0, 0])];
  parts[0]!.writeUInt32BE(oid);
  const n = Buffer.alloc(2);
  n.writeInt16BE(args.length);
  parts.push(n);
  for (const a of args) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(a.length);
    parts.push(len, a);
  }
  parts.push(Buffer.from([0, 0]));
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head[0] = 0x46;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** One of every frontend message a client may send after login, each valid on its own. */
export const AFTER_LOGIN: readonly Buffer[] = [
  serialize.query('select 1'),
  serialize.query('select $$copy$$ as c'),
  serialize.query('show provenance.fuzz'),
  serialize.parse({ name: 's1', text: 'select $1::int as shout', types: [23] }),
  serialize.parse({ text: 'select 2 as shout' }),
  serialize.bind({ portal: 'p1', statement: 's1', values: ['7'] }),
  serialize.bind({ values: [] }),
  serialize.bind({ portal: 'p1', statement: 's1', values: [Buffer.from([0, 0, 0, 7])], binary: true }),
  serialize.describe({ type: 'S', name: 's1' }),
  serialize.describe({ type: 'P', name: 'p1' }),
  serialize.describe({ type: 'P', name: '' }),
  serialize.execute({ portal: 'p1', rows: 1 }),
  serialize.execute({}),
  serialize.close({ type: 'S', name: 's1' }),
  serialize.close({ type: 'P', name: 'p1' }),
  serialize.sync(),
  serialize.flush(),
  functionCall(1299, []),
  serialize.copyData(Buffer.from('1\tx\n')),
  serialize.copyDone(),
  serialize.copyFail('stop'),
  serialize.password('secret'),
  serialize.end(),
];

/** Startup-phase packets: what a client sends before a session exists. */
export const BEFORE_LOGIN: readonly Buffer[] = [
  serialize.startup({ user: 'postgres', database: 'postgres' }),
  serialize.requestSsl(),
  serialize.cancel(1234, 5678),
  Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]), // GSSENCRequest
];

/** Messages of a login exchange (password, SASL), sent in place of what the server asks for. */
export const DURING_LOGIN: readonly Buffer[] = [
  serialize.password('wrong'),
  serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abcdefghijklmnop'),
  serialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=AAAA'),
];

export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'cutBody'; msg: number; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'length'; msg: number; len: number }
  | { kind: 'dropNul'; msg: number; nth: number; fixLength: boolean }
  | { kind: 'empty'; msg: number }
  | { kind: 'extend'; msg: number; bytes: Uint8Array }
  | { kind: 'code'; msg: number; code: number };

/** Weighted toward what breaks decoders while the framing stays whole: cut bodies and dropped NULs. */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('cutBody' as const), msg: fc.nat(), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('length' as const), msg: fc.nat(),
      len: fc.oneof(fc.integer({ min: -8, max: 64 }), fc.integer({ min: -0x80000000, max: 0x7fffffff })),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('dropNul' as const), msg: fc.nat(), nth: fc.nat(), fixLength: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('empty' as const), msg: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), msg: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('code' as const), msg: fc.nat(), code: fc.integer({ min: 0, max: 255 }) }) },
);

/** Where the length field of a message starts: after the code byte, or at 0 for startup packets. */
function lengthAt(m: Buffer, typed: boolean): number {
  return typed && m.length >= 5 ? 1 : 0;
}

function withLength(m: Buffer, typed: boolean): Buffer {
  const at = lengthAt(m, typed);
  if (m.length >= at + 4) m.writeInt32BE(m.length - at, at);
  return m;
}

/** Apply mutations in order to a list of messages; returns the bytes to send. */
export function mutate(messages: readonly Buffer[], mutations: readonly Mutation[], typed: boolean): Buffer {
  let msgs: Buffer[] = messages.map((m) => Buffer.from(m));
  let tail: Buffer | null = null;
  for (const mu of mutations) {
    if (msgs.length === 0) break;
    const i = 'msg' in mu ? mu.msg % msgs.length : 0;
    const m = msgs[i]!;
    const head = typed ? 5 : 4;
    switch (mu.kind) {
      case 'truncate': {
        const all = Buffer.concat(msgs);
        tail = all.subarray(0, mu.at % (all.length + 1));
        msgs = [];
        break;
      }
      case 'cutBody':
        msgs[i] = withLength(m.subarray(0, Math.min(m.length, head + (mu.at % Math.max(1, m.length - head + 1)))), typed);
        break;
      case 'flip': {
        const all = Buffer.concat(msgs);
        if (all.length > 0) all[mu.at % all.length]! ^= 1 << mu.bit;
        msgs = [all];
        break;
      }
      case 'length':
        if (m.length >= lengthAt(m, typed) + 4) m.writeInt32BE(mu.len, lengthAt(m, typed));
        break;
      case 'dropNul': {
        const nuls: number[] = [];
        for (let j = head; j < m.length; j++) if (m[j] === 0) nuls.push(j);
        if (nuls.length === 0) break;
        const at = nuls[mu.nth % nuls.length]!;
        const out = Buffer.concat([m.subarray(0, at), m.subarray(at + 1)]);
        msgs[i] = mu.fixLength ? withLength(out, typed) : out;
        break;
      }
      case 'empty':
        msgs[i] = withLength(m.subarray(0, Math.min(m.length, head)), typed);
        break;
      case 'extend':
        msgs[i] = withLength(Buffer.concat([m, mu.bytes]), typed);
        break;
      case 'code':
        if (typed) m[0] = mu.code;
        break;
    }
  }
  return tail ?? Buffer.concat(msgs);
}

/** A plugin with every hook that makes the session decode client messages, each passing. */
export function decodingPlugin(): Plugin {
  return {
    name: 'decode-everything',
    statement: () => ({ action: 'pass' }),
    rowDescription: (_s, r) => (r.fields.some((f) => f.name === 'shout') ? { action: 'watch' } : { action: 'pass' }),
    dataRows: () => ({ action: 'pass' }),
    commandComplete: () => ({ action: 'pass' }),
    copyOut: () => null,
    statementStart: () => undefined,
    statementEnd: () => undefined,
    localCommand: (_s, text) => (/^\s*show\s+provenance\.fuzz/i.test(text) ? { columns: ['fuzz'], rows: [['ok']], tag: 'SHOW' } : null),
    localCommandKeywords: ['show'],
    unitWords: ['provenance.'],
  };
}
