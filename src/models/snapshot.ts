import { selectRows, sql } from '../db/sql';
import type pg from 'pg';

/**
 * The database's transaction snapshot as text (`xmin:xmax:in-progress ids`). It changes whenever a
 * transaction starts writing or ends; while it stays the same, every table holds the same rows.
 */
export async function currentSnapshot(pool: pg.Pool): Promise<string> {
  const rows = await selectRows<{ snapshot: string }>(pool, sql`select pg_current_snapshot()::text as snapshot`);
  return rows[0]!.snapshot;
}
