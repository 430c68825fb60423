/**
 * The search_path a session starts with, where the server does not report it (PostgreSQL before
 * 18): the startup parameters' (`search_path`, or `-c search_path=…` in `options`), else the
 * most specific ALTER ROLE / ALTER DATABASE … SET search_path, else the server's configured
 * default. A search_path given on the server's command line is not seen. Null when it cannot be told.
 */
import type { SqlRunner } from '../registry/migrate.js';
import { parseSearchPath } from './column-sources.js';

// Every name qualified: this runs on the proxy's own connection, whatever its search_path.
const ROLE_DB_SQL = `
SELECT c.setting
  FROM pg_catalog.pg_db_role_setting s
 CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c(setting)
 WHERE c.setting OPERATOR(pg_catalog.~~) 'search\\_path=%'
   AND s.setrole OPERATOR(pg_catalog.=) ANY (ARRAY[0::pg_catalog.oid, (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1)])
   AND s.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0::pg_catalog.oid, (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $2)])
 ORDER BY (s.setrole OPERATOR(pg_catalog.<>) 0 AND s.setdatabase OPERATOR(pg_catalog.<>) 0) DESC, s.setrole OPERATOR(pg_catalog.<>) 0 DESC
 LIMIT 1`;

/**
 * The server's configured value (postgresql.conf, ALTER SYSTEM), else the built-in default.
 * pg_file_settings takes a superuser or pg_read_all_settings: without, the default is unknown.
 */
const DEFAULT_SQL = `
SELECT coalesce((SELECT f.setting FROM pg_catalog.pg_file_settings f
                  WHERE f.name OPERATOR(pg_catalog.=) 'search_path' AND f.applied ORDER BY f.seqno DESC LIMIT 1),
                (SELECT s.boot_val FROM pg_catalog.pg_settings s WHERE s.name OPERATOR(pg_catalog.=) 'search_path')) AS setting`;

/** `search_path` from the startup parameters; undefined when they do not set it, null when it cannot be read. */
export function startupPath(params: ReadonlyMap<string, string>): readonly string[] | null | undefined {
  const direct = params.get('search_path');
  if (direct !== undefined) return parseSearchPath(direct);
  const options = params.get('options');
  if (options === undefined || !/search[-_]path/i.test(options)) return undefined;
  // `-c name=value` or `--name=value`, words split on spaces, a backslash escaping the next character.
  const words: string[] = [];
  let word = '';
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) word += options[++i];
    else if (/\s/.test(ch)) {
      if (word !== '') words.push(word);
      word = '';
    } else word += ch;
  }
  if (word !== '') words.push(word);
  let found: readonly string[] | null | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const setting = w === '-c' ? words[++i] : w.startsWith('-c') ? w.slice(2) : w.startsWith('--') ? w.slice(2) : undefined;
    if (setting === undefined) continue;
    const eq = setting.indexOf('=');
    if (eq < 0) continue;
    if (setting.slice(0, eq).toLowerCase().replace(/-/g, '_') === 'search_path') found = parseSearchPath(setting.slice(eq + 1));
  }
  return found === undefined ? null : found;
}

export async function initialPath(db: SqlRunner, user: string, database: string): Promise<readonly string[] | null> {
  const roleDb = (await db.query(ROLE_DB_SQL, [user, database])).rows[0];
  if (roleDb !== undefined) return parseSearchPath(String(roleDb['setting']).slice('search_path='.length));
  const d = (await db.query(DEFAULT_SQL)).rows[0];
  return d === undefined ? null : parseSearchPath(String(d['setting']));
}
