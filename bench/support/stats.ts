/** Small statistics helpers; inputs are plain numbers, NaN-free. */

/** Median of a few values (the per-run results); undefined for none. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid];
  const lo = s[mid - 1];
  if (hi === undefined) return undefined;
  return s.length % 2 === 1 || lo === undefined ? hi : (lo + hi) / 2;
}

/**
 * Nearest-rank percentile (p in (0, 1]) of an already sorted array. Nearest-rank rather than
 * interpolation because the samples are pgbench's integer microseconds and the result should be
 * a latency some transaction actually had.
 */
export function percentileSorted(sorted: Float64Array, p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1];
}
