/** The server side of a session against hand-built upstream bytes. */
import { describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { PluginHost } from '../../plugins/host.js';
import { PgError } from '../../proxy/errors.js';
import { AnswerFollower } from '../../proxy/portals.js';
import { ClientOutput } from '../../proxy/client-output.js';
import { ServerRelay } from '../../proxy/server-relay.js';
import { StatementTraces } from '../../proxy/statement-traces.js';
import type { SessionParts, SessionState, Unit } from '../../proxy/session-parts.js';
import { commandComplete, readyForQuery } from '../../proxy/wire/backend-messages.js';

function relay(): { relay: ServerRelay; failed: PgError[]; written: Buffer[] } {
  const failed: PgError[] = [];
  const written: Buffer[] = [];
  const info: SessionState = {
    id: 1, user: 'u', database: 'd', applicationName: '', clientAddress: '127.0.0.1', clientPort: 1, serverParams: new Map(),
    startupParams: new Map(), backendPid: 0, pluginState: new Map(), statementPlugins: new Set(), statement: null,
  };
  const plugins = new PluginHost([], { log: () => undefined } as unknown as ConstructorParameters<typeof PluginHost>[1]);
  const units: Unit[] = [];
  const socket = { destroyed: false, writableNeedDrain: false, write: (b: Buffer) => written.push(b) > 0, cork: () => undefined, uncork: () => undefined };
  const owner = { isClosed: false, serverBusy: false, link: null, clientNeedsDrain: false, keyData: () => undefined, fail: (e: PgError) => void failed.push(e), emitLocalUnits: () => undefined, pauseUpstream: () => undefined };
  const parts: SessionParts = {
    info, plugins, units, answers: new AnswerFollower(),
    traces: new StatementTraces(plugins, info, new Map(), units),
    output: new ClientOutput(socket as unknown as Socket, owner),
  };
  return { relay: new ServerRelay(parts, owner), failed, written };
}

describe('server relay', () => {
  it('ends the session with 08P01, rather than throwing, on an ErrorResponse cut short inside its length', () => {
    const r = relay();
    r.relay.ready = true;
    // An ErrorResponse whose fields run to its end without their terminating zero byte.
    const body = Buffer.from('SERROR\0C42601', 'latin1');
    const bad = Buffer.alloc(5 + body.length);
    bad[0] = 0x45;
    bad.writeInt32BE(4 + body.length, 1);
    body.copy(bad, 5);
    expect(() => r.relay.data(bad)).not.toThrow();
    expect(r.failed).toHaveLength(1);
    expect(r.failed[0]).toMatchObject({ code: '08P01', severity: 'FATAL' });
  });

  it('passes a well-formed answer through', async () => {
    const r = relay();
    r.relay.ready = true;
    r.relay.data(Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(r.failed).toEqual([]);
    expect(Buffer.concat(r.written)).toEqual(Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]));
  });
});
