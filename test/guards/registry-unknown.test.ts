/**
 * While the registry cannot be read, a session that was watched for guards is refused (57P03)
 * rather than left unchecked, and it is checked again once the registry is back. The registry's
 * loss is made here by hand: the plugin is driven directly, with PostgreSQL's parser.
 */
import { expect, it } from 'vitest';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { GuardsPlugin } from '../../plugins/transforms/guards/plugin.js';
import type { Registry } from '../../plugins/transforms/registry-cache.js';
import type { SessionInfo } from '../../plugins/hooks.js';
import { sandboxFunction } from '../../sandbox/index.js';

const REGISTRY: Registry = {
  refused: new Map(),
  tables: new Map([[16500, {
    oid: 16500,
    name: 'public.customers',
    columnNames: new Map([[1, 'id'], [2, 'email']]),
    chain: [{
      name: 'mask_email', version: 2, fn: sandboxFunction('mask_email', 'column', '(v) => v'), params: {}, position: 1,
      columns: new Set([2]), reads: null, guard: 'values', exempt: [],
    }],
  }]]),
};

function session(): SessionInfo {
  return {
    id: 1, user: 'alice', database: 'app', applicationName: '', clientAddress: '127.0.0.1', clientPort: 1, backendPid: 1,
    // As PostgreSQL 18 reports it: no catalog query is needed for the path.
    serverParams: new Map([['search_path', '"$user", public']]), startupParams: new Map(), pluginState: new Map(),
    statementPlugins: new Set(), statement: null,
  };
}

it('refuses statements of watched sessions while the registry is unknown, and watches them again after', async () => {
  const sql = await SqlAnalyser.load();
  let registry: Registry | null = REGISTRY;
  const plugin = new GuardsPlugin({ sql, registry: () => registry, store: () => null, roles: () => Promise.resolve(['alice']) });
  const s = session();
  plugin.sessionStart(s);
  expect(s.statementPlugins.has('guards')).toBe(true);
  registry = null;
  plugin.registryChanged();
  expect(s.statementPlugins.has('guards')).toBe(true);
  const refused = await plugin.statement(s, { kind: 'query', text: 'SELECT 1' });
  expect(refused).toMatchObject({ action: 'deny', error: { code: '57P03' } });
  // Back without any guard: the session leaves the statement path.
  registry = { refused: new Map(), tables: new Map() };
  plugin.registryChanged();
  expect(s.statementPlugins.has('guards')).toBe(false);
});
