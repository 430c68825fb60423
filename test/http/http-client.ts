/** Requests to a proxy's HTTP API, with or without HTTP Basic credentials. */
import type { Target } from '../support/proxy-matrix.js';

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

export function httpBase(t: Target): string {
  const http = t.proxy.http;
  if (!http) throw new Error('the proxy has no HTTP API');
  return http.url;
}

export async function call(
  t: Target, path: string, opts: { user?: string; password?: string; accept?: string; method?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.user !== undefined) headers['authorization'] = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64')}`;
  if (opts.accept) headers['accept'] = opts.accept;
  const r = await fetch(`${httpBase(t)}${path}`, { headers, method: opts.method ?? 'GET' });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: <T>() => JSON.parse(text) as T };
}
