/**
 * Registry changes reach a proxy by NOTIFY, a moment after the change commits: read until the
 * expected state shows (or the time is up, and the caller's assertion reports what it saw).
 */
export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}
