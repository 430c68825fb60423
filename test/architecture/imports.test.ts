/**
 * The import rules that keep the folder tree the architecture (README, "Architecture"):
 * - a plugin (a folder under plugins/ that is not a shared service) imports its own files, the
 *   seam (plugins/hooks.ts, plugins/services.ts), shared services, proxy/wire, proxy/errors.ts and
 *   sandbox/; never another plugin;
 * - shared services (plugins/shared, plugins/registry, plugins/sql) and the seam import no plugin;
 * - nothing under proxy/ but the composition (proxy/compose.ts) imports a plugin;
 * - sandbox/ imports nothing outside itself.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHARED_SERVICES = new Set(['shared', 'registry', 'sql']);
const COMPOSITION = 'proxy/compose.ts';

interface Part {
  readonly kind: 'plugin' | 'seam' | 'shared' | 'proxy' | 'composition' | 'sandbox' | 'other';
  readonly name: string;
}

function partOf(file: string): Part {
  const [top, second] = file.split('/');
  if (file === COMPOSITION) return { kind: 'composition', name: file };
  if (top === 'proxy') return { kind: 'proxy', name: file };
  if (top === 'sandbox') return { kind: 'sandbox', name: file };
  if (top === 'plugins' && second !== undefined) {
    // Files directly in plugins/ are the seam: hooks.ts, host.ts, services.ts.
    if (!file.slice('plugins/'.length).includes('/')) return { kind: 'seam', name: file };
    if (SHARED_SERVICES.has(second)) return { kind: 'shared', name: second };
    return { kind: 'plugin', name: second };
  }
  return { kind: 'other', name: file };
}

/** Why `from` may not import `to` (repository-relative .ts paths), or null when it may. */
function violation(from: string, to: string): string | null {
  const a = partOf(from);
  const b = partOf(to);
  const wireOrErrors = to.startsWith('proxy/wire/') || to === 'proxy/errors.ts';
  switch (a.kind) {
    case 'sandbox':
      return b.kind === 'sandbox' ? null : 'sandbox/ imports nothing outside itself';
    case 'plugin':
      if (b.kind === 'plugin') return b.name === a.name ? null : `plugin ${a.name} imports plugin ${b.name}'s internals`;
      if (b.kind === 'seam') return to === 'plugins/host.ts' ? 'a plugin does not import the plugin host' : null;
      if (b.kind === 'shared' || b.kind === 'sandbox' || wireOrErrors) return null;
      return `plugin ${a.name} imports ${to}: only the seam, shared services, proxy/wire, proxy/errors.ts and sandbox/`;
    case 'seam':
    case 'shared':
      if (b.kind === 'plugin') return `${from} imports plugin ${b.name}`;
      if (b.kind === 'seam' || b.kind === 'shared' || b.kind === 'sandbox' || wireOrErrors) return null;
      return `${from} imports ${to}: only the seam, shared services, proxy/wire, proxy/errors.ts and sandbox/`;
    case 'proxy':
      return b.kind === 'plugin' ? `${from} imports plugin ${b.name}: only ${COMPOSITION} wires plugins` : null;
    default:
      return null;
  }
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** The repository files a source file imports (packages and node: modules left out). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(ROOT, file), 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
}

describe('import rules', () => {
  it('hold for every source file of proxy/, plugins/ and sandbox/', () => {
    const broken = ['proxy', 'plugins', 'sandbox']
      .flatMap(sourceFiles)
      .flatMap((file) => importsOf(file).map((to) => violation(file, to)))
      .filter((v): v is string => v !== null);
    expect(broken).toEqual([]);
  });

  it('tell the parts apart', () => {
    expect(violation('plugins/provenance/plugin.ts', 'plugins/transforms/plugin.ts')).toMatch(/imports plugin transforms/);
    expect(violation('plugins/timetravel/plugin.ts', 'plugins/transforms/index.ts')).toMatch(/imports plugin transforms/);
    expect(violation('plugins/transforms/plugin.ts', 'plugins/shared/canonical-hash.ts')).toBeNull();
    expect(violation('plugins/transforms/plugin.ts', 'proxy/session.ts')).toMatch(/only the seam/);
    expect(violation('plugins/registry/schema.ts', 'plugins/provenance/execution-insert.ts')).toMatch(/imports plugin provenance/);
    expect(violation('proxy/server.ts', 'plugins/provenance/index.ts')).toMatch(/only proxy\/compose.ts/);
    expect(violation('proxy/compose.ts', 'plugins/provenance/index.ts')).toBeNull();
    expect(violation('proxy/session.ts', 'plugins/host.ts')).toBeNull();
    expect(violation('sandbox/pool.ts', 'proxy/errors.ts')).toMatch(/sandbox/);
  });
});
