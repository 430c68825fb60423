/**
 * A baseline of the sandbox benchmark: the crossing that a worker thread owning the isolate would
 * cost. The values go to the worker in a message, it calls the bare mask synchronously (with the
 * timeout) and posts the result back: the candidate design against isolated-vm's own asynchronous
 * call, without the pool's runtime, limits or checks.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The worker's program, evaluated as its CommonJS main. */
const SOURCE = String.raw`'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const ivm = require(workerData.ivm);
const isolate = new ivm.Isolate({ memoryLimit: workerData.memoryMb, onCatastrophicError: () => undefined });
const context = isolate.createContextSync();
const mask = context.evalSync('(() => { const mask = ' + workerData.mask + '; return (values) => values.map(mask); })()', { reference: true });
const call = { arguments: { copy: true }, result: { copy: true }, timeout: workerData.timeoutMs };
parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, out: mask.applySync(undefined, [m.values], call) }));
parentPort.postMessage({ id: 0, out: [] });
`;

export interface WorkerCall {
  readonly call: (values: readonly string[]) => Promise<(string | null)[]>;
  readonly close: () => Promise<void>;
}

export async function startWorkerCall(mask: string, memoryMb: number, timeoutMs: number): Promise<WorkerCall> {
  const worker = new Worker(SOURCE, { eval: true, workerData: { ivm: createRequire(import.meta.url).resolve('isolated-vm'), mask, memoryMb, timeoutMs } });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  const waiting = new Map<number, (out: (string | null)[]) => void>();
  let next = 0;
  worker.on('message', (m: { id: number; out: (string | null)[] }) => {
    const resolve = waiting.get(m.id);
    waiting.delete(m.id);
    resolve?.(m.out);
  });
  return {
    call: (values) =>
      new Promise((resolve) => {
        const id = ++next;
        waiting.set(id, resolve);
        worker.postMessage({ id, values });
      }),
    close: async () => {
      await worker.terminate();
    },
  };
}
