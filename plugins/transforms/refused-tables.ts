/**
 * Fail closed on a table that took the place of a transform's target (dropped and created again
 * under its name, or a masked column dropped and added again): the transforms registered for the
 * old one no longer bind to it, so its data is refused to all but registry admins until one of
 * them registers the transforms again or adopts the table.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import { REGISTRY_ADMIN_ROLE, type Registry } from './registry-cache.js';

/** The refusal for a result that carries columns of a refused table, or null. */
export function refusedTable(registry: Registry, fields: readonly FieldDescription[], roles: readonly string[]): PgError | null {
  const hit = fields.find((f) => f.tableID !== 0 && registry.refused.has(f.tableID));
  if (hit === undefined || roles.includes(REGISTRY_ADMIN_ROLE)) return null;
  const { name, transforms } = registry.refused.get(hit.tableID)!;
  return new PgError(
    SqlState.ObjectNotInPrerequisiteState,
    `${name} is not the table transform${transforms.length > 1 ? 's' : ''} ${transforms.map((n) => `"${n}"`).join(', ')} ` +
      `${transforms.length > 1 ? 'were' : 'was'} registered for (it was dropped or a column replaced): its data is not served until an admin decides`,
    'ERROR',
    {
      hint: `A member of ${REGISTRY_ADMIN_ROLE} can bind the transforms to it with SELECT provenance.adopt_table('${name.replace(/'/g, "''")}'), ` +
        'register them again with provenance.register_transform, or drop them (provenance.transforms shows target_status).',
    },
  );
}
