/**
 * Which statements a materialisation can answer as a replay would: a transformed column only as a
 * plain output column, the table in the top-level FROM (inner joins), and with a row transform
 * nothing but a list of its columns.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { servableShape } from '../../plugins/materialize/statement-shape.js';

let analyser: SqlAnalyser;
beforeAll(async () => {
  analyser = await SqlAnalyser.load();
});

const COLUMNS = new Set(['id', 'email', 'name']);

/** Whether the first reference to `customers` in the text is servable. */
function servable(text: string, transformed: ReadonlySet<string> | null = new Set(['email'])): boolean {
  const analysis = analyser.analyse(text);
  if (!analysis.ok) throw new Error(analysis.message);
  const location = Buffer.from(text, 'utf8').indexOf('customers');
  return servableShape(analysis.readings[0]!, { location, name: 'public.customers', transformed, columns: COLUMNS });
}

describe('statement shapes a materialisation serves', () => {
  it('serves transformed columns as plain outputs, whatever is done with the others', () => {
    expect(servable('SELECT id, email FROM customers')).toBe(true);
    expect(servable('SELECT * FROM customers c WHERE c.id < 10 ORDER BY name LIMIT 5')).toBe(true);
    expect(servable('SELECT c.*, count(*) OVER () FROM customers c')).toBe(true);
    expect(servable('SELECT count(*) FROM customers')).toBe(true);
    expect(servable('SELECT o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer')).toBe(true);
  });

  it('replays where a transformed value is used before it is output', () => {
    expect(servable("SELECT id FROM customers WHERE email LIKE '%x'")).toBe(false);
    expect(servable('SELECT upper(email) FROM customers')).toBe(false);
    expect(servable('SELECT id FROM customers ORDER BY email')).toBe(false);
    expect(servable('SELECT email FROM customers ORDER BY 1')).toBe(false);
    expect(servable('SELECT email AS e FROM customers ORDER BY e')).toBe(false);
    expect(servable('SELECT DISTINCT email FROM customers')).toBe(false);
    expect(servable('SELECT email, count(*) FROM customers GROUP BY email')).toBe(false);
    expect(servable('SELECT c FROM customers c')).toBe(false);
    expect(servable('SELECT row_to_json(c.*) FROM customers c')).toBe(false);
    expect(servable('SELECT o.total FROM orders o JOIN customers c ON c.email = o.email')).toBe(false);
  });

  it('replays a table that is not in the top-level FROM, or on the outer side of a join', () => {
    expect(servable('SELECT * FROM (SELECT id, email FROM customers) s')).toBe(false);
    expect(servable('SELECT id FROM orders WHERE customer IN (SELECT id FROM customers)')).toBe(false);
    expect(servable('SELECT o.total, c.email FROM orders o LEFT JOIN customers c ON c.id = o.customer')).toBe(false);
    expect(servable('SELECT id, email FROM customers UNION SELECT 1, 2')).toBe(false);
  });

  it('with a row transform, serves nothing but a list of the table\'s columns', () => {
    expect(servable('SELECT id, email, name FROM customers', null)).toBe(true);
    expect(servable('SELECT * FROM customers', null)).toBe(true);
    expect(servable('SELECT id FROM customers WHERE id < 3', null)).toBe(false);
    expect(servable('SELECT count(*) FROM customers', null)).toBe(false);
    expect(servable('SELECT id FROM customers LIMIT 3', null)).toBe(false);
    expect(servable('SELECT c.id FROM customers c, orders o', null)).toBe(false);
  });
});
