/**
 * The SQL analyser's parser (libpg-query) is a WebAssembly module. With V8's defaults its hot
 * functions are compiled again by the optimising tier in the background once a few statements
 * have been parsed, and that compilation leaves 20 to 30 MiB resident for good (its code and the
 * C heap its compiler used). NODE_FLAGS keep the module on its baseline code.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS, withAllocatorEnv } from '../../proxy/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Loads the parser, parses distinct statements until it is hot, waits for background work, prints the RSS growth in MiB. */
const SCRIPT = `
import { readFileSync } from 'node:fs';
import { loadModule, parseSync } from 'libpg-query';
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
await loadModule();
parseSync('SELECT 1');
const before = rss();
for (let i = 0; i < 3000; i++) {
  parseSync(\`SELECT a.email, b.id, lower(a.x) || 'k\${i}' FROM t a JOIN u b USING (id) WHERE a.id = $1 AND b.z IN (1, 2, \${i}) ORDER BY 1 LIMIT \${i}\`);
  if (i % 500 === 0) await new Promise((r) => setTimeout(r, 200));
}
await new Promise((r) => setTimeout(r, 2000));
process.stdout.write(String(rss() - before));
`;

describe('the SQL parser under the proxy’s Node.js flags', () => {
  it('keeps its resident memory once hot', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', SCRIPT], {
      cwd: ROOT,
      env: withAllocatorEnv(process.env),
    });
    // 6 to 8 MiB on baseline code; 17 to 28 where the optimising tier compiled it (measured here).
    expect(Number(stdout)).toBeLessThan(12);
  }, 60_000);
});
