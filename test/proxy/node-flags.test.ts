/** Every way of starting the proxy passes it the same Node.js flags. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../proxy/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('the Node.js flags of the proxy', () => {
  it('are the ones npm start uses', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toBe(['node', ...NODE_FLAGS, 'dist/proxy/cli.js'].join(' '));
  });

  it("are the ones the Dockerfile's ENTRYPOINT uses", () => {
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
    expect(entry).not.toBeNull();
    expect(JSON.parse(entry![1]!)).toEqual(['node', ...NODE_FLAGS, 'dist/proxy/cli.js']);
  });
});
