import type pg from 'pg';
import { run, sql } from '../db/sql';
import type { Logger } from '../log';
import { HISTORY_TABLES, listPartitions, type HistoryTable, type Partition } from './partitions';

/**
 * Retention drops whole months, never rows: a partition whose every instant is older than the cutoff is
 * detached CONCURRENTLY (which locks the parent only in SHARE UPDATE EXCLUSIVE mode, so inserts and reads
 * go on) and then dropped as the table of its own it has become. What went is written to
 * `history_horizon` first, so a cursor from before it is answered "expired", never with a silent gap.
 */

export interface DroppedPartition {
  table: HistoryTable;
  name: string;
  from: Date;
  to: Date;
  rows: number;
  /** status_events: the highest event id it held. */
  maxId: number | null;
  ms: number;
}

/** The oldest instant still kept when history is kept `days` days. */
export function retentionCutoff(now: Date, days: number): Date {
  return new Date(now.getTime() - days * 86_400_000);
}

/** Drops the partitions of `table` that end at or before `cutoff`, oldest first, logging each. */
export async function dropPartitionsBefore(client: pg.ClientBase, table: HistoryTable, cutoff: Date, log: Logger): Promise<DroppedPartition[]> {
  const dropped: DroppedPartition[] = [];
  for (const partition of await listPartitions(client, table)) {
    if (partition.to > cutoff) break;
    dropped.push(await dropPartition(client, table, partition));
    const last = dropped.at(-1)!;
    log.info(
      { table, partition: last.name, from: last.from.toISOString(), to: last.to.toISOString(), rows: last.rows, maxId: last.maxId ?? undefined, ms: last.ms },
      'history partition dropped (older than the retention)',
    );
  }
  return dropped;
}

async function dropPartition(client: pg.ClientBase, table: HistoryTable, partition: Partition): Promise<DroppedPartition> {
  const started = Date.now();
  const name = sql.identifier(partition.name);
  const idColumn = table === 'status_events' ? sql`max(id)` : sql`null::int8`;
  const { rows } = await run<{ rows: number; maxId: number | null }>(client, sql`select count(*)::int8 as rows, ${idColumn} as "maxId" from ${name}`);
  const { rows: count, maxId } = rows[0]!;
  // Recorded before the rows go: a reader checking a cursor meanwhile is told too early, never too late.
  await run(
    client,
    sql`insert into history_horizon (table_name, dropped_before, dropped_through_id) values (${table}, ${partition.to}, ${maxId}::int8)
        on conflict (table_name) do update set
          dropped_before = greatest(history_horizon.dropped_before, excluded.dropped_before),
          dropped_through_id = greatest(history_horizon.dropped_through_id, excluded.dropped_through_id)`,
  );
  // A detach cut short by a lost session stays pending until finalized; a second CONCURRENTLY would fail.
  const detach = partition.detachPending ? sql`finalize` : sql`concurrently`;
  await run(client, sql`alter table ${sql.identifier(table)} detach partition ${name} ${detach}`);
  await run(client, sql`drop table ${name}`);
  return { table, name: partition.name, from: partition.from, to: partition.to, rows: count, maxId, ms: Date.now() - started };
}

/** What retention has dropped of each table (see `history_horizon`). */
export interface Horizon {
  /** Nothing before this instant is kept. */
  droppedBefore: Date;
  /** status_events: every event with an id up to this one may be gone. */
  droppedThroughId: number | null;
}

export async function readHorizon(db: pg.Pool | pg.ClientBase, table: HistoryTable): Promise<Horizon | null> {
  const { rows } = await run<Horizon>(
    db,
    sql`select dropped_before as "droppedBefore", dropped_through_id as "droppedThroughId" from history_horizon where table_name = ${table}`,
    'history_horizon',
  );
  return rows[0] ?? null;
}

export const HISTORY_TABLE_NAMES = Object.keys(HISTORY_TABLES) as HistoryTable[];
