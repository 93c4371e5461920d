import type pg from 'pg';
import { run, sql } from '../db/sql';
import type { Logger } from '../log';
import { ensurePartitions, isPartitioned, monthStart, MONTHS_AHEAD } from './partitions';

/**
 * Turns the unpartitioned `status_events` of versions before migration 0007 into the partitioned one,
 * keeping every row and every id, while the gateway serves: rows are copied in batches into
 * `status_events_partitioned` (made by 0007) as ingest goes on writing to the old table, then one short
 * transaction copies the last few, and the tables swap names. Resumable: a copy cut short goes on from
 * the highest id already copied. Runs on one session at a time (the caller holds a lock).
 */

const NEW_TABLE = 'status_events_partitioned';
/** Rows per copy statement: about a second each here, so progress shows and no statement runs long. */
const BATCH_ROWS = 50_000;
/** The index names the partitioned table takes over once the old one is gone. */
const INDEXES = ['box_idx', 'device_idx', 'at_idx', 'device_at_idx', 'box_at_idx'];

export interface UpgradeResult {
  rows: number;
  ms: number;
  /** How long the final swap waited for its locks (ingest queues behind it meanwhile). */
  swapLockWaitMs: number;
  /** How long it then held them (ingest waits). */
  swapHeldMs: number;
}

const COLUMNS = sql`id, box_id, device_id, from_status, to_status, at`;

/** Whether `status_events` still has to be partitioned. */
async function needsPartitioning(client: pg.ClientBase): Promise<boolean> {
  return !(await isPartitioned(client, 'status_events'));
}

/** Partitions `status_events` unless it already is; returns null then. */
export async function partitionStatusEvents(client: pg.ClientBase, log: Logger, now = new Date()): Promise<UpgradeResult | null> {
  if (!(await needsPartitioning(client))) return null;
  if (!(await isPartitioned(client, NEW_TABLE))) throw new Error(`${NEW_TABLE} is missing: migration 0007 has not run`);
  const started = Date.now();
  const { rows: span } = await run<{ first: Date | null; total: number }>(
    client,
    sql`select min(at) as first, count(*)::int8 as total from status_events`,
  );
  const total = span[0]!.total;
  const first = span[0]!.first ?? now;
  // A month for every row there is, and for the rows ingest writes until the swap and after it.
  await ensurePartitions(client, NEW_TABLE, first, monthStart(now, MONTHS_AHEAD), 'status_events');
  if (total > 0) log.info({ rows: total, since: first.toISOString() }, 'partitioning the status history: copying it while the gateway serves');

  let copied = await copiedCount(client);
  let last = await highestCopiedId(client);
  let lastLog = 0; // the first batch is logged: it gives the rate and the time left
  for (;;) {
    // Only up to the highest id visible now: ids commit in order (the events lock, src/live/events-table.ts),
    // so every id up to it is committed and none is skipped.
    const { rows } = await run<{ upto: number | null; n: number }>(
      client,
      sql`with bound as (select least(coalesce(max(id), 0), ${last}::int8 + ${BATCH_ROWS}) as upto from status_events),
          moved as (insert into ${sql.identifier(NEW_TABLE)} (${COLUMNS})
                    select ${COLUMNS} from status_events where id > ${last}::int8 and id <= (select upto from bound) returning 1)
          select (select upto from bound) as upto, (select count(*)::int from moved) as n`,
    );
    const { upto, n } = rows[0]!;
    if (upto === null || upto <= last) break;
    last = upto;
    copied += n;
    // Caught up but for what ingest writes meanwhile: the swap copies that, under its lock.
    if (n < BATCH_ROWS / 10) break;
    if (Date.now() - lastLog >= 2_000) {
      lastLog = Date.now();
      const seconds = (Date.now() - started) / 1000;
      const rate = copied / Math.max(seconds, 0.001);
      log.info(
        { copied, of: total, percent: total ? Math.min(100, Math.round((copied / total) * 100)) : 100, rowsPerSecond: Math.round(rate), etaSeconds: Math.max(0, Math.round((total - copied) / rate)) },
        'partitioning the status history',
      );
    }
  }

  const swapped = await swap(client, last);
  const result = { rows: copied + swapped.rows, ms: Date.now() - started, swapLockWaitMs: swapped.lockWaitMs, swapHeldMs: swapped.heldMs };
  log.info(result, 'status history partitioned by month');
  return result;
}

async function copiedCount(client: pg.ClientBase): Promise<number> {
  const { rows } = await run<{ n: number }>(client, sql`select count(*)::int8 as n from ${sql.identifier(NEW_TABLE)}`);
  return rows[0]!.n;
}

async function highestCopiedId(client: pg.ClientBase): Promise<number> {
  const { rows } = await run<{ id: number }>(client, sql`select coalesce(max(id), 0) as id from ${sql.identifier(NEW_TABLE)}`);
  return rows[0]!.id;
}

/**
 * The swap, in one transaction: the rows written since the last batch, then the names. Locks are taken
 * in ingest's order (boxes and devices, then the history) so neither waits for the other in a circle;
 * dropping the old table drops its foreign keys, which needs `boxes` and `devices` too.
 */
async function swap(client: pg.ClientBase, last: number): Promise<{ rows: number; lockWaitMs: number; heldMs: number }> {
  const started = Date.now();
  await run(client, sql`begin`);
  try {
    await run(client, sql`set local lock_timeout = '10s'`);
    await run(client, sql`lock table boxes, devices in share row exclusive mode`);
    await run(client, sql`lock table status_events in access exclusive mode`);
    const locked = Date.now();
    const moved = await run(
      client,
      sql`insert into ${sql.identifier(NEW_TABLE)} (${COLUMNS}) select ${COLUMNS} from status_events where id > ${last}::int8`,
    );
    await run(client, sql`alter sequence status_events_id_seq owned by ${sql.identifier(NEW_TABLE)}.id`);
    await run(client, sql`drop table status_events`);
    await run(client, sql`alter table ${sql.identifier(NEW_TABLE)} rename to status_events`);
    await run(client, sql`alter table status_events rename constraint status_events_partitioned_pkey to status_events_pkey`);
    for (const index of INDEXES) await run(client, sql.raw(`alter index status_events_partitioned_${index} rename to status_events_${index}`));
    await run(client, sql`commit`);
    return { rows: moved.rowCount ?? 0, lockWaitMs: locked - started, heldMs: Date.now() - locked };
  } catch (error) {
    await run(client, sql`rollback`).catch(() => {});
    throw error;
  }
}
