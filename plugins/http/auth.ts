/** HTTP Basic credentials (RFC 7617): the PostgreSQL user and password a request logs in with. */
import { HttpError } from './errors.js';

export const REALM = 'provenance-proxy';

export interface Credentials {
  readonly user: string;
  readonly password: string;
}

/** The credentials of an `Authorization: Basic base64(user:password)` header; a 401 without them. */
export function basicCredentials(header: string | undefined): Credentials {
  const m = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) throw new HttpError(401, '28000', 'authentication required: HTTP Basic with a PostgreSQL user and password');
  const text = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
  const colon = text.indexOf(':');
  const user = colon < 0 ? text : text.slice(0, colon);
  if (user === '') throw new HttpError(401, '28000', 'authentication required: HTTP Basic with a PostgreSQL user and password');
  return { user, password: colon < 0 ? '' : text.slice(colon + 1) };
}
