/**
 * Runs the tables' materialisation policies in the proxy, off every client's path: a read's
 * replay is looked at after it was handed over, and the periodic tick (the `every` and budget
 * rules, the replay cache counts) runs on a timer. Nothing here can fail or hold up a read: each
 * decision's work is caught, logged, and written to `provenance.materialize_log` as `skipped`
 * where it was a decision that could not be carried out.
 */
import { hostname } from 'node:os';
import type { SqlRunner } from '../registry/migrate.js';
import type { SessionInfo } from '../hooks.js';
import type { AsOfMoment, ResultExecutions } from '../services.js';
import { policySession, storedVersions } from './made.js';
import { afterRead, dueBoundary, evictions, DEFAULT_WITHIN_MS, type Policy, type Rule } from './decisions.js';

/** What makes a materialised version (the proxy runs the transforms that make one); returns its id. */
export type MakeMaterialization = (req: {
  readonly session: SessionInfo;
  readonly oid: number;
  readonly moment: AsOfMoment;
  readonly createdBy: string;
  readonly reason: string;
  readonly signal: AbortSignal;
}) => Promise<number>;

export interface RunnerOptions {
  readonly store: () => SqlRunner | null;
  readonly make: MakeMaterialization | null;
  /** A user's current roles (the context of an `every` version). */
  readonly roles: (user: string) => Promise<readonly string[]>;
  readonly log: (msg: string) => void;
  /** Each table's replay cache counts since the last call. */
  readonly cacheCounts: () => ReadonlyMap<number, { readonly hits: number; readonly misses: number }>;
  /** The database the proxy's state is in (the sessions that make versions name it). */
  readonly database: () => string;
  /** How often the periodic rules are looked at. */
  readonly tickMs?: number;
}

/** Policies are read again at most this often for reads (the tick reads them every time). */
const POLICY_TTL_MS = 1_000;

const toMs = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

const proxyId = `${hostname()}:${process.pid}`;

export class PolicyRunner {
  private readonly timer: NodeJS.Timeout;
  private ticking: Promise<void> | null = null;
  private policies: { readonly at: number; readonly byTable: ReadonlyMap<number, Policy & { readonly sinceMs: number }> } | null = null;
  /** Decisions under way (so close() can wait for them). */
  private readonly working = new Set<Promise<void>>();
  private closed = false;
  /** Stops the versions being made when the proxy stops: a cancelled one leaves nothing behind. */
  private readonly stopping = new AbortController();
  /** The `every` boundaries this proxy decided on already (`oid@ms`): each is tried once. */
  private readonly boundaries = new Set<string>();
  /** Replay time and rows per table not yet added to the store's statistics. */
  private timed = new Map<number, { ms: number; rows: number }>();
  /** The sessions this runner makes versions in. */
  private readonly sessions = new WeakSet<SessionInfo>();

  constructor(private readonly opts: RunnerOptions) {
    this.timer = setInterval(() => this.tick(), opts.tickMs ?? 1_000);
    this.timer.unref();
  }

