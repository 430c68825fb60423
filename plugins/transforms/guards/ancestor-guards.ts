/**
 * Guards through the parents of partitions and inheritance children (inherited.ts): the rows of a
 * child read through its parent (grandparent…) are served as the parent's, and the server names
 * the parent in its RowDescription, so a transform bound to the child does not apply to them.
 * - A column of an ancestor that is a guarded column of its descendant (by name) is guarded as
 *   that column with no transform on the ancestor: it may not reach a client even as a plain
 *   column (verdict.ts); the ancestor's other columns may be read. A guarded transform the
 *   ancestor's column has of its own, as strict, serves it.
 * - A statement that reads rows of an ancestor of a table whose rows a guarded row transform
 *   filters (named directly, or through a view) is refused, whatever it reads of them: they are
 *   not filtered. Writing into it without RETURNING reads no row.
 * A name read with ONLY (`select … from only parent`) reads none of the descendants' rows.
 */
import { PgError, SqlState } from '../../../proxy/errors.js';
import { dotted } from '../../sql/source-model.js';
import type { Registry } from '../registry-cache.js';
import { candidates, HINT, withRelatives, type NamedRead, type RowRelative } from './child-guards.js';
import type { Inherited } from './inherited.js';
import type { GuardedColumns } from './policy.js';

/** `partition public.orders_2026`, for messages. */
export function descendantName(partition: boolean, label: string): string {
  return `${partition ? 'partition' : 'inheritance child'} ${label}`;
}

/**
 * `columns` with the columns of the same names of the ancestors of the tables of `own` (the
 * session's guarded columns), but for the ancestors in `only` (read with ONLY alone).
 */
export function withAncestors(columns: GuardedColumns, own: GuardedColumns, inherited: Inherited, registry: Registry, only: ReadonlySet<number>): GuardedColumns {
  return withRelatives(columns, own, inherited.byDescendant, registry,
    (ancestor, table) => (only.has(ancestor.oid) ? null : { descendant: { label: table, partition: ancestor.partition, ancestor: ancestor.label } }));
}

/** Whether a read takes the descendants' rows of what it names: not with ONLY. */
const withDescendants = (r: NamedRead): boolean => r.rv.inh === true;

/** The refusal of reads of an ancestor of a table whose rows a guarded row transform filters, or null. */
export function ancestorRowsRefusal(reads: readonly NamedRead[], ancestors: ReadonlyMap<number, RowRelative>): PgError | null {
  if (ancestors.size === 0) return null;
  for (const read of reads) {
    for (const c of candidates(read)) {
      const own = withDescendants(read) ? ancestors.get(c.oid) : undefined;
      const hit = own ?? c.viewOf.map((o) => ancestors.get(o)).find((x) => x !== undefined);
      if (hit === undefined) continue;
      const { relative: ancestor, rows } = hit;
      const how = read.resolved.kind === 'unsure' ? `the name ${dotted([read.rv.relname ?? ''])} may mean ${ancestor.label}` : own !== undefined ? `it reads ${ancestor.label}` : `it reads ${ancestor.label} through a view`;
      return new PgError(SqlState.InsufficientPrivilege,
        `${how}, whose ${descendantName(ancestor.partition, rows.label)} has its rows filtered by transform "${rows.transform}" (guard ${rows.guard}) only when ${rows.label} is read: read through ${ancestor.label}, they are not filtered`,
        'ERROR', { hint: `Bind the transform to ${ancestor.label}, the table clients read. ${HINT}` });
    }
  }
  return null;
}

/**
 * The ancestors of guarded tables that these reads name only with ONLY, certainly and not through
 * a view: their descendants' rows are not read there. An ancestor not named at all is not among
 * them (its columns may be read in a way these reads do not show).
 */
export function onlyAncestors(reads: readonly NamedRead[], inherited: Inherited): ReadonlySet<number> {
  if (inherited.byDescendant.size === 0) return new Set();
  const only = new Set<number>();
  const not = new Set<number>();
  for (const read of reads) {
    for (const c of candidates(read)) {
      for (const o of c.viewOf) not.add(o);
      if (read.resolved.kind === 'relation' && !withDescendants(read)) only.add(c.oid);
      else not.add(c.oid);
    }
  }
  for (const o of not) only.delete(o);
  return only;
}
