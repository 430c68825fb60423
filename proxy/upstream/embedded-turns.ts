/**
 * One turn of a session on the embedded backend: its messages are rewritten for the shared
 * backend (prepared statement names made per session, a `pp<id>_` prefix, the unnamed one
 * included, so two clients' "s1" never collide), and what comes back is routed (notifications
 * to the sessions listening, setting changes reported as a server reports them).
 */
import { PgError, SqlState } from '../errors.js';
import { Backend, Frontend } from '../wire/codes.js';
import { wholeFrames } from '../wire/server-scanner.js';
import { decodeReadyForQuery } from '../wire/backend-decoders.js';
import { errorResponse, readyForQuery, type TxStatus } from '../wire/backend-messages.js';
import {
  decodeBindHead, decodeParse, decodeQuery, decodeTarget, encodeBindHead, encodeParse, encodeTarget,
} from '../wire/frontend-messages.js';
import type { EmbeddedBackend } from './embedded-backend.js';
import type { EmbeddedChannels } from './embedded-channels.js';
import type { EmbeddedLink } from './embedded-link.js';
import type { EmbeddedLogins } from './embedded-login.js';
import type { EmbeddedSql } from './embedded-sql.js';

export class EmbeddedTurns {
  constructor(
    private readonly backend: EmbeddedBackend<EmbeddedLink>,
    private readonly sql: EmbeddedSql,
    private readonly channels: EmbeddedChannels,
    private readonly logins: EmbeddedLogins,
  ) {}

  /** Send frames to the backend, rewritten for this session; route what comes back. */
  async exec(link: EmbeddedLink, frames: Buffer[]): Promise<void> {
    const last = frames[frames.length - 1]!;
    if (link.cancelRequested) {
      link.cancelRequested = false;
      if (last[0] === Frontend.Query || last[0] === Frontend.Sync) {
        link.events.data(Buffer.concat([
          errorResponse(new PgError(SqlState.QueryCanceled, 'canceling statement due to user request')),
          readyForQuery(this.backend.db.isInTransaction() ? 'T' : 'I'),
        ]));
        return;
      }
    }
    const sent: Buffer[] = [];
    let unlisten = false;
    let sessionSet: string | null = null;
    let settingsMayChange = false;
    for (const f of frames) {
      switch (f[0]) {
        case Frontend.Query: {
          const text = decodeQuery(f);
          unlisten = this.channels.track(link, text) || unlisten;
          sessionSet = this.sql.sessionSet(text) ?? sessionSet;
          settingsMayChange ||= this.sql.changesSettings(text);
          sent.push(f);
          break;
        }
        case Frontend.Parse: {
          const m = decodeParse(f);
          unlisten = this.channels.track(link, m.text) || unlisten;
          if (m.paramTypes.length === 0) sessionSet = this.sql.sessionSet(m.text) ?? sessionSet;
          settingsMayChange ||= this.sql.changesSettings(m.text);
          const name = link.statementName(m.name);
          if (m.name === '') {
            // The unnamed statement is replaced by each Parse; a named one must be closed first.
            sent.push(encodeTarget(Frontend.Close, { target: 'S', name }));
            link.dropCloseCompletes++;
          }
          link.statements.add(name);
          sent.push(encodeParse({ ...m, name }));
          break;
        }
        case Frontend.Bind: {
          const b = decodeBindHead(f);
          sent.push(encodeBindHead({ ...b, statement: link.statementName(b.statement) }));
          break;
        }
        case Frontend.Describe:
        case Frontend.Close: {
          const t = decodeTarget(f);
          if (t.target === 'S') {
            const name = link.statementName(t.name);
            if (f[0] === Frontend.Close) link.statements.delete(name);
            sent.push(encodeTarget(f[0], { target: 'S', name }));
          } else sent.push(f);
          break;
        }
        case Frontend.Password:
          // A server ends the session for this (invalid frontend message type); PGlite never returns from it.
          throw new PgError(SqlState.ProtocolViolation, `invalid frontend message type ${Frontend.Password}`, 'FATAL');
        case Frontend.CopyData:
        case Frontend.CopyDone:
        case Frontend.CopyFail:
          // Only meaningful inside COPY FROM STDIN, which is handled apart; a stray one is ignored, as a server does.
          break;
        default:
          sent.push(f);
      }
    }
    if (sent.length === 0) return;
    const out = await this.backend.raw(Buffer.concat(sent));
    const kept: Buffer[] = [];
    let status: TxStatus | null = null;
    let failed = false;
    for (const { code, raw: m } of wholeFrames(out)) {
      switch (code) {
        case Backend.CloseComplete:
          if (link.dropCloseCompletes > 0) {
            link.dropCloseCompletes--;
            continue;
          }
          break;
        case Backend.NotificationResponse:
          this.channels.route(link, m, kept);
          continue;
        case Backend.ErrorResponse:
          failed = true;
          break;
        case Backend.ReadyForQuery:
          status = decodeReadyForQuery(m);
          link.dropCloseCompletes = 0;
          break;
      }
      kept.push(m);
    }
    if (sessionSet && !failed && status === 'I') link.sessionSets.push(sessionSet.trim().replace(/;$/, ''));
    // PGlite does not report setting changes itself: a server sends ParameterStatus before ReadyForQuery.
    if (settingsMayChange) {
      const changed = await this.logins.reportChanges(link);
      const z = kept.findLastIndex((m) => m[0] === Backend.ReadyForQuery);
      kept.splice(z < 0 ? kept.length : z, 0, ...changed);
    }
    if (unlisten) await this.channels.relisten();
    // Idle again (the unit is over and no transaction is open): others may have the backend.
    const unitOver = last[0] === Frontend.Query || last[0] === Frontend.Sync || last[0] === Frontend.FunctionCall;
    this.backend.owner = unitOver && status === 'I' ? null : link;
    if (!link.closed && kept.length > 0) link.events.data(Buffer.concat(kept));
  }
}
