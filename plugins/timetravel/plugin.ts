/**
 * Time travel in a session: `SET provenance.as_of` (and `provenance.as_user`) answered by the
 * proxy with the server's GUC semantics (setting.ts), and, while a moment is set, every statement
 * refused or rewritten to read tracked tables as of it (as-of-read.ts). A session that never sets
 * a moment stays on the fast path: only statements holding one of statementWords reach this
 * plugin, and it names itself in the session's statementPlugins only while it has work there.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { LocalResult, Plugin, SessionInfo, Statement, StatementDecision } from '../hooks.js';
import type { AsOfMoment, Services } from '../services.js';
import type { SqlRunner } from '../registry/migrate.js';
import { planRead, type ReadContext } from './as-of-read.js';
import { AS_OF, AS_USER, BadSetting, effectOf, settingCommand, startupSettings, type Effect, type SettingCommand } from './commands.js';
import { HistoryCatalog } from './history-catalog.js';
import { iso8601, momentWithOffset, resolveMoment, type Moment } from './moment.js';
import { TxSetting } from './setting.js';
import { rolesAt } from './as-user.js';
import { changesNaming, SessionPath } from './session-path.js';

const PLUGIN = 'timetravel';
const STARTING = 'timetravel:start';
const ADMIN_ROLE = 'provenance_admin';

interface SessionState {
  readonly asOf: TxSetting<Moment>;
  readonly asUser: TxSetting<string>;
  status: 'I' | 'T' | 'E';
  /** How the open transaction ends, as its last COMMIT or ROLLBACK said. */
  ending: boolean | null;
  /** The open transaction failed (it ends in a rollback). */
  failed: boolean;
  /** A setting changed in the open transaction. */
  touched: boolean;
  /** Prepared statements by name: the moment (its `at`) their text was rewritten for, or '' for the proxy's own. */
  readonly prepared: Map<string, string>;
  /** Cursors by name: the moment they were declared to read as of ('' for the present), and whether WITH HOLD. */
  readonly cursors: Map<string, { readonly at: string; readonly hold: boolean }>;
  /** Roles by `user@moment`, read when a statement made that pair current. */
  readonly roles: Map<string, readonly string[]>;
  /** How the session resolves unqualified names. */
  readonly path: SessionPath;
}

const rolesKey = (user: string, m: Moment): string => `${user}@${m.micros}`;

export class TimeTravelPlugin implements Plugin {
  readonly name = PLUGIN;
  /** Before the transforms: they see the rewritten statement. */
  readonly order = -10;
  /** Its own settings, and what changes how names resolve (followed in every session, for its as-of reads). */
  readonly statementWords = ['provenance.as_', 'discard', 'reset', 'search_path', 'role', 'authorization'];
  readonly catalog = new HistoryCatalog();

  constructor(private readonly services: Services) {}

  asOf(s: SessionInfo): AsOfMoment | null {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    const m = st?.asOf.value;
    if (st === undefined || m === null || m === undefined) return null;
    const user = st.asUser.value ?? s.user;
    return { at: m.at, atMicros: m.micros, user, roles: st.roles.get(rolesKey(user, m)) ?? [] };
  }

  /** A moment read as a SET of provenance.as_of reads it, and the context of a replay at it as `user`. */
  async momentOf(s: SessionInfo, input: string, user: string): Promise<AsOfMoment> {
    const m = await this.resolve(s, input);
    return { at: m.at, atMicros: m.micros, user, roles: await rolesAt(this.store(), user, m, (u) => this.services.roles(u)) };
  }

  /** The proxy's connection when a query on it cannot wait on this session (the embedded database's single backend). */
  private store(): SqlRunner | null {
    if (this.services.embedded?.busy()) return null;
    return this.services.state.current();
  }

  /**
   * Settings given in the startup packet, checked before the client is told the login succeeded:
   * a moment or user the server or the proxy cannot take ends the login (FATAL), as a bad `-c`
   * option does. A client's statements pipelined before its ReadyForQuery wait for it.
   */
  sessionOpening(s: SessionInfo): Promise<void> {
    const started = this.start(s);
    s.pluginState.set(STARTING, started);
    return started;
  }

