/** The medians of repeated pgbench runs of one configuration, as the pgbench-based suites report them. */
import type { PgbenchOutcome } from './pgbench.js';
import { median } from './stats.js';
import { fixed } from './table.js';

type OkOutcome = Extract<PgbenchOutcome, { ok: true }>;
const isOk = (o: PgbenchOutcome): o is OkOutcome => o.ok;

/** One run, for the progress log. */
export function describeOutcome(o: PgbenchOutcome): string {
  if (!o.ok) return `FAILED: ${o.error.split('\n')[0] ?? ''}`;
  const failed = o.failedTransactions > 0 ? `, ${o.failedTransactions} failed tx` : '';
  return `${o.tps.toFixed(0)} tps, ${o.transactions} tx, p50 ${o.p50Ms.toFixed(3)} ms, p99 ${o.p99Ms.toFixed(3)} ms${failed}`;
}

export interface Summary {
  tps: number | undefined;
  p50: number | undefined;
  p99: number | undefined;
  ok: number;
  total: number;
  failedTx: number;
  transactions: number;
}

export function summarize(outcomes: readonly PgbenchOutcome[]): Summary {
  const ok = outcomes.filter(isOk);
  return {
    tps: median(ok.map((o) => o.tps)),
    p50: median(ok.map((o) => o.p50Ms)),
    p99: median(ok.map((o) => o.p99Ms)),
    ok: ok.length,
    total: outcomes.length,
    failedTx: ok.reduce((n, o) => n + o.failedTransactions, 0),
    transactions: ok.reduce((n, o) => n + o.transactions, 0),
  };
}

/** The table cells of a summary: TPS, p50 ms, p99 ms, runs ok, failed tx. */
export function summaryCells(s: Summary): string[] {
  return [s.tps === undefined ? 'ERR' : fixed(s.tps, 0), fixed(s.p50, 3), fixed(s.p99, 3), `${s.ok}/${s.total}`, String(s.failedTx)];
}

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}
