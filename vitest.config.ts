import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql ships CJS (index.js) and ESM (index.mjs). Node loads the CJS one for node_modules (Pothos,
    // yoga); vite would give our sources the ESM one, and two graphql realms break instanceof checks.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // One real Postgres for the whole run (each test file gets its own database cloned from a migrated
    // template), and one build of the gateway, which the tests that spawn it run.
    globalSetup: ['test/helpers/global-postgres.ts', 'test/helpers/global-build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
