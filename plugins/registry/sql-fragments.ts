/** Pieces of the `provenance` schema's migrations that more than one of them uses. */

/** Every function of the schema runs with this path, whoever calls it, and qualifies what it calls. */
export const FIXED_PATH = 'SET search_path = pg_catalog, pg_temp';

/**
 * An event trigger on ddl_command_end for these command tags. Only a superuser may create one: a
 * migration run by another role goes on without it (the README says what is then noticed later).
 */
export function superuserEventTrigger(name: string, tags: readonly string[], fn: string): string {
  return `DO $$ BEGIN
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    CREATE EVENT TRIGGER ${name} ON ddl_command_end
      WHEN TAG IN (${tags.map((t) => `'${t}'`).join(', ')})
      EXECUTE FUNCTION ${fn}();
  END IF;
END $$;`;
}
