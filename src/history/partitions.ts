import type pg from 'pg';
import { run, sql } from '../db/sql';

/**
 * The history tables are partitioned by month (UTC) of one timestamp column. A month is the unit of
 * retention: dropping one is a catalog change, never a delete of its rows. A partition is made ahead
 * of need as a table of its own and then attached, which locks the parent only in SHARE UPDATE
 * EXCLUSIVE mode: ingest's inserts and every read go on meanwhile (CREATE TABLE ... PARTITION OF
 * would take ACCESS EXCLUSIVE).
 */

/** Each partitioned history table and the column it is partitioned by. */
export const HISTORY_TABLES = { status_events: 'at', box_health: 'hour' } as const;
export type HistoryTable = keyof typeof HISTORY_TABLES;

/** Months made ahead of the current one, so a month never starts without its partition. */
export const MONTHS_AHEAD = 2;

/** Longest a partition's DDL waits for a lock before giving up until the next round. */
const DDL_LOCK_TIMEOUT = '2s';

export interface Partition {
  name: string;
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  to: Date;
  /** A `DETACH ... CONCURRENTLY` that did not finish (the session died): it must be finalized. */
  detachPending: boolean;
}

/** The first instant of the UTC month `date` is in, `months` months later. */
export function monthStart(date: Date, months = 0): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + months, 1));
}

/** `status_events_p2026_12`: the partition of `table` for the month starting at `month`. */
export function partitionName(table: string, month: Date): string {
  return `${table}_p${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The partitions of `table`, oldest first. Bounds are read from the catalog, so any partition is seen. */
export async function listPartitions(client: pg.Pool | pg.ClientBase, table: string): Promise<Partition[]> {
  const { rows } = await run<{ name: string; bound: string; detachPending: boolean }>(
    client,
    sql`select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound, i.inhdetachpending as "detachPending"
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = to_regclass(${table})`,
  );
  return rows
    .map((row) => {
      // FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')
      const bounds = /FROM \('([^']+)'\) TO \('([^']+)'\)/.exec(row.bound);
      if (!bounds) throw new Error(`partition ${row.name} of ${table} has bounds this gateway does not read: ${row.bound}`);
      return { name: row.name, from: new Date(bounds[1]!), to: new Date(bounds[2]!), detachPending: row.detachPending };
    })
    .sort((a, b) => a.from.getTime() - b.from.getTime());
}

/**
 * Makes sure `table` has a partition for every month from the one holding `from` to the one holding
 * `until` (inclusive); returns the names it created. Safe to run from several sessions only under one
 * lock (the migration's or the maintainer's): two creating the same month would collide. Partitions are
 * named after `namePrefix` (the table's name once src/history/upgrade.ts has renamed it).
 */
export async function ensurePartitions(db: pg.Pool | pg.ClientBase, table: string, from: Date, until: Date, namePrefix = table): Promise<string[]> {
  const client = 'totalCount' in db ? await db.connect() : db;
  try {
    const existing = await listPartitions(client, table);
    const created: string[] = [];
    for (let month = monthStart(from); month <= until; month = monthStart(month, 1)) {
      const end = monthStart(month, 1);
      if (existing.some((p) => p.from < end && p.to > month)) continue;
      const name = partitionName(namePrefix, month);
      await run(client, sql`begin`);
      try {
        await run(client, sql.raw(`set local lock_timeout = '${DDL_LOCK_TIMEOUT}'`));
        await run(client, sql`create table if not exists ${sql.identifier(name)} (like ${sql.identifier(table)})`);
        await run(client, sql.raw(`alter table "${table}" attach partition "${name}" for values from ('${month.toISOString()}') to ('${end.toISOString()}')`));
        await run(client, sql`commit`);
      } catch (error) {
        await run(client, sql`rollback`).catch(() => {});
        throw error;
      }
      created.push(name);
    }
    return created;
  } finally {
    if (client !== db) (client as pg.PoolClient).release();
  }
}

/** Whether `table` is partitioned (status_events is not until src/history/upgrade.ts has run). */
export async function isPartitioned(client: pg.ClientBase, table: string): Promise<boolean> {
  const { rows } = await run<{ kind: string | null }>(client, sql`select relkind::text as kind from pg_class where oid = to_regclass(${table})`);
  return rows[0]?.kind === 'p';
}
