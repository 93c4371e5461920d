import { existsSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { ConfigError, type Config } from '../config';
import { maskCredentials } from '../config-variable';
import { createPool, migrateDatabase } from '../db/connection';
import { livePostmasterPort, startEmbeddedPostgres, type RunningPostgres } from '../db/embedded';
import { selectRows, sql } from '../db/sql';
import { createLogger } from '../log';

// The gateway's own database for a command-line tool (`npm run token`, `npm run boxes`): DATABASE_URL,
// or the embedded one (a running gateway's, or started here for the moment).

export const POINT_IT =
  'Run the command in the folder the gateway runs in, or point it at the gateway\'s database: FLEETGATE_DATA_DIR=<its data folder> for the embedded Postgres, DATABASE_URL=postgres://… for an external one.';

/** The database the command would use is not a gateway's (exit status 1). */
export class NoDatabaseError extends Error {}

/** Where the command reads and writes, as the operator can check it. */
export function databasePlace(config: Config): string {
  return config.databaseUrl ? `DATABASE_URL ${maskCredentials(config.databaseUrl)}` : `the embedded Postgres in ${config.dataDir}`;
}

/**
 * The gateway's database. A read never makes one (`mayCreate` false): an empty embedded data folder,
 * or a database without fleetgate's tables, is reported instead of created (the usual mistake is the folder).
 */
export async function openDatabase(config: Config, mayCreate: boolean): Promise<{ pool: pg.Pool; close: () => Promise<void> }> {
  const log = createLogger(config.logLevel);
  const place = databasePlace(config);
  let postgres: RunningPostgres | undefined;
  let url = config.databaseUrl;
  if (!url) {
    const runningPort = livePostmasterPort(config.dataDir);
    if (runningPort !== undefined) {
      // A gateway is running on this data folder: use its server, and leave it running.
      url = `postgres://fleetgate:fleetgate@127.0.0.1:${runningPort}/postgres`;
    } else if (!existsSync(path.join(config.dataDir, 'PG_VERSION'))) {
      if (!mayCreate) throw new NoDatabaseError(`There is no gateway database in ${config.dataDir} (FLEETGATE_DATA_DIR): no gateway has run with it. ${POINT_IT}`);
      console.error(`There is no database in ${config.dataDir} yet: creating one (a gateway started with this FLEETGATE_DATA_DIR uses it)...`);
    } else {
      console.error(`Starting the embedded Postgres in ${path.relative(process.cwd(), config.dataDir) || '.'} for this command...`);
    }
    if (!url) {
      postgres = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, log });
      url = postgres.url;
    }
  }
  const pool = createPool(url, 2, log);
  const close = async () => {
    await pool.end();
    await postgres?.stop();
  };
  try {
    if (!mayCreate && !(await hasGatewayTables(pool))) throw new NoDatabaseError(`${place} holds no fleetgate tables. ${POINT_IT}`);
    await migrateDatabase(pool, log);
  } catch (error) {
    await close();
    throw error;
  }
  return { pool, close };
}

async function hasGatewayTables(pool: pg.Pool): Promise<boolean> {
  const [row] = await selectRows<{ exists: boolean }>(pool, sql`select to_regclass('api_tokens') is not null as "exists"`);
  return row?.exists === true;
}

/**
 * Runs a command's `main` and sets the exit status: its own, else 2 with the usage for a mistake in the
 * command line or the configuration (`isUsageError`, ConfigError), 1 with the message for anything else.
 */
export async function runCommand(name: string, usage: string, main: () => Promise<number>, isUsageError: (error: unknown) => boolean): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (error) {
    if (isUsageError(error) || error instanceof ConfigError) {
      console.error(`${(error as Error).message}\n\n${usage}`);
      process.exitCode = 2;
    } else if (error instanceof NoDatabaseError) {
      console.error(error.message);
      process.exitCode = 1;
    } else {
      console.error(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  }
}
