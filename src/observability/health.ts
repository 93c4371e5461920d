import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { MIGRATIONS_FOLDER } from '../db/connection';
import { run, sql } from '../db/sql';

export type Readiness = { status: 'ready' } | { status: 'unavailable'; reason: string };

export interface ReadinessOptions {
  /** How long the database may take to answer. Default 1,000 ms. */
  timeoutMs?: number;
  /** Folder holding drizzle-kit's `meta/_journal.json`. Default the gateway's `drizzle/`. */
  migrationsFolder?: string;
}

/** drizzle's migrator records each applied migration's journal `when` as `created_at`. */
function journalTimestamps(migrationsFolder: string): number[] {
  const journal = JSON.parse(readFileSync(path.join(migrationsFolder, 'meta/_journal.json'), 'utf8')) as { entries: Array<{ when: number }> };
  return journal.entries.map((entry) => entry.when);
}

/**
 * Readiness for `/readyz`: the database answers within the timeout and every migration in the journal is
 * applied. Liveness (`/healthz`) asks nothing of the database, so an outage takes a replica out of the
 * load balancer without getting it restarted. Probes arriving while one is running share its answer.
 */
export function createReadinessCheck(pool: pg.Pool, options: ReadinessOptions = {}): () => Promise<Readiness> {
  const timeoutMs = options.timeoutMs ?? 1_000;
  const expected = journalTimestamps(options.migrationsFolder ?? MIGRATIONS_FOLDER);
  let running: Promise<Readiness> | undefined;

  async function check(): Promise<Readiness> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Readiness>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'unavailable', reason: `the database did not answer within ${timeoutMs} ms` }), timeoutMs);
    });
    const query = (async (): Promise<Readiness> => {
      try {
        await run(pool, sql`select 1`);
      } catch (error) {
        return { status: 'unavailable', reason: `the database is unreachable: ${(error as Error).message}` };
      }
      try {
        const { rows } = await run<{ created_at: number | string }>(pool, sql`select created_at from drizzle.__drizzle_migrations`);
        const applied = new Set(rows.map((row) => Number(row.created_at)));
        const missing = expected.filter((when) => !applied.has(when)).length;
        if (missing > 0) return { status: 'unavailable', reason: `${missing} of ${expected.length} database migrations are not applied` };
        return { status: 'ready' };
      } catch (error) {
        return { status: 'unavailable', reason: `database migrations cannot be read: ${(error as Error).message}` };
      }
    })();
    try {
      return await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  return () => {
    running ??= check().finally(() => (running = undefined));
    return running;
  };
}
