/** What the as-of session tests share: moments taken from the database's clock, and refusals. */
import { expect } from 'vitest';
import type pg from 'pg';

/**
 * The database's clock now, as text: a moment after every write committed so far. Returns once
 * the clock has moved past it (PGlite's clock ticks in milliseconds), so the next write is later.
 */
export async function moment(c: pg.Client): Promise<string> {
  const m = (await c.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
  await new Promise((r) => setTimeout(r, 3));
  return m;
}

export async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string; hint?: string }> {
  const err = await p.then(() => null, (e: unknown) => e as { code: string; message: string; hint?: string });
  expect(err).not.toBeNull();
  return err!;
}
