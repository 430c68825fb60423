/**
 * What an HTTP caller sees when a request fails: a status and `{ code, message }`, the code a
 * SQLSTATE (PostgreSQL manual, Appendix A). Nothing else leaves the process: no stack, no detail
 * of an error that is not the caller's to see.
 */

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'HttpError';
  }

  body(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Classes of SQLSTATE that say the request itself was wrong: data exceptions, syntax, names. */
const BAD_INPUT = /^(22|42601|42602|42622|42P10)/;

/** The status of a PostgreSQL error met while serving a request. */
export function statusOf(code: string, phase: 'setup' | 'read'): number {
  if (code === '28P01' || code === '28000') return 401;
  if (code === '42501') return 403;
  if (code === '42P01' || code === '3F000') return 404;
  if (code === '57P03' || code.startsWith('08') || code === '53300' || code === '57P01') return 503;
  // A moment time travel cannot serve (before a table's history, in the future) is 22023 at the read.
  if (code === '22023' && phase === 'read') return 409;
  // A table in no state to serve the read (one time travel does not track, say).
  if (code === '55000') return 409;
  // A write while reading as of a moment (a replayed statement that writes).
  if (code === '25006') return 409;
  if (code === '0A000') return 501;
  if (BAD_INPUT.test(code)) return 400;
  return 500;
}

/** Any error met while serving a request, as the caller may see it. */
export function toHttpError(err: unknown, phase: 'setup' | 'read' = 'read'): HttpError {
  if (err instanceof HttpError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    const message = err instanceof Error ? err.message : String(err);
    const status = statusOf(code, phase);
    // A server-side failure's words may name internals: only errors about the request are shown.
    return status === 500 ? new HttpError(500, code, 'internal error') : new HttpError(status, code, message);
  }
  return new HttpError(500, 'XX000', 'internal error');
}
