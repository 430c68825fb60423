/**
 * The plan of one result: for each table with transforms, which result fields come from it, its
 * chain in stages, and one execution per transform that touches the result (what provenance
 * records of it).
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import type { SandboxValue } from '../../sandbox/index.js';
import { PortionHash } from '../shared/canonical-hash.js';
import type { ColumnType } from '../shared/codecs/codecs.js';
import type { AsOfMoment } from '../services.js';
import type { BoundTransform, TableTransforms } from './registry-cache.js';

/**
 * What one transform version did over one result (all its batches): the provenance record's
 * substance. Hashes cover the portion it processed (see plugins/shared/canonical-hash.ts).
 */
export interface Execution {
  readonly transform: BoundTransform;
  readonly table: TableTransforms;
  /** The portion's column names in table order; null for a row transform (it saw every field of the table). */
  readonly columns: readonly string[] | null;
  readonly input: PortionHash;
  readonly output: PortionHash;
  rowsIn: number;
  rowsOut: number;
  /** Epoch milliseconds of its first batch. */
  startedAt: number;
  /** Time during which it was working on some batch of the result (batches may overlap). */
  durationMs: number;
  /** performance.now() when the last batch it finished ended, for durationMs. */
  busyUntil: number;
  /** The execution before it in its table's chain (null: it read the table's rows). */
  readonly parent: Execution | null;
  /** Last of its table's chain: its output is what the client got. */
  chainEnd: boolean;
}

/** One table's part of a result: which fields come from it. */
export interface TablePlan {
  readonly table: TableTransforms;
  /** Result field index → attnum, for the fields that come from this table. */
  readonly fields: ReadonlyMap<number, number>;
  /** Per transform of the chain, its execution record while provenance is recorded. */
  readonly executions: Map<BoundTransform, ExecutionPortion>;
  /**
   * The chain in stages: a row transform alone, or column transforms on disjoint columns of this
   * result, which run at the same time on different isolates (neither sees the other's values,
   * so the outcome is the chain order's).
   */
  readonly stages: readonly (readonly BoundTransform[])[];
  /** Replayed batches of this table that the replay cache did not hold. */
  misses: number;
}

/** An execution with the result fields its hashes cover. */
export interface ExecutionPortion {
  readonly execution: Execution;
  readonly fields: readonly number[];
  readonly types: readonly ColumnType[];
}

export interface ResultPlan {
  /** The description the plan was made from: a later plugin's rewrite of it changes nothing here. */
  readonly fields: readonly FieldDescription[];
  readonly tables: readonly TablePlan[];
  readonly clock: Date;
  dropped: number;
  /** Batches handed over so far: each batch's number orders its hash input (batches may overlap). */
  batches: number;
  /** Set once its executions were reported. */
  reported: boolean;
  /** The fields the client gets when the statement carries columns added for row transforms (see row-reads/). */
  readonly keep: readonly number[] | null;
  /** A result of an as-of session: the chains of the moment, replayed in its context. */
  readonly replay: { readonly moment: AsOfMoment; readonly ctx: SandboxValue } | null;
}

/** Whether a transform left a value as it was: identity first (most values), structure for objects. */
export function same(a: unknown, b: unknown): boolean {
  return Object.is(a, b) || (typeof a === 'object' && a !== null && isDeepStrictEqual(a, b));
}

export function columnType(f: FieldDescription): ColumnType {
  return { oid: f.dataTypeID, typmod: f.dataTypeModifier, format: f.format };
}

/** Groups a table's chain into stages (see TablePlan.stages), skipping transforms with nothing to do. */
export function stages(table: TableTransforms, fields: ReadonlyMap<number, number>): BoundTransform[][] {
  const bound = new Set(fields.values());
  const out: BoundTransform[][] = [];
  let stage: BoundTransform[] = [];
  let taken = new Set<number>();
  for (const t of table.chain) {
    if (t.columns === null) {
      if (stage.length > 0) out.push(stage);
      out.push([t]);
      stage = [];
      taken = new Set();
      continue;
    }
    const mine = [...t.columns].filter((a) => bound.has(a));
    if (mine.length === 0) continue;
    if (mine.some((a) => taken.has(a))) {
      out.push(stage);
      stage = [];
      taken = new Set();
    }
    stage.push(t);
    for (const a of mine) taken.add(a);
  }
  if (stage.length > 0) out.push(stage);
  return out;
}

/**
 * The executions a result will have, one per transform of the table's chain that touches it:
 * a column transform over the result fields of its columns, a row transform over all of the
 * table's fields; fields in table column order so the hash does not depend on the SELECT list.
 */
export function portions(table: TableTransforms, fields: ReadonlyMap<number, number>, desc: readonly FieldDescription[]): Map<BoundTransform, ExecutionPortion> {
  const out = new Map<BoundTransform, ExecutionPortion>();
  const ordered = [...fields].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  let parent: Execution | null = null;
  for (const t of table.chain) {
    const mine = t.columns === null ? ordered : ordered.filter(([, attnum]) => t.columns!.has(attnum));
    if (mine.length === 0) continue;
    const execution: Execution = {
      transform: t,
      table,
      columns: t.columns === null ? null : mine.map(([i, attnum]) => table.columnNames.get(attnum) ?? desc[i]!.name),
      input: new PortionHash(),
      output: new PortionHash(),
      rowsIn: 0,
      rowsOut: 0,
      startedAt: performance.timeOrigin + performance.now(),
      durationMs: 0,
      busyUntil: 0,
      parent,
      chainEnd: false,
    };
    out.set(t, { execution, fields: mine.map(([i]) => i), types: mine.map(([i]) => columnType(desc[i]!)) });
    parent = execution;
  }
  if (parent) parent.chainEnd = true;
  return out;
}
