/**
 * Logins to the embedded database: its roles as last read, the settings a client's startup
 * packet asks for, and the messages a server sends after authentication. PGlite has no
 * authentication of its own: a role that exists and may log in is let in.
 */
import { PgError, SqlState } from '../errors.js';
import {
  authenticationOk, backendKeyData, parameterStatus, readyForQuery,
} from '../wire/backend-messages.js';
import type { StartupMessage } from '../wire/frontend-messages.js';
import type { EmbeddedBackend } from './embedded-backend.js';
import type { EmbeddedLink } from './embedded-link.js';
import { quoteLiteral } from './sql-quote.js';

/** Parameters a real server reports at login; values are read from PGlite per session. */
const REPORTED_PARAMS = [
  'server_version', 'server_encoding', 'client_encoding', 'DateStyle', 'IntervalStyle', 'TimeZone',
  'integer_datetimes', 'standard_conforming_strings', 'is_superuser', 'session_authorization',
  'application_name', 'default_transaction_read_only', 'in_hot_standby',
] as const;

const REPORTED_VALUES = REPORTED_PARAMS.map((n) => `pg_catalog.current_setting(${quoteLiteral(n)}, true)`).join(', ');
const SHOW_REPORTED = `SELECT ${REPORTED_VALUES}`;

/** Startup parameters that are not settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication']);

interface Role {
  readonly canLogin: boolean;
  readonly superuser: boolean;
  readonly memberOf: string[];
}

/**
 * The roles a role belongs to, itself included, following grants transitively. Not pg_has_role:
 * that counts a superuser as a member of every role, which would unmask everything for it.
 */
export function membershipsOf(roleOid: string): string {
  return `WITH RECURSIVE m(id) AS (SELECT ${roleOid} UNION SELECT a.roleid FROM pg_catalog.pg_auth_members a JOIN m ON a.member OPERATOR(pg_catalog.=) m.id)
  SELECT b.rolname::pg_catalog.text FROM m JOIN pg_catalog.pg_roles b ON b.oid OPERATOR(pg_catalog.=) m.id ORDER BY b.rolname`;
}

/** set_config takes the value as a server does from a startup packet (a list stays a list). */
function setConfig(name: string, value: string): string {
  return `SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`;
}

export class EmbeddedLogins {
  backendPid = 0;
  superuser = 'postgres';
  /** Reported parameters as a new session has them, read at start. */
  private readonly defaults = new Map<string, string>();
  /** Roles as last read; used for logins while the backend is busy with a transaction. */
  private readonly roles = new Map<string, Role>();

  constructor(private readonly backend: EmbeddedBackend) {}

  /** Reads what every login needs: the backend's pid, its superuser, the defaults, the roles. */
  async init(): Promise<void> {
    const r = await this.backend.query(`SELECT pg_catalog.pg_backend_pid(), session_user, ${REPORTED_VALUES}`);
    const row = r.rows[0] ?? [];
    this.backendPid = Number(row[0] ?? 0);
    this.superuser = row[1] ?? 'postgres';
    REPORTED_PARAMS.forEach((name, i) => {
      const v = row[i + 2];
      if (v !== null && v !== undefined) this.defaults.set(name, v);
    });
    await this.loadRoles();
  }

  /** Whether the role is known, so a login can be answered without running SQL. */
  knows(user: string): boolean {
    return this.roles.has(user);
  }

  /** The SET statements the startup packet asks for, noted on the link; returns the settings. */
  startupSettings(link: EmbeddedLink, startup: StartupMessage): [string, string][] {
    const p = startup.params;
    const settings: [string, string][] = [...p].filter(([name]) => !NOT_SETTINGS.has(name));
    settings.push(...parseOptions(p.get('options') ?? ''));
    for (const [name, value] of settings) link.startupSets.push(setConfig(name, value));
    return settings;
  }

