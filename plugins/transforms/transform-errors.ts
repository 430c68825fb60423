/** What a client is told when a transform fails, or a replay does not reproduce its record. */
import { PgError, SqlState } from '../../proxy/errors.js';
import { SandboxError } from '../../sandbox/index.js';
import { CodecError } from '../shared/codecs/codecs.js';
import type { ReplayMismatch } from '../services.js';
import type { BoundTransform } from './registry-cache.js';

export function sandboxError(err: unknown, t: BoundTransform): PgError {
  if (err instanceof SandboxError) {
    const code =
      err.kind === 'timeout' ? SqlState.QueryCanceled
        : err.kind === 'memory' ? '53200'
          : err.kind === 'compile' ? '42P13'
            : SqlState.ExternalRoutineException;
    return new PgError(code, `${err.message} (transform ${t.name} version ${t.version})`);
  }
  if (err instanceof CodecError) {
    return new PgError('22000', `transform "${t.name}" version ${t.version} returned a value that does not fit: ${err.message}`);
  }
  if (err instanceof PgError) return err;
  return new PgError(SqlState.ExternalRoutineException, `transform "${t.name}" version ${t.version} failed: ${err instanceof Error ? err.message : String(err)}`);
}

/** What the client is warned of: replayed executions that did not reproduce the recorded ones. */
export function mismatchWarnings(mismatches: readonly ReplayMismatch[]): PgError[] {
  return mismatches.map((m) => new PgError('01000',
    `replayed execution ${m.replay} of transform "${m.transform.name}" version ${m.transform.version} did not reproduce recorded execution ${m.recorded}: output hash ${m.output}, recorded ${m.recordedOutput}`,
    'WARNING', { hint: 'The record, the stored history or the transform\'s determinism is not what it should be; see provenance.executions (verified = false).' }));
}

