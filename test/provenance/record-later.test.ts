/**
 * In async mode without tracing, what a result's records need of its statement (its shape, its
 * span's ids) is worked out once the client has its answer, not before its CommandComplete.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ProvenancePlugin, type Durability } from '../../plugins/provenance/plugin.js';
import { tracingFromEnv } from '../../plugins/provenance/tracing.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import type { SessionInfo, StatementTrace } from '../../plugins/hooks.js';
import type { ResultExecutions } from '../../plugins/services.js';

let sql: SqlAnalyser;
beforeAll(async () => {
  sql = await SqlAnalyser.load();
});

function plugin(durability: Durability): ProvenancePlugin {
  return new ProvenancePlugin({
    durability, recorder: null, tracing: tracingFromEnv({ OTEL_SDK_DISABLED: 'true' }), transformsActive: () => true, proxyId: 'test',
    server: { address: '127.0.0.1', port: null }, storeName: 'none', sql, log: () => {},
  });
}

function session(text: string): SessionInfo {
  const statement: StatementTrace = { text, protocol: 'simple', startedAt: Date.now(), errorCode: null, ended: false, pluginState: new Map() };
  return {
    id: 1, user: 'u', database: 'd', applicationName: '', clientAddress: '127.0.0.1', clientPort: 1, serverParams: new Map(), startupParams: new Map(),
    backendPid: 1, pluginState: new Map(), statementPlugins: new Set(), statement,
  } as unknown as SessionInfo;
}

const RESULT: ResultExecutions = { kind: 'read', executions: [], outcome: 'complete', error: null, roles: [] };
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('recording a read', () => {
  it('async: shapes the statement after the client has its answer', async () => {
    // A comment keeps the text out of the constant-masked cache: shaping it takes the parser.
    const s = session('SELECT a FROM later_async WHERE b = 1 /* c */');
    const before = sql.parses;
    plugin('async').record(s, RESULT);
    expect(sql.parses - before).toBe(0);
    await nextTurn();
    await nextTurn();
    expect(sql.parses - before).toBeGreaterThan(0);
  });

  it('sync: shapes the statement before the client\'s answer', async () => {
    const s = session('SELECT a FROM later_sync WHERE b = 1 /* c */');
    const before = sql.parses;
    await plugin('sync').record(s, RESULT);
    expect(sql.parses - before).toBeGreaterThan(0);
  });
});
