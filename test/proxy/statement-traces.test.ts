/**
 * Statements tracked on the fast path: a Query's text is decoded only when a plugin reads it, yet
 * a Query that could not be decoded still ends its own connection only, where the proxy reads the
 * client's bytes, not later in a plugin's hook.
 */
import { expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import type { Plugin } from '../../plugins/hooks.js';
import { eachUpstream } from '../support/proxy-matrix.js';
import { RawClient, sqlstate } from '../support/raw-client.js';

/** The texts the statementEnd hook read, and how many statements ended. */
const seen: string[] = [];
let ended = 0;

function tracking(): readonly Plugin[] {
  return [
    { name: 'count-statements', statementEnd: () => void ended++ },
    { name: 'read-texts', statementEnd: (_s, t) => void seen.push(t.text) },
  ];
}

/** Typed message: code, Int32 length, body. */
function msg(code: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(code, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

eachUpstream('statement traces', (t) => {
  const user = (): string => (t().kind === 'postgres' ? 'trustuser' : 'postgres');

  it('gives a plugin that reads it the text of a Query, as the client wrote it', async () => {
    const c = await RawClient.connect(t().port, user());
    const before = ended;
    const text = "select 'Grüße, 世界' as greeting";
    c.write(serialize.query(text));
    expect((await c.untilReady()).map((m) => m.code).join('')).toBe('TDCZ');
    c.write(serialize.query('select 1; select 2'));
    expect((await c.untilReady()).map((m) => m.code).join('')).toBe('TDCTDCZ');
    c.end();
    expect(seen).toContain(text);
    expect(seen).toContain('select 1; select 2');
    expect(ended - before).toBeGreaterThanOrEqual(2);
  });

  it('ends only the connection of a Query without its terminating zero byte, with 08P01', async () => {
    const other = await RawClient.connect(t().port, user());
    const bad = await RawClient.connect(t().port, user());
    const count = seen.length;
    bad.write(Buffer.concat([msg('Q', Buffer.from('select 1')), serialize.query('select 2')]));
    const m = await bad.next();
    expect(m.code).toBe('E');
    expect(sqlstate(m.body)).toBe('08P01');
    bad.end();
    expect(seen.slice(count).some((s) => s.includes('select 1'))).toBe(false);
    other.write(serialize.query('select 3'));
    expect((await other.untilReady()).map((x) => x.code).join('')).toBe('TDCZ');
    other.end();
  });
}, tracking);
