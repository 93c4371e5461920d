// `npm run seed -- --boxes 10000 --devices 16 --days 30 [--health-days 30] [--reset] [--seed 1]`: fills DATABASE_URL, or when it is
// unset the embedded Postgres in FLEETGATE_DATA_DIR (the gateway's own), with a fleet and its history.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../../src/config';
import { createPool, migrateDatabase } from '../../src/db/connection';
import { prepareHistory } from '../../src/history/maintainer';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/db/embedded';
import { createLogger } from '../../src/log';
import { DEFAULT_HEALTH_DAYS, seedFleet } from './fleet';
import { progressBar } from './progress';

const USAGE = `usage: npm run seed -- [--boxes 10000] [--devices 16] [--days 30] [--health-days 30] [--seed 1] [--reset]

Fills the database with a fleet: boxes of both report formats (older ones with their gateway details),
--devices devices each (a mix of types and statuses, a few removed) and --days days of status history
consistent with each device's current status (about 2.1 M events a month at 10,000 x 16), in monthly
partitions it makes first. Older boxes also get hourly health for the last --health-days days (default
30, at most --days; a year at 10,000 boxes is 29 M rows). Targets DATABASE_URL, or the gateway's embedded
Postgres (FLEETGATE_DATA_DIR, EMBEDDED_PG_PORT) when it is unset. Refuses a database that already has
boxes unless --reset is given, which deletes every box, device, event and health row first.`;

function count(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    console.error(`seed: --${name} must be a whole number from 0 to ${max}\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

/** True while a postmaster (e.g. a running gateway's) serves `dataDir`: it must then be left running. */
function postmasterRunning(dataDir: string): boolean {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const { values } = parseArgs({
  options: {
    boxes: { type: 'string' },
    devices: { type: 'string' },
    days: { type: 'string' },
    'health-days': { type: 'string' },
    seed: { type: 'string' },
    reset: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const options = {
  boxes: count(values.boxes, 'boxes', 10_000, 1_000_000),
  devicesPerBox: count(values.devices, 'devices', 16, 4096),
  days: count(values.days, 'days', 30, 3650),
  healthDays: count(values['health-days'], 'health-days', DEFAULT_HEALTH_DAYS, 3650),
  seed: count(values.seed, 'seed', 1, 1_000_000),
  reset: values.reset,
};

let config;
try {
  // Quiet unless LOG_LEVEL asks for more: the seed prints its own progress.
  config = loadConfig({ LOG_LEVEL: 'warn', ...process.env });
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`seed: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
const log = createLogger(config.logLevel);
let postgres: RunningPostgres | undefined;
let url = config.databaseUrl;
if (!url) {
  const shared = postmasterRunning(config.dataDir);
  const running = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, log });
  url = running.url;
  if (!shared) postgres = running; // started here, so stopped here; a gateway's stays up
}
const pool = createPool(url, 2, log);
const bar = progressBar('seed');
let exitCode = 0;
try {
  await migrateDatabase(pool, log);
  await prepareHistory(pool, log);
  const result = await seedFleet(pool, options, bar.update);
  bar.finish(
    `seeded ${result.boxes} boxes, ${result.devices} devices, ${result.statusEvents} status events (${options.days} days)` +
      ` and ${result.boxHealthRows} box health rows (${Math.min(options.days, options.healthDays)} days) in ${(result.ms / 1000).toFixed(1)} s` +
      (result.partitionsCreated.length > 0 ? `, in ${result.partitionsCreated.length} monthly partitions made for them,` : '') +
      ` into ${config.databaseUrl ? 'DATABASE_URL' : `the embedded Postgres in ${config.dataDir}`}`,
  );
} catch (error) {
  bar.finish(`seed failed: ${error instanceof Error ? error.message : String(error)}`);
  exitCode = 1;
} finally {
  await pool.end();
  await postgres?.stop();
}
process.exit(exitCode);