  /**
   * Check the role, apply the session's settings (`apply`) and send what a server sends after
   * authentication.
   */
  async login(link: EmbeddedLink, apply: () => Promise<PgError | null>): Promise<void> {
    await this.loadRoles();
    this.checkRole(link.user);
    const err = await apply();
    if (err) throw new PgError(err.code, err.message, 'FATAL', err.fields);
    const shown = await this.backend.query(SHOW_REPORTED);
    const values = new Map<string, string>();
    REPORTED_PARAMS.forEach((name, i) => {
      const v = shown.rows[0]?.[i];
      if (v !== null && v !== undefined) values.set(name, v);
    });
    this.sendLogin(link, values);
  }

  /**
   * Login while another session's transaction holds the backend: nothing can run on it, so the
   * role and the reported parameters come from what was last read, with the client's own
   * settings on top. The settings themselves are applied before the session's first statement.
   */
  loginFromCache(link: EmbeddedLink, settings: readonly [string, string][]): void {
    const role = this.checkRole(link.user);
    const values = new Map(this.defaults);
    values.set('is_superuser', role.superuser ? 'on' : 'off');
    values.set('session_authorization', link.user);
    values.set('application_name', '');
    const reported = new Map(REPORTED_PARAMS.map((n) => [n.toLowerCase(), n] as const));
    for (const [name, value] of settings) {
      const key = reported.get(name.toLowerCase());
      if (key) values.set(key, value);
    }
    this.sendLogin(link, values);
  }

  private sendLogin(link: EmbeddedLink, values: ReadonlyMap<string, string>): void {
    for (const [k, v] of values) link.reported.set(k, v);
    const out: Buffer[] = [authenticationOk()];
    for (const [name, v] of values) out.push(parameterStatus(name, v));
    out.push(backendKeyData(this.backendPid, link.secret), readyForQuery('I'));
    link.events.data(Buffer.concat(out));
  }

  /** ParameterStatus for each reported setting whose value differs from what the client was told. */
  async reportChanges(link: EmbeddedLink): Promise<Buffer[]> {
    const shown = await this.backend.query(SHOW_REPORTED);
    const out: Buffer[] = [];
    REPORTED_PARAMS.forEach((name, i) => {
      const v = shown.rows[0]?.[i];
      if (v === null || v === undefined || link.reported.get(name) === v) return;
      link.reported.set(name, v);
      out.push(parameterStatus(name, v));
    });
    return out;
  }

  private async loadRoles(): Promise<void> {
    const r = await this.backend.query(`SELECT r.rolname, r.rolcanlogin, r.rolsuper,
      pg_catalog.array_to_string(ARRAY(${membershipsOf('r.oid')}), pg_catalog.chr(1))
      FROM pg_catalog.pg_roles r`);
    this.roles.clear();
    for (const [name, canLogin, superuser, member] of r.rows) {
      this.roles.set(name ?? '', { canLogin: canLogin === 't', superuser: superuser === 't', memberOf: (member ?? '').split('\u0001').filter((x) => x !== '') });
    }
  }

  /**
   * The roles a user belongs to, as last read (at start and at each login that could run SQL).
   * Read from memory: a session holding the backend must never wait on the proxy's own query.
   */
  memberships(user: string): readonly string[] {
    return this.roles.get(user)?.memberOf ?? [];
  }

  private checkRole(user: string): Role {
    const role = this.roles.get(user);
    if (!role) throw new PgError(SqlState.InvalidAuthorizationSpecification, `role "${user}" does not exist`, 'FATAL');
    if (!role.canLogin) throw new PgError(SqlState.InvalidAuthorizationSpecification, `role "${user}" is not permitted to log in`, 'FATAL');
    return role;
  }
}

/** The `options` startup parameter: `-c name=value` and `--name=value`, backslash escapes spaces. */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) cur += options[++i];
    else if (/\s/.test(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    if (w === '-c' && i + 1 < words.length) w = words[++i]!;
    else if (w.startsWith('-c')) w = w.slice(2);
    else if (w.startsWith('--')) w = w.slice(2);
    else continue;
    const eq = w.indexOf('=');
    if (eq > 0) out.push([w.slice(0, eq).replace(/-/g, '_'), w.slice(eq + 1)]);
  }
  return out;
}
