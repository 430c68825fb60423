/** One isolate: its context, the bootstrapped runner, and how its failures are told apart. */
import ivm from 'isolated-vm';
import type { SandboxErrorKind } from './errors.js';
import type { RuntimePayload } from './protocol.js';
import { RUNTIME_SOURCE } from './runtime.js';

/** The bootstrap freezes a few thousand intrinsics; it takes milliseconds, this is only a backstop. */
const BOOTSTRAP_TIMEOUT_MS = 10_000;
/**
 * How long past its timeout a batch may go unanswered before the isolate is presumed wedged (V8
 * could not terminate it). Generous: the timeout only starts once the isolate's thread picks the
 * batch up, threads are shared when there are more isolates than cores, and isolated-vm itself
 * waits 5 s for a terminated script before reporting that it would not stop.
 */
const WATCHDOG_GRACE_MS = 10_000;

/** isolated-vm's message when the `timeout` option stopped a script. */
const TIMED_OUT = 'Script execution timed out.';

/** A batch failure seen from the host side of the isolate. */
export class IsolateFailure extends Error {
  constructor(
    readonly kind: SandboxErrorKind,
    message: string,
    /** The isolate must not run another batch. */
    readonly retire: boolean,
  ) {
    super(message);
    this.name = 'IsolateFailure';
  }
}

/** The runtime's `run` (one payload), or the batch runner (several). */
type Runner = ivm.Reference<(...payloads: RuntimePayload[]) => unknown>;

/**
 * Runs several batches in one call into the isolate: each crossing costs a thread hop of a few
 * hundred microseconds, more than a small batch's work. It calls the runtime's own `run` (reached
 * through the reference the host holds) for each payload in turn; transform code never sees it.
 */
const MANY_SOURCE = `const run = $0.deref();
return function runMany() {
  const out = [];
  for (let i = 0; i < arguments.length; i++) out[i] = run(arguments[i]);
  return out;
};`;

export type LostHandler = (isolate: SandboxIsolate, message: string) => void;

export class SandboxIsolate {
  #lost = false;
  #abort: ((failure: IsolateFailure) => void) | undefined;

  private constructor(
    private readonly isolate: ivm.Isolate,
    private readonly runner: Runner,
    private readonly many: Runner,
    private readonly memoryMb: number,
  ) {}

