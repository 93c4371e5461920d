import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createPool, migrateDatabase } from '../../src/db/connection';
import { prepareHistory } from '../../src/history/maintainer';
import { startEmbeddedPostgres } from '../../src/db/embedded';
import { createLogger } from '../../src/log';
import { freePort } from './net';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URL of the test run's Postgres (database `postgres`). */
    postgresUrl: string;
    /** Name of the migrated database each test file clones. */
    templateDatabase: string;
  }
}

export const TEMPLATE_DATABASE = 'fleetgate_template';

/** Starts one embedded Postgres for the whole run and migrates a template database in it. */
export default async function setup(project: TestProject) {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn');
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-test-pg-'));
  // The embedded server runs as the `postgres` user when we are root; it must be able to enter the folder.
  await fs.chmod(dataDir, 0o777);
  const postgres = process.env.TEST_DATABASE_URL
    ? { url: process.env.TEST_DATABASE_URL, stop: async () => {} }
    : await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'data'), port: await freePort(), log });

  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query(`drop database if exists ${TEMPLATE_DATABASE}`);
  await admin.query(`create database ${TEMPLATE_DATABASE}`);
  await admin.end();
  const pool = createPool(withDatabase(postgres.url, TEMPLATE_DATABASE), 2, log);
  await migrateDatabase(pool, log);
  await prepareHistory(pool, log);
  await pool.end();

  project.provide('postgresUrl', postgres.url);
  project.provide('templateDatabase', TEMPLATE_DATABASE);
  return async () => {
    await postgres.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
