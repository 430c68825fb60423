/** Limits the sandbox runtime (runtime.ts) is built with. */

/** Deepest nesting of arrays and objects accepted in output. */
export const MAX_OUTPUT_DEPTH = 64;
/** Compiled transforms kept per isolate (least recently used are dropped). */
export const FUNCTION_CACHE_SIZE = 256;
/** Longest thrown or invalid-output message passed back, in characters. */
export const MAX_MESSAGE_CHARS = 2000;
