/** Quoting of names and values in the SQL the embedded upstream writes itself. */

export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}
