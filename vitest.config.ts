import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // isolated-vm crashes under Node's startup snapshot, so workers need this flag too.
    execArgv: ['--no-node-snapshot'],
    // Sized for 2-core machines; more workers would only contend with the PostgreSQL server.
    maxWorkers: 2,
    fileParallelism: true,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
  },
});
