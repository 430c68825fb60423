/**
 * md5 password authentication. The server stores "md5" + md5(password + user) and asks for
 * "md5" + md5(hex(stored hash) + salt): knowing the stored hash is enough to answer, so the
 * proxy checks the client's answer to its own salt and answers the server's salt itself.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The 32 hex digits of a stored md5 hash, or null when the secret is not one. */
export function parseMd5Secret(secret: string): string | null {
  return /^md5[0-9a-f]{32}$/.test(secret) ? secret.slice(3) : null;
}

export function md5Response(storedHex: string, salt: Buffer): string {
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(storedHex), salt])).digest('hex');
}

export function md5Matches(storedHex: string, salt: Buffer, response: string): boolean {
  const expected = Buffer.from(md5Response(storedHex, salt));
  const got = Buffer.from(response);
  return got.length === expected.length && timingSafeEqual(got, expected);
}