  private async start(s: SessionInfo): Promise<void> {
    const given = startupSettings(s.startupParams.get('options'));
    let moment: Moment | null = null;
    let user: string | null = null;
    try {
      const at = given.get(AS_OF);
      if (at !== undefined) moment = await this.resolve(s, at);
      const who = given.get(AS_USER);
      if (who !== undefined) user = await this.checkUser(s, who);
    } catch (err) {
      if (err instanceof PgError) throw new PgError(err.code, err.message, 'FATAL', err.fields);
      throw err;
    }
    const st: SessionState = {
      asOf: new TxSetting(moment), asUser: new TxSetting(user), status: 'I', ending: null, failed: false, touched: false, prepared: new Map(), cursors: new Map(), roles: new Map(),
      path: new SessionPath(s),
    };
    await this.ensureRoles(s, st);
    if (moment !== null) await this.snapshot(s, st);
    s.pluginState.set(PLUGIN, st);
    this.involve(s, st);
  }

  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st === undefined) return;
    st.status = status;
    st.path.readyForQuery(status);
    if (status === 'E') st.failed = true;
    if (status !== 'I') {
      this.each(st, (x) => x.begin());
      return;
    }
    if (!st.asOf.inTransaction) return;
    // A transaction that failed ends in a rollback, whatever its last word.
    const committed = st.ending === true && !st.failed;
    this.each(st, (x) => x.end(committed));
    for (const [name, c] of st.cursors) if (!c.hold || !committed) st.cursors.delete(name);
    st.ending = null;
    st.failed = false;
    st.touched = false;
    this.involve(s, st);
  }

  async statement(s: SessionInfo, stmt: Statement): Promise<StatementDecision> {
    await (s.pluginState.get(STARTING) as Promise<void> | undefined);
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st === undefined) return { action: 'pass' };
    try {
      return stmt.kind === 'bind' ? await this.bind(s, st, stmt) : await this.text(s, st, stmt);
    } finally {
      this.involve(s, st);
    }
  }

  private async text(s: SessionInfo, st: SessionState, stmt: Statement & { kind: 'query' | 'parse' }): Promise<StatementDecision> {
    const analysis = this.services.sql.analyse(stmt.text);
    const reading = analysis.ok ? analysis.readings[0] ?? [] : [];
    let command: SettingCommand | null = null;
    try {
      for (const node of reading) {
        const c = settingCommand(node);
        if (c === null) continue;
        if (reading.length > 1) {
          return deny(SqlState.FeatureNotSupported, `${c.kind === 'show' ? 'SHOW' : 'SET'} ${c.name} must be a statement of its own`);
        }
        command = c;
      }
    } catch (err) {
      if (err instanceof BadSetting) return deny('22023', err.message);
      throw err;
    }
    if (command !== null) {
      if (stmt.kind === 'parse') st.prepared.set(stmt.name, '');
      return { action: 'answer', result: await this.answer(s, st, command) };
    }
    const moment = st.asOf.value;
    for (const node of reading) {
      const e = effectOf(node);
      if (e === null) continue;
      if (e.kind === 'fetch') {
        const refused = this.fetchRefusal(st, e.name, moment);
        if (refused !== null) return { action: 'deny', error: refused };
      }
      if (e.kind === 'declare') st.cursors.set(e.name, { at: moment?.at ?? '', hold: e.hold });
      this.apply(st, e);
    }
    if (moment === null) {
      if (stmt.kind === 'parse') st.prepared.delete(stmt.name);
      st.path.statements(reading);
      return { action: 'pass' };
    }
    if (reading.length > 1 && reading.some(changesNaming)) {
      return deny(SqlState.FeatureNotSupported, 'in a session that reads as of a moment, a statement that changes the search_path or the role must be sent on its own');
    }
    await this.ensureRoles(s, st);
    const planned = await planRead(stmt.text, await this.readContext(s, st, moment));
    if (planned instanceof PgError) return { action: 'deny', error: planned };
    st.path.statements(reading);
    if (stmt.kind === 'parse') st.prepared.set(stmt.name, moment.at);
    return planned === stmt.text ? { action: 'pass' } : { action: 'rewrite', text: planned };
  }

  /**
   * A portal of a prepared statement: it runs the text prepared, which reads as of the moment in
   * force at its Parse. One prepared for another moment, or before one was set (drivers keep
   * prepared statements), is refused unless it reads no table.
   */
  private async bind(s: SessionInfo, st: SessionState, stmt: Statement & { kind: 'bind' }): Promise<StatementDecision> {
    const prepared = st.prepared.get(stmt.statement);
    const moment = st.asOf.value;
    if (prepared === '' || prepared === (moment?.at ?? undefined)) return { action: 'pass' };
    if (moment === null) {
      if (prepared === undefined) return { action: 'pass' };
      return deny(SqlState.FeatureNotSupported, `prepared statement "${stmt.statement}" reads as of ${prepared}, and this session no longer does: prepare it again`);
    }
    const text = stmt.text;
    const planned = text === undefined ? null : await planRead(text, await this.readContext(s, st, moment));
    if (planned === text) return { action: 'pass' };
    if (planned instanceof PgError && prepared === undefined) return { action: 'deny', error: planned };
    return deny(SqlState.FeatureNotSupported,
      `prepared statement "${stmt.statement}" was prepared ${prepared === undefined ? 'before provenance.as_of was set' : `to read as of ${prepared}`}: prepare it again to read as of ${moment.at}`);
  }

  private async readContext(s: SessionInfo, st: SessionState, moment: Moment): Promise<ReadContext> {
    const store = this.store();
    const serve = this.services.materialize;
    return {
      sql: this.services.sql, catalog: this.catalog, store, moment, nowMicros: BigInt(Date.now()) * 1000n, user: s.user, naming: await st.path.naming(store),
      serving: serve && ((text, tables) => serve.serving(s, text, tables)),
    };
  }

  /** A cursor runs the query it was declared with: one declared for another moment reads the wrong one. */
  private fetchRefusal(st: SessionState, name: string, moment: Moment | null): PgError | null {
    const declared = st.cursors.get(name);
    const now = moment?.at ?? '';
    if (declared === undefined ? moment === null : declared.at === now) return null;
    const then = declared === undefined || declared.at === '' ? 'to read the present' : `to read as of ${declared.at}`;
    return new PgError(SqlState.FeatureNotSupported, `cursor "${name}" was declared ${then}: declare it again to read ${moment === null ? 'the present' : `as of ${moment.at}`}`);
  }

  /** The proxy's answer to a SET, RESET or SHOW of its settings (checked now, in effect when it runs). */
  private async answer(s: SessionInfo, st: SessionState, c: SettingCommand): Promise<LocalResult> {
    if (c.kind === 'show') {
      const show = (): string => {
        if (c.name === AS_OF) return st.asOf.value === null ? '' : iso8601(st.asOf.value);
        return st.asUser.value ?? '';
      };
      return { columns: [c.name], rows: [[show()]], tag: 'SHOW', run: () => ({ rows: [[show()]], tag: 'SHOW' }) };
    }
    if (st.status === 'E') {
      throw new PgError('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
    }
    const setting: TxSetting<Moment> | TxSetting<string> = c.name === AS_OF ? st.asOf : st.asUser;
    let value: Moment | string | null | 'default' = 'default';
    // An empty value unsets, as SHOW shows an unset one.
    if (c.value !== 'default') value = c.value.trim() === '' ? null : c.name === AS_OF ? await this.resolve(s, c.value) : await this.checkUser(s, c.value);
    // The context of the replay as it will be once this runs.
    const moment = c.name === AS_OF ? (value === 'default' ? st.asOf.initial : value as Moment) : st.asOf.value;
    const user = c.name === AS_USER ? (value === 'default' ? st.asUser.initial : value as string) : st.asUser.value;
    await this.ensureRoles(s, st, moment, user ?? s.user);
    if (c.name === AS_OF && value !== 'default') await this.snapshot(s, st);
    return {
      tag: 'SET',
      run: () => {
        if (st.status !== 'E') {
          (setting as TxSetting<Moment | string>).set(value, c.local);
          if (st.asOf.inTransaction) st.touched = true;
          this.involve(s, st);
        }
        return { tag: 'SET' };
      },
    };
  }

  private apply(st: SessionState, e: Effect): void {
    switch (e.kind) {
      case 'begin':
        this.each(st, (x) => x.begin());
        break;
      case 'end':
        st.ending = e.commit;
        break;
      case 'savepoint':
        this.each(st, (x) => x.savepoint(e.name));
        break;
      case 'rollback to':
        this.each(st, (x) => x.rollbackTo(e.name));
        break;
      case 'release':
        this.each(st, (x) => x.release(e.name));
        break;
      case 'reset all':
        this.each(st, (x) => x.set('default', false));
        if (st.asOf.inTransaction) st.touched = true;
        break;
      case 'discard all':
        // Refused by the server inside a transaction block.
        if (st.asOf.inTransaction) break;
        this.each(st, (x) => x.set('default', false));
        st.prepared.clear();
        break;
      case 'close':
        if (e.name === null) st.cursors.clear();
        else st.cursors.delete(e.name);
        break;
      case 'declare':
      case 'fetch':
        break;
      case 'deallocate':
        if (e.name === null) st.prepared.clear();
        else st.prepared.delete(e.name);
        break;
    }
  }

  private each(st: SessionState, f: (x: TxSetting<unknown>) => void): void {
    f(st.asOf as TxSetting<unknown>);
    f(st.asUser as TxSetting<unknown>);
  }

  /** Sees every statement of the session only while it reads the past, or may (a pending change, statements prepared for a moment). */
  private involve(s: SessionInfo, st: SessionState): void {
    const needed = st.asOf.value !== null || st.touched || [...st.prepared.values()].some((v) => v !== '')
      || [...st.cursors.values()].some((c) => c.at !== '');
    if (needed) s.statementPlugins.add(PLUGIN);
    else s.statementPlugins.delete(PLUGIN);
  }

  /**
   * The embedded database cannot be asked while the session's own transaction holds it: what its
   * statements may name is read beforehand, when the session starts reading the past, with the
   * search_path the session started with.
   */
  private async snapshot(s: SessionInfo, st: SessionState): Promise<void> {
    const store = this.services.embedded === null ? null : this.store();
    if (store === null) return;
    await this.catalog.snapshot(store, s.user);
    await st.path.naming(store);
  }

  private async resolve(s: SessionInfo, input: string): Promise<Moment> {
    const store = this.store();
    if (store !== null) {
      return resolveMoment(store, input, s.serverParams.get('TimeZone') ?? 'UTC', s.serverParams.get('DateStyle') ?? 'ISO, MDY');
    }
    const m = momentWithOffset(input);
    if (m !== null) return m;
    const why = this.services.embedded !== null
      ? 'the embedded database cannot read it while a transaction holds it'
      : `the proxy's own connection to the database is not available${this.services.state.problem() ? ` (${this.services.state.problem()})` : ''}`;
    throw new PgError(SqlState.FeatureNotSupported, `the moment "${input}" cannot be read now: ${why}`, 'ERROR', {
      hint: 'Give the moment with its UTC offset (2026-10-27 10:00:00+00), or set it outside a transaction block.',
    });
  }

  /** `provenance.as_user`: only a member of provenance_admin may read as someone else. */
  private async checkUser(s: SessionInfo, who: string): Promise<string> {
    const mine = await this.services.roles(s.user);
    if (!mine.includes(ADMIN_ROLE) && s.serverParams.get('is_superuser') !== 'on') {
      throw new PgError(SqlState.InsufficientPrivilege, `permission denied to set parameter "${AS_USER}"`, 'ERROR', {
        detail: `Only members of ${ADMIN_ROLE} may read as another user.`,
      });
    }
    // The embedded database's memberships are read at logins: a role made since is asked for.
    const store = this.store();
    const exists = store !== null
      ? (await store.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1', [who])).rows.length > 0
      : (await this.services.roles(who)).length > 0;
    if (!exists) throw new PgError('42704', `role "${who}" does not exist`);
    return who;
  }

  private async ensureRoles(s: SessionInfo, st: SessionState, moment = st.asOf.value, user = st.asUser.value ?? s.user): Promise<void> {
    if (moment === null) return;
    const key = rolesKey(user, moment);
    if (st.roles.has(key)) return;
    st.roles.set(key, await rolesAt(this.store(), user, moment, (u) => this.services.roles(u)));
  }
}

function deny(code: string, message: string): StatementDecision {
  return { action: 'deny', error: new PgError(code, message) };
}
