/**
 * Builds the sandbox module and a child script into a temporary directory as plain JavaScript, so a
 * test can run them in a child `node --no-node-snapshot` of its own. Hostile cases need a process
 * each, and one the test can kill: after a catastrophic V8 error the wedged isolate thread can keep
 * the process from exiting.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface ChildBuild {
  /** The built child script, given as a path relative to the repository (e.g. test/sandbox/support/x.ts). */
  script(relative: string): string;
  remove(): void;
}

function transpile(relative: string, outDir: string): void {
  const source = readFileSync(path.join(ROOT, relative), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    fileName: relative,
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  const out = path.join(outDir, relative.replace(/\.ts$/, '.js'));
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, outputText);
}

export function buildForChild(scripts: readonly string[]): ChildBuild {
  const dir = mkdtempSync(path.join(tmpdir(), 'sandbox-child-'));
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
  // Bare imports (isolated-vm) resolve through the repository's own node_modules.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  for (const file of readdirSync(path.join(ROOT, 'sandbox'))) {
    if (file.endsWith('.ts')) transpile(`sandbox/${file}`, dir);
  }
  for (const script of scripts) transpile(script, dir);
  return {
    script: (relative) => path.join(dir, relative.replace(/\.ts$/, '.js')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
