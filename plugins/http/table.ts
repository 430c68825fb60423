/**
 * The table a request names, as the caller's session sees it in the catalog: its qualified name,
 * its columns, its primary key. Names in the SQL HTTP runs are quoted by the server
 * (quote_ident), never pasted from the URL.
 */
import type { CallerSession } from './caller.js';
import { HttpError } from './errors.js';

export interface TableColumn {
  readonly name: string;
  readonly type: string;
  /** The column's name quoted for SQL. */
  readonly sql: string;
}

export interface ServedTable {
  readonly oid: number;
  /** `schema.table`, unquoted, as the API names it. */
  readonly name: string;
  /** The same, quoted for SQL. */
  readonly sql: string;
  readonly columns: readonly TableColumn[];
  /** Primary-key columns in key order (empty: the table has none). */
  readonly key: readonly TableColumn[];
}

const RESOLVE = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name,
       pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) AS sql
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
   AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f']::"char"[])`;

const COLUMNS = `
SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, pg_catalog.quote_ident(a.attname) AS sql,
       k.ord AS key_position
  FROM pg_catalog.pg_attribute a
  LEFT JOIN (SELECT u.attnum, u.ord FROM pg_catalog.pg_index i, pg_catalog.unnest(i.indkey) WITH ORDINALITY u(attnum, ord)
              WHERE i.indrelid OPERATOR(pg_catalog.=) $1::oid AND i.indisprimary) k ON k.attnum OPERATOR(pg_catalog.=) a.attnum
 WHERE a.attrelid OPERATOR(pg_catalog.=) $1::oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
 ORDER BY a.attnum`;

/** The table `name` names (`schema.table`, or a table on the caller's search path); 404 when there is none. */
export async function resolveTable(s: CallerSession, name: string): Promise<ServedTable> {
  if (name === '' || name.length > 200) throw new HttpError(400, '42602', `invalid table name "${name}"`);
  const found = (await s.query(RESOLVE, [name])).rows[0];
  if (!found) throw new HttpError(404, '42P01', `relation "${name}" does not exist`);
  const oid = String(found['oid']);
  const cols = (await s.query(COLUMNS, [oid])).rows;
  const columns = cols.map((c) => ({ name: String(c['name']), type: String(c['type']), sql: String(c['sql']) }));
  const key = cols
    .map((c, i) => ({ pos: c['key_position'] === null ? null : Number(c['key_position']), col: columns[i]! }))
    .filter((k): k is { pos: number; col: TableColumn } => k.pos !== null)
    .sort((a, b) => a.pos - b.pos)
    .map((k) => k.col);
  return { oid: Number(oid), name: `${String(found['schema'])}.${String(found['name'])}`, sql: String(found['sql']), columns, key };
}

/**
 * The values of a key in the URL (`1` or, for a composite key, `a,b` in key order), checked
 * against the table's key. `raw` is the path segment as sent (percent-encoded): a composite key
 * is split at its literal commas before decoding, so a value holding a comma is sent as `%2C`
 * (`1,y%2Cz`); a key encoded whole (`1%2Cx`) is split after decoding when that is the only way
 * to get as many values as the key has columns.
 */
export function keyValues(table: ServedTable, raw: string): string[] {
  if (table.key.length === 0) throw new HttpError(400, '42P10', `table ${table.name} has no primary key`);
  const decode = (p: string): string => {
    try {
      return decodeURIComponent(p);
    } catch {
      throw new HttpError(400, '22023', `invalid key "${raw}": malformed percent-encoding`);
    }
  };
  if (table.key.length === 1) return [decode(raw)];
  const split = raw.split(',');
  const values = split.length === table.key.length ? split.map(decode) : decode(raw).split(',');
  if (values.length !== table.key.length) {
    throw new HttpError(400, '22023', `the key of ${table.name} is (${table.key.map((k) => k.name).join(', ')}): ${table.key.length} comma-separated values`);
  }
  return values;
}

/** The last segment of a URL's path as sent, before any decoding. */
export function rawLastSegment(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The SELECT a read runs: every column, in key order when there is a key, one row when `byKey`. */
export function readSql(table: ServedTable, byKey: boolean): string {
  const list = table.columns.map((c) => c.sql).join(', ');
  if (byKey) {
    const where = table.key.map((k, i) => `${k.sql} = $${i + 1}`).join(' AND ');
    return `SELECT ${list} FROM ${table.sql} WHERE ${where}`;
  }
  const order = table.key.length > 0 ? ` ORDER BY ${table.key.map((k) => k.sql).join(', ')}` : '';
  return `SELECT ${list} FROM ${table.sql}${order} LIMIT $1 OFFSET $2`;
}
