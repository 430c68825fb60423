/**
 * The W3C traceparent a sqlcommenter-instrumented client puts in a block comment of its
 * statement: `/*key='value',traceparent='00-…-…-01'*\/`. The comments are the server scanner's
 * (see statement-shape.ts), so a comment-like run inside a string is never read as one.
 */

export interface TraceParent {
  /** 32 lowercase hex characters, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex characters, not all zero. */
  readonly spanId: string;
  /** The trace-flags byte; bit 0 is "sampled". */
  readonly flags: number;
}

const LOWER_HEX = /^[0-9a-f]*$/;
const ZEROS = /^0*$/;
const SPACE = /[ \t\n\r\f\v]/;

/** The traceparent of the first block comment (`/*…*\/`, as the scanner cut it) that carries a valid one. */
export function traceParentOf(comments: readonly string[]): TraceParent | null {
  for (const c of comments) {
    if (!c.startsWith('/*') || !c.endsWith('*/') || !c.includes('traceparent')) continue;
    const t = traceParentOfComment(c, 2, c.length - 2);
    if (t) return t;
  }
  return null;
}

/**
 * A W3C trace-context traceparent: `version-traceid-parentid-flags`, lowercase hex. Version ff is
 * invalid; version 00 has exactly these four fields, a later version may append `-` and more,
 * which is ignored (the recommendation's forward-compatibility rule).
 */
function parseTraceParent(v: string): TraceParent | null {
  if (v.length < 55 || v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return null;
  const version = v.slice(0, 2);
  if (!LOWER_HEX.test(version) || version === 'ff') return null;
  if (v.length > 55 && (version === '00' || v[55] !== '-')) return null;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!LOWER_HEX.test(traceId) || !LOWER_HEX.test(spanId) || !LOWER_HEX.test(flags)) return null;
  if (ZEROS.test(traceId) || ZEROS.test(spanId)) return null;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

function urlDecode(s: string): string | null {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/**
 * The traceparent of a sqlcommenter comment body (text[from, to)): `key='value'` pairs separated
 * by commas, keys and values URL-encoded, a quote inside a value escaped as `\'`. A body in any
 * other shape is an ordinary comment. Each loop only moves forward: linear in the comment.
 */
function traceParentOfComment(text: string, from: number, to: number): TraceParent | null {
  let k = from;
  while (k < to) {
    while (k < to && SPACE.test(text[k]!)) k++;
    if (k >= to) return null;
    const keyStart = k;
    while (k < to && text[k] !== '=') k++;
    if (k + 1 >= to || text[k + 1] !== "'") return null;
    const key = text.slice(keyStart, k).trim();
    k += 2;
    let value = '';
    let piece = k;
    for (;;) {
      if (k >= to) return null;
      const c = text[k];
      if (c === "'") break;
      if (c === '\\' && k + 1 < to) {
        value += text.slice(piece, k);
        piece = k + 1;
        k += 2;
      } else {
        k++;
      }
    }
    value += text.slice(piece, k);
    if (urlDecode(key) === 'traceparent') {
      const decoded = urlDecode(value);
      return decoded === null ? null : parseTraceParent(decoded);
    }
    k++;
    while (k < to && SPACE.test(text[k]!)) k++;
    if (k < to) {
      if (text[k] !== ',') return null;
      k++;
    }
  }
  return null;
}
