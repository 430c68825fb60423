/**
 * The sandbox notes which context fields a batch read, whether it read the clock and whether it
 * drew a random number, inside the isolate: transform code can neither hide a read nor add one.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../sandbox/index.js';
import { column, row } from './support/batch.js';

const pool = new SandboxPool({ isolates: 1 });
afterAll(() => pool.close());

const CTX = { user: 'alice', roles: ['staff'], database: 'db', session_id: null, as_of: '2026-01-01T00:00:00.000Z' };

async function reads(source: string, kind: 'column' | 'row' = 'column'): Promise<{ ctx: string[]; clock: boolean; random: boolean }> {
  const batch = kind === 'column' ? column(source, ['a', 'b'], { ctx: CTX, reportReads: true }) : row(source, [{ x: 1 }], { ctx: CTX, reportReads: true });
  const res = await pool.run(batch);
  expect(res.reads).toBeDefined();
  return { ctx: [...res.reads!.ctx].sort(), clock: res.reads!.clock, random: res.reads!.random };
}

describe('context reads', () => {
  it('notes nothing for a transform that reads no context', async () => {
    expect(await reads('(v) => v + "!"')).toEqual({ ctx: [], clock: false, random: false });
  });

  it('notes each field read, however it is read', async () => {
    expect((await reads('(v, p, ctx) => ctx.user')).ctx).toEqual(['user']);
    expect((await reads('(v, p, ctx) => { const { roles } = ctx; return roles.join(","); }')).ctx).toEqual(['roles']);
    expect((await reads('(v, p, ctx) => Reflect.get(ctx, "database")')).ctx).toEqual(['database']);
    expect((await reads('(v, p, ctx) => String(Object.getOwnPropertyDescriptor(ctx, "as_of").value)')).ctx).toEqual(['as_of']);
    expect((await reads('(v, p, ctx) => "as_of" in ctx ? "replay" : "read"')).ctx).toEqual(['as_of']);
    expect((await reads('(v, p, ctx) => JSON.stringify(ctx)')).ctx).toEqual(Object.keys(CTX).sort());
    expect((await reads('(v, p, ctx) => Object.keys(ctx).length')).ctx).toEqual(Object.keys(CTX).sort());
    expect((await reads('(r, p, ctx) => ({ ...r, x: Object.assign({}, ctx).user.length })', 'row')).ctx).toEqual(Object.keys(CTX).sort());
  });

  it('notes a context handed back as output', async () => {
    expect((await reads('(v, p, ctx) => ctx')).ctx).toEqual(Object.keys(CTX).sort());
  });

  it('cannot be fooled by a transform that catches, redefines or proxies', async () => {
    expect((await reads('(v, p, ctx) => { try { Object.defineProperty(ctx, "user", { value: 1 }); } catch (e) {} return ctx.user; }')).ctx).toEqual(['user']);
    expect((await reads('(v, p, ctx) => { const q = new Proxy(ctx, {}); return q.user; }')).ctx).toEqual(['user']);
    // A field the context does not have reveals nothing and is not noted.
    expect((await reads('(v, p, ctx) => String(ctx.nothing) + String(ctx.__proto__ === Object.prototype)')).ctx).toEqual([]);
  });

  it('notes the clock and random draws', async () => {
    expect(await reads('(v) => String(Date.now())')).toMatchObject({ clock: true, random: false });
    expect(await reads('(v) => new Date().toISOString()')).toMatchObject({ clock: true });
    expect(await reads('(v) => new Date(0).toISOString()')).toMatchObject({ clock: false });
    expect(await reads('(v) => String(Math.random())')).toMatchObject({ random: true, clock: false });
  });

  it('reports them only when asked', async () => {
    expect((await pool.run(column('(v, p, ctx) => ctx.user', ['a'], { ctx: CTX }))).reads).toBeUndefined();
  });

  it('starts every batch afresh', async () => {
    await reads('(v, p, ctx) => ctx.user + Date.now() + Math.random()');
    expect(await reads('(v) => v')).toEqual({ ctx: [], clock: false, random: false });
  });

  it('reports the reads of a text column batch too', async () => {
    const res = await pool.run({ ...column('(v, p, ctx) => v + ctx.user', []), ctx: CTX, reportReads: true, items: { text: 'ab', lengths: Int32Array.from([1, 1]) } });
    expect(res.reads?.ctx).toEqual(['user']);
  });
});