  /**
   * `onLost` is called when V8 reports a catastrophic error (an allocation it could not satisfy at
   * all). Such an isolate's thread never comes back: its batch is failed here, and the isolate is
   * never used or touched again (isolated-vm says its resources are unrecoverable).
   */
  static async create(memoryMb: number, onLost: LostHandler): Promise<SandboxIsolate> {
    let created: SandboxIsolate | undefined;
    let catastrophe: string | undefined;
    let failBootstrap: ((err: Error) => void) | undefined;
    const isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      onCatastrophicError: (message: string) => {
        if (created) {
          created.#lose(message, onLost);
        } else {
          catastrophe = message;
          failBootstrap?.(new Error(`isolate failed while starting: ${message}`));
        }
      },
    });
    try {
      const bootstrap = (async () => {
        const context = await isolate.createContext();
        const runner: Runner = await context.eval(RUNTIME_SOURCE, {
          reference: true,
          timeout: BOOTSTRAP_TIMEOUT_MS,
          filename: 'sandbox:runtime',
        });
        const many = (await context.evalClosure(MANY_SOURCE, [runner], {
          result: { reference: true },
          timeout: BOOTSTRAP_TIMEOUT_MS,
          filename: 'sandbox:many',
        })) as Runner;
        return { runner, many };
      })();
      // If the race below is lost, the bootstrap may still reject later; that is already handled.
      bootstrap.catch(() => undefined);
      const failed = new Promise<never>((_, reject) => (failBootstrap = reject));
      const { runner, many } = await Promise.race([bootstrap, failed]);
      if (runner.typeof !== 'function') throw new Error(`sandbox runtime evaluated to ${runner.typeof}, not a function`);
      if (many.typeof !== 'function') throw new Error(`sandbox batch runner evaluated to ${many.typeof}, not a function`);
      created = new SandboxIsolate(isolate, runner, many, memoryMb);
      return created;
    } catch (err) {
      if (catastrophe === undefined && !isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /** Abandoned after a catastrophic error: never used or touched again. */
  get lost(): boolean {
    return this.#lost;
  }

  /**
   * Runs one batch. Resolves with what `run` returned (copied out as fresh host values), or rejects
   * with an IsolateFailure. Execution happens on isolated-vm's threads; the event loop only copies
   * the payload in and the result out.
   */
  run(payload: ivm.ExternalCopy<RuntimePayload>, timeoutMs: number): Promise<unknown> {
    return this.#call(this.runner, [payload.copyInto({ release: true })], timeoutMs);
  }

  /**
   * Runs several batches in one call, within one time limit for them all; resolves with one
   * result per payload. The payloads are not released: after a failure they can run again alone.
   */
  async runMany(payloads: readonly ivm.ExternalCopy<RuntimePayload>[], timeoutMs: number): Promise<unknown[]> {
    const out = await this.#call(this.many, payloads.map((p) => p.copyInto()), timeoutMs);
    if (!Array.isArray(out) || out.length !== payloads.length) throw new IsolateFailure('throw', 'sandbox batch runner returned a malformed result', true);
    return out as unknown[];
  }

  #call(fn: Runner, args: ivm.Copy<RuntimePayload>[], timeoutMs: number): Promise<unknown> {
    if (this.#lost || this.#abort !== undefined || this.isolate.isDisposed) {
      return Promise.reject(new Error('isolate is busy or no longer usable'));
    }
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(watchdog);
        this.#abort = undefined;
        settle();
      };
      const watchdog = setTimeout(() => {
        // The timeout could not stop the script. Disposing terminates it and frees the heap.
        finish(() => reject(new IsolateFailure('timeout', `did not stop within ${timeoutMs} ms and was disposed`, true)));
        this.dispose();
      }, timeoutMs + WATCHDOG_GRACE_MS);
      this.#abort = (failure) => finish(() => reject(failure));
      try {
        fn
          .apply(undefined, args, { timeout: timeoutMs, result: { copy: true } })
          .then(
            (value) => finish(() => resolve(value)),
            (err: unknown) => finish(() => reject(this.#classify(err, timeoutMs))),
          );
      } catch (err) {
        finish(() => reject(this.#classify(err, timeoutMs)));
      }
    });
  }

  /** Frees the isolate. A lost isolate is left alone: touching it is not safe. */
  dispose(): void {
    if (this.#lost || this.isolate.isDisposed) return;
    try {
      this.isolate.dispose();
    } catch {
      // Already disposed by isolated-vm itself (memory limit) between the check and the call.
    }
  }

  #lose(message: string, onLost: LostHandler): void {
    if (this.#lost) return;
    this.#lost = true;
    onLost(this, message);
    this.#abort?.(new IsolateFailure('memory', `V8 could not recover the isolate (${message}); it was abandoned`, true));
  }

  #classify(err: unknown, timeoutMs: number): IsolateFailure {
    const message = err instanceof Error ? err.message : String(err);
    // isolated-vm disposes an isolate that reaches its heap limit ("Isolate was disposed during
    // execution due to memory limit"); any failure of a disposed isolate is that.
    if (this.isolate.isDisposed) {
      return new IsolateFailure('memory', `exceeded the ${this.memoryMb} MiB memory limit (${message})`, true);
    }
    if (message === TIMED_OUT) return new IsolateFailure('timeout', `did not finish within ${timeoutMs} ms`, false);
    // The runtime only returns data it built itself, so these should not happen; a fresh isolate
    // for the next batch costs little and rules out a damaged one.
    if (/could not be cloned/.test(message)) return new IsolateFailure('invalid-output', message, true);
    if (/allocation failed|Invalid string length|out of memory/i.test(message)) return new IsolateFailure('memory', message, true);
    return new IsolateFailure('throw', `sandbox runtime failure: ${message}`, true);
  }
}
