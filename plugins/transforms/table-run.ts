/**
 * A table's rows of a moment through the chain then in force, outside any client's result: what a
 * materialised version stores. It is a replay like an as-of read's, by the same code: a plugin of
 * its own is given the rows as one result of a session reading as of the moment, whose columns
 * are the table's, and its executions are recorded as replays. What the sandbox reports each
 * batch read (context fields, the clock, random draws) is gathered on the way.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import type { ResultId, SessionInfo } from '../hooks.js';
import type { AsOfMoment, ChainLink, ProvenanceService, ResultExecutions, TableRun, TimeTravelService } from '../services.js';
import type { SqlAnalyser } from '../sql/analyser.js';
import { SANDBOX_RUNTIME_VERSION, type ColumnResult, type RunBatch, type SandboxPool } from '../../sandbox/index.js';
import { TransformsPlugin } from './plugin.js';
import type { Registry } from './registry-cache.js';
import type { VersionHistory } from './version-history.js';
import { unreplayableReason } from './version-function.js';

export interface TableRunDeps {
  readonly pool: Pick<SandboxPool, 'run'>;
  readonly sql: SqlAnalyser;
  readonly registry: () => Registry | null;
  readonly versions: () => VersionHistory | null;
  readonly provenance: () => ProvenanceService | undefined;
}

/**
 * Starts a run of table `oid`'s chain as of `moment` over rows with these fields (the table's
 * columns: tableID the table, columnID the attnum), for session `s`, whose statement it records.
 */
export function startTableRun(deps: TableRunDeps, s: SessionInfo, oid: number, moment: AsOfMoment, fields: readonly FieldDescription[]): TableRun {
  const ctx = new Set<string>();
  let clock = false;
  let random = false;
  const note = (r: ColumnResult): ColumnResult => {
    for (const k of r.reads?.ctx ?? []) ctx.add(k);
    clock ||= r.reads?.clock === true;
    random ||= r.reads?.random === true;
    return r;
  };
  const pool = { run: ((batch: RunBatch) => deps.pool.run({ ...batch, reportReads: true }).then(note)) as SandboxPool['run'] };
  let recorded: ResultExecutions | null = null;
  const provenance: ProvenanceService = {
    recording: true,
    record: (session, r) => {
      recorded = r;
      const real = deps.provenance();
      return real?.recording ? real.record(session, r) : undefined;
    },
  };
  // The rows' columns are the table's own: each is its own source.
  const timetravel: TimeTravelService = {
    asOf: () => moment,
    sourceOf: (relation, attnum) => (relation === oid ? { oid, attnum } : null),
  };
  const plugin = new TransformsPlugin({
    pool, sql: deps.sql, registry: deps.registry, provenance: () => provenance, timetravel: () => timetravel, versions: deps.versions,
  });
  const result = { id: { serial: 0 } as ResultId, fields };
  let started: Promise<boolean> | null = null;
  let served = 0;
  const start = async (): Promise<boolean> => {
    const d = await plugin.rowDescription(s, result);
    if (d.action === 'deny') throw d.error;
    return d.action !== 'pass';
  };
  return {
    async batch(rows) {
      started ??= start();
      const watched = await started;
      served += rows.length;
      if (!watched || rows.length === 0) return rows.map((r) => [...r]);
      const d = await plugin.dataRows(s, result, RowBatch.fromValues(rows));
      if (d.action === 'deny') throw d.error;
      const out = d.rows;
      served -= rows.length - out.rows;
      return Array.from({ length: out.rows }, (_, r) => Array.from({ length: fields.length }, (_, c) => out.field(r, c)));
    },
    async end(outcome) {
      if (started !== null && (await started)) {
        if (outcome === 'complete') await plugin.commandComplete(s, result, `SELECT ${served}`);
        else await plugin.resultError(s, result, { code: SqlState.QueryCanceled, message: 'materialisation stopped' });
      }
      const done = recorded as ResultExecutions | null;
      const executions = done?.executions ?? [];
      return {
        reads: { ctx, clock, random },
        inputHash: executions.find((e) => e.parent === null)?.input.hex() ?? null,
        outputHash: executions.find((e) => e.chainEnd)?.output.hex() ?? null,
      };
    },
  };
}

/** Table `oid`'s chain in force at the moment, as a materialisation names it (see TransformsService.chainAt). */
export function chainAt(versions: VersionHistory | null, oid: number, atMicros: bigint): readonly ChainLink[] | PgError | null {
  if (versions === null) return null;
  const at = versions.chainsAt(atMicros).get(oid);
  if (at === undefined) return [];
  const stale = at.stale[0];
  if (stale !== undefined) {
    return new PgError(SqlState.ObjectNotInPrerequisiteState,
      `transform "${stale.name}" version ${stale.version} cannot be replayed: ${unreplayableReason(stale.runtimeIdentity, SANDBOX_RUNTIME_VERSION)}`);
  }
  return at.table.chain.map((t) => ({
    name: t.name, version: t.version, function_hash: t.fn.hash, params: t.params, columns: t.columns === null ? null : [...t.columns].sort((a, b) => a - b),
  }));
}
