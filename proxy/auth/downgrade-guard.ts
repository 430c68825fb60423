/**
 * libpq with sslmode=prefer (its default) answers any error during a TLS login by trying again
 * without TLS at once. When the proxy had to refuse a TLS login it cannot relay (a SCRAM client
 * that could bind, toward a server that binds, see proxied-login.ts), that retry would log the
 * client in unencrypted with nobody having chosen it; so the same client address, user and
 * database are refused a plain login for a few seconds after such a refusal.
 */
const WINDOW_MS = 3_000;

export class DowngradeGuard {
  private readonly refusedAt = new Map<string, number>();

  /** A TLS login of this client was refused for a reason an unencrypted retry would evade. */
  refused(address: string, user: string, database: string): void {
    const now = Date.now();
    for (const [k, t] of this.refusedAt) if (now - t > WINDOW_MS) this.refusedAt.delete(k);
    this.refusedAt.set(key(address, user, database), now);
  }

  /** Whether a plain login now looks like the retry of such a refused one. */
  isRetry(address: string, user: string, database: string): boolean {
    const t = this.refusedAt.get(key(address, user, database));
    return t !== undefined && Date.now() - t <= WINDOW_MS;
  }
}

function key(address: string, user: string, database: string): string {
  return `${address}\0${user}\0${database}`;
}
