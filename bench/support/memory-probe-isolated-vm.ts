/**
 * isolated-vm as the memory probe hands it to the proxy (see memory-probe-hooks.ts): the same
 * module, but each Isolate is recorded in a set the probe reads (isolated-vm's own exports are
 * frozen, so its class cannot be wrapped in place).
 */
import ivm from 'isolated-vm';

export const PROBE_ISOLATES = Symbol.for('provenance-proxy.memory-probe.isolates');

function registry(): Set<WeakRef<ivm.Isolate>> {
  const g = globalThis as { [PROBE_ISOLATES]?: Set<WeakRef<ivm.Isolate>> };
  return (g[PROBE_ISOLATES] ??= new Set());
}

class TrackedIsolate extends ivm.Isolate {
  constructor(options?: ivm.IsolateOptions) {
    super(options);
    registry().add(new WeakRef(this));
  }
}

export default Object.freeze({ ...Object.fromEntries(Object.entries(Object.getPrototypeOf(ivm) as object)), Isolate: TrackedIsolate });
