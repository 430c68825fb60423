/**
 * A batch of execution records split into the parts executions share and their own fields: each
 * kind of part deduplicated on its own (point lookups whose exact statements differ, a literal key
 * each, share their transform, context and statement), in time linear in the batch.
 */
import { describe, expect, it } from 'vitest';
import { splitRecords, type ExecutionRecord } from '../../plugins/provenance/execution-insert.js';

const BASE: Omit<ExecutionRecord, 'id' | 'session_id'> = {
  result_id: 'r', parent_id: null, chain_end: true, transform_name: 'mask', transform_version: 1, function_hash: 'f', table_oid: 1,
  table_name: 'people', columns: ['email'], input_hash: 'a', output_hash: 'b', rows_in: 1, rows_out: 1, executed_at: '2024-01-01T00:00:00Z',
  duration_ms: 0.1, client_addr: '127.0.0.1', client_port: 1, user_name: 'u', current_role_name: 'u', roles: ['u'], database: 'd',
  application_name: 'a', statement_fingerprint: 'fp', statement_text: 'SELECT email FROM people WHERE id = $1', params: {}, kind: 'read',
  outcome: 'complete', error: null, trace_id: 't', span_id: 's', proxy_id: 'p', statement_at: '2024-01-01T00:00:00Z', exact_text: null,
  exact_types: [], exact_formats: [], exact_values: [], exact_refusal: null, exact_query_statement: null, exact_query_statements: null,
};

function lookups(n: number, text: (i: number) => string, values: (i: number) => string[] = () => []): ExecutionRecord[] {
  return Array.from({ length: n }, (_, i) => ({ ...BASE, id: String(i), session_id: `s${i % 8}`, exact_text: text(i), exact_values: values(i) }));
}

/** How many fields of the records splitting them reads. */
function reads(records: readonly ExecutionRecord[]): number {
  let n = 0;
  const counted = records.map((r) => new Proxy(r, { get: (t, k, recv) => (n++, Reflect.get(t, k, recv) as unknown) }));
  splitRecords(counted);
  return n;
}

describe('splitting records', () => {
  it('stores each distinct part once: one transform and statement, a context per session, each distinct exact statement', () => {
    const one = splitRecords(lookups(40, () => 'SELECT email FROM people WHERE id = $1'));
    expect([one.parts.t.length, one.parts.x.length, one.parts.s.length, one.parts.q.length]).toEqual([1, 8, 1, 1]);
    expect(splitRecords(lookups(40, () => 'SELECT email FROM people WHERE id = $1', (i) => [`\\x0${i % 3}`])).parts.q).toHaveLength(3);
    const split = splitRecords(lookups(40, (i) => `SELECT email FROM people WHERE id = ${i}`));
    expect([split.parts.t.length, split.parts.x.length, split.parts.s.length, split.parts.q.length]).toEqual([1, 8, 1, 40]);
    expect(split.own.map((o) => o['q'])).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(split.own.map((o) => o['x'])).toEqual(Array.from({ length: 40 }, (_, i) => i % 8));
    expect(split.parts.q.map((s) => s['exact_text'])).toEqual(Array.from({ length: 40 }, (_, i) => `SELECT email FROM people WHERE id = ${i}`));
    expect(split.parts.x.map((s) => s['session_id'])).toEqual(Array.from({ length: 8 }, (_, i) => `s${i}`));
  });

  it('names no exact statement for a record without one', () => {
    const split = splitRecords(lookups(4, () => 'x').map((r) => ({ ...r, exact_text: undefined, exact_types: undefined, exact_formats: undefined, exact_values: undefined, exact_refusal: undefined })));
    expect(split.parts.q).toHaveLength(0);
    expect(split.own.map((o) => o['q'])).toEqual([null, null, null, null]);
  });

  it('reads each record a bounded number of times, however many lookups of one session the batch holds', () => {
    const small = reads(lookups(250, (i) => `SELECT email FROM people WHERE id = ${i}`));
    const large = reads(lookups(1000, (i) => `SELECT email FROM people WHERE id = ${i}`));
    expect(large / small).toBeLessThan(4.5);
  });
});
