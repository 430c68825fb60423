/** What the replay tests share: their users, the answer's shape, and the request. */
import type pg from 'pg';
import type { Target } from '../support/proxy-matrix.js';
import { call } from './http-client.js';

export const PASSWORD = 'http-pw';

export interface Replay {
  result_id: string;
  as_of: string;
  user: string;
  statement: string;
  chunk?: { index: number; offset: number };
  query_statement?: { index: number; of: number };
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  executions: { id: string; transform: string; replay_of: string | null; verified: boolean | null }[];
}

export function replay(t: Target, id: string, user: string): ReturnType<typeof call> {
  return call(t, `/results/${id}/replay`, { user, password: PASSWORD, method: 'POST' });
}

/** Once the registry is read: the superuser's client, a reader and an auditor (a provenance_admin member) made. */
export async function replayUsers(t: Target, reader: string, auditor: string): Promise<pg.Client> {
  await t.proxy.registryLoaded;
  const admin = await t.pg();
  for (const r of [reader, auditor]) await admin.query(`CREATE ROLE ${r} LOGIN PASSWORD '${PASSWORD}'`);
  await admin.query(`GRANT provenance_admin TO ${auditor}`);
  return admin;
}
