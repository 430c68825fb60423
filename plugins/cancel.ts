/**
 * A CancelRequest reaches the plugins too: a statement the proxy answers itself runs in a plugin,
 * where the upstream's cancel cannot stop it. Each hook runs under a guard, as every hook does.
 */
import type { PluginHost } from './host.js';
import type { SessionInfo } from './hooks.js';

export function cancelRequested(host: PluginHost, s: SessionInfo, log: (msg: string) => void): void {
  for (const p of host.plugins) {
    try {
      p.cancel?.(s);
    } catch (err) {
      log(`plugin ${p.name}: cancel hook failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
