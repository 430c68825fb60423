/** Every way of starting the proxy passes it the same Node.js flags. */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { ALLOCATOR_ENV, missingNodeFlags, NODE_FLAGS } from '../../proxy/node-flags.js';
import { startCli } from '../support/cli-process.js';
import { freshDataDir } from '../support/proxy-matrix.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('the Node.js flags of the proxy', () => {
  it('are the ones npm start uses', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const env = Object.entries(ALLOCATOR_ENV).map(([k, v]) => `${k}=${v}`);
    expect(pkg.scripts['start']).toBe([...env, 'node', ...NODE_FLAGS, 'dist/proxy/cli.js'].join(' '));
  });

  it("are the ones the Dockerfile's ENTRYPOINT uses", () => {
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
    expect(entry).not.toBeNull();
    expect(JSON.parse(entry![1]!)).toEqual(['node', ...NODE_FLAGS, 'dist/proxy/cli.js']);
  });

  it("come with the allocator's environment, in npm start and the Dockerfile", () => {
    const docker = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const env = Object.entries(ALLOCATOR_ENV).map(([k, v]) => `${k}=${v}`);
    expect(docker).toContain(`\nENV ${env.join(' ')}\n`);
  });
});

describe('missingNodeFlags', () => {
  it('names the flags not given, by name, on the command line or in NODE_OPTIONS', () => {
    expect(missingNodeFlags([], '')).toEqual([...NODE_FLAGS]);
    expect(missingNodeFlags([...NODE_FLAGS], '')).toEqual([]);
    expect(missingNodeFlags(['--no-node-snapshot', '--max-semi-space-size=64'], '')).toEqual([]);
    expect(missingNodeFlags([], '--no-node-snapshot  --max-semi-space-size=16')).toEqual([]);
    expect(missingNodeFlags(['--no-node-snapshot'], '')).toEqual(['--max-semi-space-size=32']);
  });
});

/** The processes a process started, from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
}

describe('the installed provenance-proxy binary', () => {
  it('runs itself again with its Node.js flags, serves through that process, and exits as it does', async () => {
    const dir = freshDataDir();
    // As `#!/usr/bin/env node` starts it: no flags at all, nor the allocator's environment.
    const unset = Object.fromEntries(Object.keys(ALLOCATOR_ENV).map((k) => [k, undefined]));
    const proxy = await startCli(['--listen', '127.0.0.1:0', '--data-dir', dir], unset, []);
    try {
      const children = childrenOf(proxy.child.pid!);
      expect(children).toHaveLength(1);
      const argv = readFileSync(`/proc/${children[0]}/cmdline`, 'utf8').split('\0');
      expect(argv.slice(1, 1 + NODE_FLAGS.length)).toEqual([...NODE_FLAGS]);
      const environ = readFileSync(`/proc/${children[0]}/environ`, 'utf8').split('\0');
      for (const [k, v] of Object.entries(ALLOCATOR_ENV)) expect(environ).toContain(`${k}=${v}`);
      // A transform runs in the relaunched process, whose sandbox needs the flags.
      const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'postgres', database: 'postgres' });
      c.on('error', () => undefined);
      await c.connect();
      try {
        await c.query("CREATE TABLE relaunch_t (v text); INSERT INTO relaunch_t VALUES ('quiet')");
        await c.query("SELECT provenance.register_transform('relaunch_upper', 'relaunch_t', ARRAY['v'], '(v) => v.toUpperCase()')");
        const { rows } = await c.query<{ v: string }>('SELECT v FROM relaunch_t');
        expect(rows).toEqual([{ v: 'QUIET' }]);
      } finally {
        await c.end();
      }
    } finally {
      proxy.child.kill('SIGTERM');
      expect(await proxy.exited).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
