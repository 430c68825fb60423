/** SQL identifiers as the server reads them. */

/**
 * The name an identifier token stands for: a quoted one without its quotes (`""` inside stands
 * for `"`), an unquoted one folded to lower case, as the server folds it.
 */
export function identifierName(token: string): string {
  return token.startsWith('"') ? token.slice(1, -1).replaceAll('""', '"') : token.toLowerCase();
}
