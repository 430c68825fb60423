/**
 * Transforms kept as files: each `NAME.js` in the transforms directory is one transform, with its
 * registration in comment directives at the top:
 *
 *     // @target public.customers
 *     // @columns email, phone        (omit for a row transform)
 *     // @params {"keep": 2}          (omit for {})
 *     (value, params, ctx) => value.slice(0, params.keep) + '***'
 *
 * On start every file is compared with the version in force, and registered anew only when its
 * target, columns, parameters or source changed. Files are never dropped automatically: several
 * proxies may share a database with different directories.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SqlRunner } from './migrate.js';

export interface TransformFile {
  readonly name: string;
  readonly target: string;
  readonly columns: string[] | null;
  readonly params: Record<string, unknown>;
  readonly source: string;
}

const DIRECTIVE = /^\s*\/\/\s*@(\w+)\s+(.*?)\s*$/;

export function parseTransformFile(name: string, text: string): TransformFile {
  const lines = text.split(/\r?\n/);
  const directives = new Map<string, string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const m = DIRECTIVE.exec(line);
    if (!m) break;
    directives.set(m[1]!, m[2]!);
  }
  const target = directives.get('target');
  if (!target) throw new Error(`${name}: missing "// @target schema.table" directive`);
  const columns = directives.get('columns');
  let params: Record<string, unknown> = {};
  const p = directives.get('params');
  if (p !== undefined) {
    const parsed: unknown = JSON.parse(p);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${name}: @params must be a JSON object`);
    params = parsed as Record<string, unknown>;
  }
  const source = lines.slice(i).join('\n').trim();
  if (source === '') throw new Error(`${name}: no function after the directives`);
  return {
    name,
    target,
    columns: columns === undefined ? null : columns.split(',').map((c) => c.trim()).filter((c) => c !== ''),
    params,
    source,
  };
}

/** Register the directory's transforms that differ from what is in force. Returns what changed. */
export async function syncTransformFiles(db: SqlRunner, dir: string, log: (msg: string) => void): Promise<string[]> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((f) => f.endsWith('.js')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const changed: string[] = [];
  for (const file of entries) {
    const name = file.slice(0, -3);
    try {
      const t = parseTransformFile(name, await readFile(path.join(dir, file), 'utf8'));
      // The proxy's own connection searches only pg_catalog: a bare table name means public's.
      const target = t.target.includes('.') ? t.target : `public.${t.target}`;
      const { rows } = await db.query(
        `SELECT 1 FROM provenance.transforms
          WHERE name = $1 AND target_oid = $2::pg_catalog.regclass::pg_catalog.oid AND columns IS NOT DISTINCT FROM $3::pg_catalog.text[]
            AND params = $4::pg_catalog.jsonb AND source = $5`,
        [t.name, target, t.columns, JSON.stringify(t.params), t.source],
      );
      if (rows.length > 0) continue;
      await db.query('SELECT provenance.register_transform($1, $2::pg_catalog.regclass, $3::pg_catalog.text[], $4, $5::pg_catalog.jsonb, $6)', [
        t.name, target, t.columns, t.source, JSON.stringify(t.params), `file:${file}`,
      ]);
      changed.push(t.name);
    } catch (err) {
      log(`transforms directory: ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return changed;
}
