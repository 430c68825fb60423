/**
 * Tables of an as-of statement read from a materialised version instead of their history: the
 * materialize service decides which (see plugins/materialize/), and such a table's reference
 * becomes a subquery over `provenance.materialized_rows`, which holds its rows as they were
 * served, so the transforms have nothing left to do for it.
 */
import type { AsOfTable } from '../services.js';
import type { RelationInfo } from './history-catalog.js';
import type { Replacement } from './rewrite.js';

function quote(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** The materialisation's rows, with the table's columns by name. */
export function materializedSubquery(table: RelationInfo, id: number): string {
  const qualified = `${quote(table.schema)}.${quote(table.name)}`;
  const cols = table.columns.map((c) => quote(c.name)).join(', ');
  // The reference to the table itself reads no row: the server checks the caller's SELECT on it, as for a history.
  return `(SELECT ${cols} FROM provenance.materialized_rows(NULL::${qualified}, ${id})`
    + ` WHERE NOT EXISTS (SELECT FROM ONLY ${qualified} WHERE false))`;
}

/** The replacements, with those the service serves from a materialisation marked so. */
export async function servedFromMaterializations(
  text: string, replacements: readonly Replacement[], serving: (text: string, tables: readonly AsOfTable[]) => Promise<ReadonlyMap<number, number>>,
): Promise<Replacement[]> {
  const tables: AsOfTable[] = replacements.filter((r) => r.view !== true && r.table.history !== null).map((r) => ({
    location: r.ref.location,
    oid: r.table.oid,
    name: `${r.table.schema}.${r.table.name}`,
    columns: r.table.columns.map((c) => ({ name: c.name, attnum: c.attnum })),
    rowSecurity: r.table.rowSecurity,
  }));
  if (tables.length === 0) return [...replacements];
  const served = await serving(text, tables);
  return replacements.map((r) => {
    const id = served.get(r.ref.location);
    return id === undefined ? r : { ...r, materialization: id };
  });
}
