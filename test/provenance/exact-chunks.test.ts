/**
 * Where a chunk of a portal fetched in chunks is recorded to sit (exact-statement.ts,
 * portal-chunks.ts): a first Execute that read the whole result is the statement's result, later
 * chunks carry their index, the rows before them and the portal's first moment, and a chunk
 * whose predecessor was never recorded is refused (where it starts is not known), which the
 * replay answers with 409.
 */
import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import type { StatementTrace } from '../../plugins/hooks.js';
import { exactStatementOf } from '../../plugins/provenance/exact-statement.js';

const TEXT = 'select id from t where id > $1';
const SHAPE = { statements: 1, operation: 'SELECT' };
const OPTS = { limit: 65_536 };

function execute(bind: Buffer, chunk: number, maxRows: number, startedAt = 1_700_000_000_000.25): StatementTrace {
  return {
    text: TEXT, protocol: 'extended', startedAt, errorCode: null, ended: true, pluginState: new Map(),
    binding: { paramTypes: [23], bind, maxRows, chunk },
  };
}

const portal = (): Buffer => serialize.bind({ portal: 'p', statement: 's', values: ['7'] });

describe('exact statements of a portal fetched in chunks', () => {
  it('records a first Execute that read every row as the statement\'s whole result', () => {
    const b = portal();
    expect(exactStatementOf(execute(b, 0, 0), SHAPE, 12, OPTS)).toMatchObject({
      exact_text: TEXT, exact_values: [`\\x${Buffer.from('7').toString('hex')}`], exact_refusal: null,
      exact_chunk: null, exact_offset: null, exact_portal_at: null,
    });
    // A limit the result did not reach: the same.
    expect(exactStatementOf(execute(portal(), 0, 50), SHAPE, 12, OPTS)).toMatchObject({ exact_refusal: null, exact_chunk: null });
  });

  it('places each chunk after the rows of the chunks before it, at the moment of the portal\'s first Execute', () => {
    const b = portal();
    const first = exactStatementOf(execute(b, 0, 10, 1_700_000_000_000.25), SHAPE, 10, OPTS);
    expect(first).toMatchObject({ exact_chunk: 0, exact_offset: 0, exact_portal_at: '2023-11-14T22:13:20.000250Z', exact_refusal: null });
    expect(exactStatementOf(execute(b, 1, 10, 1_700_000_000_900), SHAPE, 10, OPTS)).toMatchObject({
      exact_chunk: 1, exact_offset: 10, exact_portal_at: '2023-11-14T22:13:20.000250Z',
    });
    expect(exactStatementOf(execute(b, 2, 0, 1_700_000_001_000), SHAPE, 3, OPTS)).toMatchObject({ exact_chunk: 2, exact_offset: 20 });
  });

  it('refuses a chunk whose predecessor was not recorded, and one of a portal whose first chunk was not', () => {
    const b = portal();
    exactStatementOf(execute(b, 0, 10), SHAPE, 10, OPTS);
    // Chunk 1 went unrecorded: chunk 2 cannot say where it starts.
    const after = exactStatementOf(execute(b, 2, 10), SHAPE, 10, OPTS);
    expect(after).toMatchObject({ exact_text: null, exact_chunk: null });
    expect(after.exact_refusal).toMatch(/a chunk before it was not recorded: where it starts is not known/);
    const unseen = exactStatementOf(execute(portal(), 1, 10), SHAPE, 10, OPTS);
    expect(unseen.exact_refusal).toMatch(/a chunk before it was not recorded/);
  });
});
