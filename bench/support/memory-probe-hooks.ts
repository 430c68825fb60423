/**
 * Module resolution hook of the memory probe (memory-probe.ts): the proxy's imports of isolated-vm
 * get memory-probe-isolated-vm.js instead, which records every isolate it creates. That module's
 * own import of isolated-vm gets the real one.
 */
interface ResolveContext {
  readonly parentURL?: string;
}
interface ResolveResult {
  readonly url: string;
  readonly shortCircuit?: boolean;
}

const WRAPPER = new URL('./memory-probe-isolated-vm.js', import.meta.url).href;

export async function resolve(
  specifier: string,
  context: ResolveContext,
  next: (specifier: string, context: ResolveContext) => Promise<ResolveResult>,
): Promise<ResolveResult> {
  if (specifier === 'isolated-vm' && context.parentURL !== WRAPPER) return { url: WRAPPER, shortCircuit: true };
  return next(specifier, context);
}
