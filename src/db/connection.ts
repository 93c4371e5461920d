import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Logger } from '../log';
import { run, sql } from './sql';

export const MIGRATIONS_FOLDER = projectFolder('drizzle');

/**
 * A folder at the project's root, found upward from this module: the module is src/db/connection.ts
 * when run from source and dist/main.js (or dist/token.js) once built, so no fixed `../..` fits both.
 */
function projectFolder(name: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no ${name}/ folder above ${fileURLToPath(import.meta.url)}: it ships beside dist/ (package.json "files")`);
    dir = parent;
  }
}

/** Advisory lock key taken while migrating, so replicas starting together migrate once. */
const MIGRATION_LOCK = 0x666c_6774; // "flgt"

// Timestamps and bigints arrive as JS values the rest of the code expects.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** How a pool's sessions differ from Postgres's defaults. */
export interface PoolOptions {
  /** Shown in pg_stat_activity. Default `fleetgate`. */
  applicationName?: string;
  /** Postgres cancels a statement running longer (57014). Default none. */
  statementTimeoutMs?: number;
  /**
   * Plan every execution of a prepared statement for its own parameters. Postgres otherwise may switch a
   * statement to one generic plan after five runs, and for pages of boxes by `any($ids)` that plan was
   * an order of magnitude slower (measurements in the commit that set this).
   */
  customPlans?: boolean;
  /** Planner settings of the pool's sessions (`-c name=value`), e.g. the webhook deliverer's; see there why. */
  settings?: Readonly<Record<string, string>>;
}

export function createPool(url: string, max: number, log: Logger, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // Fail fast when Postgres is down instead of queueing requests behind a dead server.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'fleetgate',
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    ...(options.customPlans || options.settings
      ? {
          options: Object.entries({ ...(options.customPlans ? { plan_cache_mode: 'force_custom_plan' } : {}), ...options.settings })
            .map(([name, value]) => `-c ${name}=${value}`)
            .join(' '),
        }
      : {}),
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (error) => log.warn({ err: error.message }, 'idle database connection lost'));
  // Nor may a checked-out one: Postgres shutting down (57P01) or a reset between two queries would be
  // an unhandled 'error' event. The query under way fails on its own; its caller answers 503.
  pool.on('connect', (client) => client.on('error', (error) => log.warn({ err: error.message }, 'database connection lost')));
  return pool;
}

/** Applies the drizzle-kit migrations in drizzle/ under an advisory lock. */
export async function migrateDatabase(pool: pg.Pool, log: Logger): Promise<void> {
  const client = await pool.connect();
  try {
    await run(client, sql`select pg_advisory_lock(${MIGRATION_LOCK})`);
    const started = Date.now();
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
    log.info({ ms: Date.now() - started }, 'database migrations applied');
  } finally {
    await run(client, sql`select pg_advisory_unlock(${MIGRATION_LOCK})`).catch(() => {});
    client.release();
  }
}

/** Errors that mean "the database is not reachable right now", as opposed to a bad statement. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  if (!e) return false;
  const code = e.code ?? '';
  // Class 08: connection exceptions; 57P0x: admin/crash shutdown, cannot connect now; 53300: too many connections.
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|not queryable/i.test(
    message,
  );
}
