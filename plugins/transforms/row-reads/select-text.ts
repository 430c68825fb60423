/**
 * Where a SELECT's parts are in the client's text, and how its FROM items are referred to: what
 * the rewrite needs to splice columns into a select list without changing anything else.
 */
import type { SqlAnalyser } from '../../sql/analyser.js';
import { EXTRA_PREFIX } from './extra-columns.js';
import type { RangeVarBody, SelectBody } from './select-forms.js';

export type Tokens = ReturnType<SqlAnalyser['tokens']>;

export const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** The names a RangeVar's columns are referred to by in its SELECT: its alias, or its (schema-qualified) name. */
export function refOf(rv: RangeVarBody): string[] {
  if (rv.alias?.aliasname !== undefined) return [rv.alias.aliasname];
  return rv.schemaname === undefined ? [rv.relname ?? ''] : [rv.schemaname, rv.relname ?? ''];
}

/** Columns of a RangeVar the select list already holds as plain references (`*`, `t.*`, `t.c`, or `c` when it is the only table). */
export function selected(s: SelectBody, rv: RangeVarBody, only: boolean): Set<string> | 'all' {
  const ref = refOf(rv);
  const out = new Set<string>();
  for (const t of s.targetList ?? []) {
    if (!('ResTarget' in t)) continue;
    const v = t.ResTarget.val;
    if (v === undefined || !('ColumnRef' in v)) continue;
    const parts = (v.ColumnRef.fields ?? []).map((f) => ('String' in f ? f.String.sval ?? '' : 'A_Star' in f ? '*' : '\u0000'));
    const last = parts.at(-1)!;
    const qualifier = parts.slice(0, -1);
    const mine = qualifier.length === 0 ? only || last === '*' : qualifier.length === ref.length && qualifier.every((p, i) => p === ref[i]);
    if (!mine) continue;
    if (last === '*') return 'all';
    out.add(last);
  }
  return out;
}

/**
 * The select list's stars and whose columns they expand: `*` every FROM item's, `x.*` those of
 * the item referred to as x. Columns the rewrite adds to a nested SELECT reach the output through them.
 */
export function stars(s: SelectBody): ('*' | string)[] {
  const out: string[] = [];
  for (const t of s.targetList ?? []) {
    if (!('ResTarget' in t)) continue;
    const v = t.ResTarget.val;
    if (v === undefined || !('ColumnRef' in v)) continue;
    const fields = v.ColumnRef.fields ?? [];
    const last = fields.at(-1);
    if (last === undefined || !('A_Star' in last)) continue;
    const q = fields.at(-2);
    out.push(fields.length === 1 ? '*' : q !== undefined && 'String' in q ? q.String.sval ?? '' : '');
  }
  return out;
}

/** Where the select list of `s` ends in the text (UTF-8 byte offset), found with the server's tokens. */
export function selectListEnd(s: SelectBody, tokens: Tokens): number | null {
  const last = s.targetList?.at(-1);
  if (tokens === null || last === undefined || !('ResTarget' in last) || last.ResTarget.location === undefined) return null;
  const from = last.ResTarget.location;
  let depth = 0;
  let prev: { end: number; text: string } | null = null;
  for (const t of tokens) {
    if (t.start < from) continue;
    const word = t.text.toLowerCase();
    if (t.text === '(' || t.text === '[') depth++;
    else if (t.text === ')' || t.text === ']') {
      if (depth === 0) return null;
      depth--;
    } else if (depth === 0 && t.keyword && word === 'from' && prev?.text.toLowerCase() !== 'distinct') {
      return prev === null ? null : prev.end;
    }
    prev = t;
  }
  return null;
}

/** A parse tree without locations and without the columns the rewrite added, to compare a rewritten text with the client's. */
export function withoutLocations(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutLocations);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'location' || k === 'stmt_location' || k === 'stmt_len') continue;
    if (k === 'targetList' && Array.isArray(v)) {
      out[k] = withoutLocations(v.filter((t: { ResTarget?: { name?: string } }) => !(t.ResTarget?.name ?? '').startsWith(EXTRA_PREFIX)));
      continue;
    }
    out[k] = withoutLocations(v);
  }
  return out;
}
