/**
 * The DAG behind a read (README, "The DAG"): the table's original rows (a data node per chain,
 * named by its input hash), each execution of each chain, and the result the chains fed; as JSON,
 * as Graphviz text, or drawn as SVG by Graphviz compiled to WebAssembly.
 */
import { instance, type Viz } from '@viz-js/viz';
import type { SqlRunner } from '../registry/migrate.js';

export interface LineageNode {
  readonly id: string;
  readonly kind: 'data' | 'execution' | 'result';
  readonly label: string;
  readonly [field: string]: unknown;
}

export interface Lineage {
  readonly object: string;
  readonly as_of: string | null;
  readonly key: string | null;
  readonly nodes: LineageNode[];
  readonly edges: { readonly from: string; readonly to: string }[];
}

const EXECUTIONS = `
SELECT e.id::text AS id, e.result_id::text AS result_id, e.parent_id::text AS parent_id, e.chain_end, e.transform_name,
       e.transform_version, e.function_hash, e.table_name, e.params, e.input_hash, e.output_hash, e.rows_in, e.rows_out,
       e.executed_at, e.user_name, e.kind
  FROM provenance.executions e WHERE e.id = ANY ($1::uuid[]) ORDER BY e.executed_at, e.id`;

/** The lineage of a read that caused the executions `ids` (none: its rows came straight from the table). */
export async function lineageOf(
  store: SqlRunner | null, ids: readonly string[], read: { object: string; asOf: string | null; key: string | null },
): Promise<Lineage> {
  const rows = chainOrder(ids.length > 0 && store ? (await store.query(EXECUTIONS, [ids])).rows : []);
  const nodes = new Map<string, LineageNode>();
  const edges: { from: string; to: string }[] = [];
  const results = new Set<string>();
  for (const r of rows) {
    const id = `execution:${String(r['id'])}`;
    const executedAt = r['executed_at'] instanceof Date ? r['executed_at'].toISOString() : String(r['executed_at']);
    nodes.set(id, {
      id, kind: 'execution', label: `${String(r['transform_name'])} v${String(r['transform_version'])}`,
      execution_id: r['id'], transform: r['transform_name'], version: Number(r['transform_version']), function_hash: r['function_hash'],
      params: r['params'], input_hash: r['input_hash'], output_hash: r['output_hash'], rows_in: Number(r['rows_in']),
      rows_out: Number(r['rows_out']), executed_at: executedAt, user: r['user_name'], kind_of_run: r['kind'],
    });
    if (r['parent_id'] === null) {
      const data = `data:${String(r['table_name'])}:${String(r['input_hash'])}`;
      if (!nodes.has(data)) nodes.set(data, { id: data, kind: 'data', label: String(r['table_name']), table: r['table_name'], input_hash: r['input_hash'] });
      edges.push({ from: data, to: id });
    } else {
      edges.push({ from: `execution:${String(r['parent_id'])}`, to: id });
    }
    if (r['chain_end'] === true) {
      const result = `result:${String(r['result_id'])}`;
      results.add(result);
      edges.push({ from: id, to: result });
    }
  }
  if (rows.length === 0) {
    // Nothing transformed the rows: the table's data is the result.
    const data = `data:${read.object}`;
    nodes.set(data, { id: data, kind: 'data', label: read.object, table: read.object, input_hash: null });
    results.add('result:');
    edges.push({ from: data, to: 'result:' });
  }
  for (const r of results) nodes.set(r, { id: r, kind: 'result', label: 'result', result_id: r.slice('result:'.length) || null });
  // Data first, then the executions in the order they ran, then the results: the order data flows in.
  const rank = { data: 0, execution: 1, result: 2 } as const;
  return { object: read.object, as_of: read.asOf, key: read.key, nodes: [...nodes.values()].sort((a, b) => rank[a.kind] - rank[b.kind]), edges };
}

/**
 * Executions in data-flow order: each chain from its first execution along its parents. Their
 * times cannot say it: a chain's executions start within the same millisecond.
 */
export function chainOrder(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  const children = new Map<unknown, Record<string, unknown>[]>();
  const ids = new Set(rows.map((r) => r['id']));
  for (const r of rows) {
    const parent = ids.has(r['parent_id']) ? r['parent_id'] : null;
    children.set(parent, [...(children.get(parent) ?? []), r]);
  }
  const out: Record<string, unknown>[] = [];
  const walk = (parent: unknown): void => {
    for (const r of children.get(parent) ?? []) {
      out.push(r);
      walk(r['id']);
    }
  };
  walk(null);
  return out;
}

function quoted(s: string): string {
  return `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`;
}

/** Graphviz text: data as cylinders, executions as boxes (with their hashes), results as ellipses. */
export function dotOf(l: Lineage): string {
  const lines = [`digraph lineage {`, `  rankdir=LR;`, `  label=${quoted(`${l.object}${l.key ? ` key ${l.key}` : ''}${l.as_of ? ` as of ${l.as_of}` : ''}`)};`];
  for (const n of l.nodes) {
    const short = (h: unknown): string => (typeof h === 'string' ? h.slice(0, 12) : '');
    if (n.kind === 'data') lines.push(`  ${quoted(n.id)} [shape=cylinder, label=${quoted(`${n.label}\n${short(n['input_hash'])}`)}];`);
    else if (n.kind === 'execution') {
      lines.push(`  ${quoted(n.id)} [shape=box, id=${quoted(n.id)}, label=${quoted(`${n.label}\nin ${short(n['input_hash'])}\nout ${short(n['output_hash'])}\n${String(n['rows_out'])} rows`)}];`);
    } else lines.push(`  ${quoted(n.id)} [shape=ellipse, label=${quoted(n.label)}];`);
  }
  for (const e of l.edges) lines.push(`  ${quoted(e.from)} -> ${quoted(e.to)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

let viz: Promise<Viz> | null = null;

/** The picture; Graphviz's WebAssembly is compiled once, at the first one. */
export async function svgOf(l: Lineage): Promise<string> {
  viz ??= instance();
  return (await viz).renderString(dotOf(l), { format: 'svg' });
}
