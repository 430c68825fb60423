/**
 * The answer to client input the proxy could not process. A decoder of client bytes throws a
 * FATAL 08P01; anything else thrown on that path is a fault of the proxy. Either way the proxy no
 * longer knows where the client is in the protocol, so the connection ends with a FATAL error,
 * and only that connection: the guard that calls this is per connection.
 */
import { PgError, SqlState } from './errors.js';

export function clientInputError(err: unknown): PgError {
  if (err instanceof PgError) return err.fatal ? err : new PgError(err.code, err.message, 'FATAL', err.fields);
  const message = err instanceof Error ? err.message : String(err);
  return new PgError(SqlState.InternalError, `could not process the client's message: ${message}`, 'FATAL');
}
