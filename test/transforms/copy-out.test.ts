import { describe, expect, it } from 'vitest';
import { copiedTable, isCopyToStdout, relationName } from '../../plugins/transforms/copy-out.js';
import type { TableTransforms } from '../../plugins/transforms/registry-cache.js';

const table = (name: string): TableTransforms => ({ oid: 1, name, columnNames: new Map(), chain: [] });

describe('COPY TO STDOUT of tables with transforms', () => {
  it('finds COPY … TO STDOUT in any case and statement position, and nothing else', () => {
    expect(isCopyToStdout('COPY customers TO STDOUT')).toBe(true);
    expect(isCopyToStdout('select 1; copy (select * from customers) to stdout with (format csv)')).toBe(true);
    expect(isCopyToStdout('Copy customers TO\n  StdOut')).toBe(true);
    expect(isCopyToStdout('COPY customers FROM STDIN')).toBe(false);
    expect(isCopyToStdout("COPY customers TO '/tmp/x'")).toBe(false);
    expect(isCopyToStdout('SELECT copy_count FROM stdout_log')).toBe(false);
  });

  it('takes a table name as the server stores it', () => {
    expect(relationName('public.customers')).toBe('customers');
    expect(relationName('public."Order Lines"')).toBe('Order Lines');
    expect(relationName('"my ""quoted"" schema".t')).toBe('t');
    expect(relationName('"a.b"')).toBe('a.b');
  });

  it('matches the table however the statement names it, and errs towards matching', () => {
    const tables = [table('public.customers'), table('sales."Orders"')];
    expect(copiedTable('COPY customers TO STDOUT', tables)?.name).toBe('public.customers');
    expect(copiedTable('COPY PUBLIC.CUSTOMERS (email) TO STDOUT', tables)?.name).toBe('public.customers');
    expect(copiedTable('COPY "customers" TO STDOUT', tables)?.name).toBe('public.customers');
    expect(copiedTable('COPY (SELECT o.id FROM sales."Orders" o) TO STDOUT', tables)?.name).toBe('sales."Orders"');
    // Unquoted Orders folds to orders, another table than "Orders".
    expect(copiedTable('COPY sales.Orders TO STDOUT', tables)).toBeNull();
    expect(copiedTable('COPY "Customers" TO STDOUT', tables)).toBeNull();
    expect(copiedTable('COPY customers_archive TO STDOUT', tables)).toBeNull();
    // Coarse on purpose: a column or alias of that name counts too.
    expect(copiedTable('COPY (SELECT 1 AS customers) TO STDOUT', tables)?.name).toBe('public.customers');
  });
});
