/**
 * Ending a process that has used isolates.
 *
 * isolated-vm finishes some work for an isolate on its own threads, tearing down a disposed isolate
 * among it, for example after a batch was stopped by its timeout. `process.exit()` disposes V8's
 * platform at once, under those threads, and the process then dies with SIGSEGV instead of its exit
 * code. A natural exit waits: isolated-vm keeps the event loop referenced while it has work.
 */

/** How long to wait for the event loop to empty before exiting regardless. */
export const EXIT_GRACE_MS = 5_000;

/**
 * Sets the exit code and lets the process end once the event loop is empty. Should something keep
 * the loop alive (a leftover handle, or an isolate V8 gave up on, whose thread never returns), the
 * process exits anyway after `graceMs`.
 */
export function exitWhenIdle(code: number, graceMs: number = EXIT_GRACE_MS): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), graceMs).unref();
}