  /** Called with every result handed to provenance; returns at once. */
  observe(s: SessionInfo, r: ResultExecutions): void {
    try {
      this.note(s, r);
    } catch (err) {
      this.opts.log(`materialize policy: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private note(s: SessionInfo, r: ResultExecutions): void {
    if (this.closed || r.kind !== 'replay' || r.asOf === undefined || r.outcome !== 'complete') return;
    const byTable = new Map<number, number>();
    for (const e of r.executions) {
      byTable.set(e.table.oid, (byTable.get(e.table.oid) ?? 0) + e.durationMs);
      const t = this.timed.get(e.table.oid) ?? { ms: 0, rows: 0 };
      t.ms += e.durationMs;
      // The rows of the table the chain replayed over, counted at its first transform.
      if (e.parent === null) t.rows += e.rowsIn;
      this.timed.set(e.table.oid, t);
    }
    // The replays that make a version are not reads.
    if (this.sessions.has(s)) return;
    const asOf = r.asOf;
    this.track((async () => {
      // After the read's own work: its CommandComplete goes out first.
      await new Promise((res) => setImmediate(res));
      for (const [oid, ms] of byTable) await this.afterReplay(oid, asOf.at, asOf.user, r.roles, ms);
    })());
  }

  /** Stops the timer; settles once the work under way ended and the last counts were written. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.stopping.abort();
    await Promise.allSettled([...this.working, this.ticking]);
    await this.flushCounts().catch(() => undefined);
  }

  private track(p: Promise<void>): void {
    const guarded = p.catch((err: unknown) => this.opts.log(`materialize policy: ${err instanceof Error ? err.message : String(err)}`));
    this.working.add(guarded);
    void guarded.finally(() => this.working.delete(guarded));
  }

  private tick(): void {
    if (this.ticking !== null || this.closed) return;
    this.ticking = (async () => {
      await this.flushCounts();
      const policies = await this.load(true);
      if (policies === null) return;
      for (const p of policies.values()) {
        const boundary = dueBoundary(p, Date.now(), p.sinceMs);
        const key = `${p.targetOid}@${boundary}`;
        if (boundary !== null && !this.boundaries.has(key)) {
          this.boundaries.add(key);
          await this.make(p, new Date(boundary).toISOString(), p.setBy, 'every', `the boundary of every ${p.everyMs! / 1000} s`);
        }
        if (p.budgetBytes !== null) await this.budget(p, null);
      }
    })().catch((err: unknown) => this.opts.log(`materialize policy: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => (this.ticking = null));
  }

  private async flushCounts(): Promise<void> {
    const store = this.opts.store();
    if (store === null) return;
    const timed = this.timed;
    this.timed = new Map();
    const cache = this.opts.cacheCounts();
    const oids = [...new Set([...cache.keys(), ...timed.keys()])];
    if (oids.length === 0) return;
    try {
      await store.query('SELECT provenance._replay_stats_add($1::oid[], $2::bigint[], $3::bigint[], $4::float8[], $5::bigint[])', [
        oids, oids.map((o) => cache.get(o)?.hits ?? 0), oids.map((o) => cache.get(o)?.misses ?? 0),
        oids.map((o) => timed.get(o)?.ms ?? 0), oids.map((o) => timed.get(o)?.rows ?? 0)]);
    } catch (err) {
      this.opts.log(`materialize policy: replay statistics not written: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async load(fresh: boolean): Promise<ReadonlyMap<number, Policy & { readonly sinceMs: number }> | null> {
    if (!fresh && this.policies !== null && Date.now() - this.policies.at < POLICY_TTL_MS) return this.policies.byTable;
    const store = this.opts.store();
    if (store === null) return null;
    const rows = (await store.query('SELECT * FROM provenance._materialize_policies()', [], 'provenance_materialize_policies')).rows;
    const byTable = new Map<number, Policy & { readonly sinceMs: number }>();
    for (const r of rows) {
      byTable.set(Number(r['target_oid']), {
        targetOid: Number(r['target_oid']), target: String(r['target']), setBy: String(r['set_by']),
        everyMs: toMs(r['every_ms']), afterReplayMs: toMs(r['after_replay_ms']), afterReads: toMs(r['after_reads']),
        withinMs: toMs(r['within_ms']) ?? DEFAULT_WITHIN_MS, budgetBytes: toMs(r['budget_bytes']), sinceMs: Number(r['since_ms']),
      });
    }
    this.policies = { at: Date.now(), byTable };
    return byTable;
  }

  private async afterReplay(oid: number, at: string, user: string, roles: readonly string[], replayMs: number): Promise<void> {
    // A policy set a moment ago may not be in the copy yet.
    const p = (await this.load(false))?.get(oid) ?? (await this.load(true))?.get(oid);
    const store = this.opts.store();
    if (p === undefined || store === null) return;
    let reads: number | null = null;
    if (p.afterReads !== null) {
      const r = await store.query('SELECT provenance._moment_read($1, $2, $3, $4 * interval \'1 millisecond\') AS n', [oid, at, user, p.withinMs]);
      reads = Number(r.rows[0]?.['n'] ?? 0);
    }
    const asked = afterRead(p, replayMs, reads);
    if (asked !== null) await this.make(p, at, user, asked.rule, asked.why, roles);
  }

  /** Makes the version of (table, moment, user) unless another proxy or an earlier decision did. */
  private async make(p: Policy, at: string, user: string, rule: Rule, why: string, roles?: readonly string[]): Promise<void> {
    const store = this.opts.store();
    if (store === null) return;
    // One spelling of the moment (PostgreSQL's, in UTC), so that claims and the catalogue agree.
    const m = (await store.query(`SELECT ($1::pg_catalog.timestamptz AT TIME ZONE 'UTC')::pg_catalog.text || '+00' AS at,
      (pg_catalog.date_part('epoch', $1::pg_catalog.timestamptz) * 1000000)::pg_catalog.int8::pg_catalog.text AS micros`, [at])).rows[0]!;
    at = String(m['at']);
    const claimed = await store.query('SELECT provenance._materialize_claim($1, $2, $3, $4, $5) AS won', [p.targetOid, at, user, rule, proxyId]);
    if (claimed.rows[0]?.['won'] !== true) return;
    const make = this.opts.make;
    if (make === null) {
      await this.logDecision(store, p, { at, user, action: 'skipped', rule, why: `${why}; this proxy cannot make materialised versions` });
      return;
    }
    let made: { id: number; bytes: number };
    try {
      const moment: AsOfMoment = { at, atMicros: BigInt(String(m['micros'])), user, roles: roles ?? await this.opts.roles(user) };
      const session = policySession(user, this.opts.database());
      this.sessions.add(session);
      const id = await make({ session, oid: p.targetOid, moment, createdBy: p.setBy, reason: `policy:${rule}`, signal: this.stopping.signal });
      const bytes = (await storedVersions(store, p.targetOid)).find((v) => v.id === id)?.bytes ?? 0;
      made = { id, bytes };
    } catch (err) {
      // The claim goes, so that a later decision may try again.
      await store.query('DELETE FROM provenance.materialize_claim c WHERE c.target_oid = $1 AND c.as_of = $2 AND c.as_user = $3', [p.targetOid, at, user]);
      await this.logDecision(store, p, { at, user, action: 'skipped', rule, why: `${why}; making it failed: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    await store.query('UPDATE provenance.materialize_claim c SET materialization_id = $4 WHERE c.target_oid = $1 AND c.as_of = $2 AND c.as_user = $3',
      [p.targetOid, at, user, made.id]);
    await this.logDecision(store, p, { at, user, action: 'created', rule, why, bytes: made.bytes, id: made.id });
    if (p.budgetBytes !== null) await this.budget(p, made.id);
  }

  /** Evicts the least read versions while the table is over its budget. */
  private async budget(p: Policy, justMade: number | null): Promise<void> {
    const store = this.opts.store();
    if (store === null || p.budgetBytes === null) return;
    const stored = await storedVersions(store, p.targetOid);
    const plan = evictions(stored, p.budgetBytes, Date.now(), justMade);
    for (const m of plan.evict) {
      try {
        await store.query('SELECT provenance.drop_materialization($1)', [m.id]);
      } catch (err) {
        // Another proxy's budget took it first, or someone dropped it meanwhile: nothing to log.
        if ((err as { code?: unknown }).code === '42704') continue;
        throw err;
      }
      await this.logDecision(store, p, {
        at: null, user: null, action: 'evicted', rule: 'budget_bytes', bytes: m.bytes, id: m.id,
        why: `over the budget of ${p.budgetBytes} bytes; read ${m.readsServed} times, the least of those that may go`,
      });
    }
    // Over budget with nothing left to evict is said once, when a new version made it so.
    if (plan.over > 0 && justMade !== null) {
      await this.logDecision(store, p, {
        at: null, user: null, action: 'skipped', rule: 'budget_bytes',
        why: `still ${plan.over} bytes over the budget of ${p.budgetBytes}: the rest is needed (${plan.kept.map((k) => `#${k.m.id} ${k.why}`).join('; ')})`,
      });
    }
  }

  private async logDecision(
    store: SqlRunner, p: Policy,
    d: { at: string | null; user: string | null; action: 'created' | 'evicted' | 'skipped'; rule: Rule; why: string; bytes?: number; id?: number },
  ): Promise<void> {
    await store.query(
      `INSERT INTO provenance.materialize_log (target_oid, target, as_of, as_user, action, rule, why, bytes, materialization_id, proxy_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [p.targetOid, p.target, d.at, d.user, d.action, d.rule, d.why, d.bytes ?? null, d.id ?? null, proxyId]);
  }
}
