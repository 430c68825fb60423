import type { TestProject } from 'vitest/node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { clusterInfo, startPgCluster, type PgClusterInfo } from './pg-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: PgClusterInfo;
    /** A freshly initialised PGlite data directory to copy: initdb takes seconds, a copy does not. */
    pgliteTemplate: string;
  }
}

/**
 * One cluster for the whole run. A failure to start propagates, which fails the run:
 * database-backed tests must never be silently skipped.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const templateRoot = mkdtempSync(path.join(tmpdir(), 'pp-pglite-template-'));
  const template = path.join(templateRoot, 'pglite');
  const [cluster] = await Promise.all([
    startPgCluster(),
    (async () => {
      const db = await PGlite.create(template);
      await db.close();
    })(),
  ]);
  project.provide('pg', clusterInfo(cluster));
  project.provide('pgliteTemplate', template);
  return async () => {
    await cluster.destroy();
    rmSync(templateRoot, { recursive: true, force: true });
  };
}
