import type pg from 'pg';
import { SingletonJob } from '../db/leader';
import { run, sql } from '../db/sql';
import type { Logger } from '../log';
import { ensurePartitions, isPartitioned, monthStart, MONTHS_AHEAD } from './partitions';
import { dropPartitionsBefore, HISTORY_TABLE_NAMES, retentionCutoff } from './retention';
import { partitionStatusEvents } from './upgrade';

/** Elects the replica that keeps the history's partitions. */
const MAINTAINER_LOCK = 0x666c_6768; // "flgh"
/** Held around any change to the history's partitions, by the maintainer and by a replica starting. */
const PARTITIONS_LOCK = 0x666c_6770; // "flgp"
/** A status history this small is partitioned before the gateway serves; a larger one in the background. */
const PARTITION_AT_START_ROWS = 100_000;

export interface HistoryOptions {
  /** History older than this many days is dropped, a whole month at a time. */
  retentionDays: number;
  /** How often the maintainer runs. */
  intervalMs: number;
}

/**
 * Before a replica serves: the partitions for this month and the next ones exist, so no insert can find
 * none; a small unpartitioned history (an upgrade from before migration 0007, or a new database) is
 * partitioned now. If another replica holds the lock, it is doing the same, and this one goes on.
 */
export async function prepareHistory(pool: pg.Pool, log: Logger, now = new Date()): Promise<void> {
  const client = await pool.connect();
  try {
    await prepareOnSession(client, log, now);
  } finally {
    client.release();
  }
}

async function prepareOnSession(client: pg.ClientBase, log: Logger, now: Date): Promise<void> {
  const { rows } = await run<{ locked: boolean }>(client, sql`select pg_try_advisory_lock(${PARTITIONS_LOCK}) as locked`);
  if (!rows[0]!.locked) return;
  try {
    if (!(await isPartitioned(client, 'status_events'))) {
      const { rows: counted } = await run<{ n: number }>(
        client,
        sql`select count(*)::int as n from (select 1 from status_events limit ${PARTITION_AT_START_ROWS + 1}) s`,
      );
      if (counted[0]!.n > PARTITION_AT_START_ROWS) {
        log.info('the status history is large: it is partitioned in the background while the gateway serves (see the log for progress)');
      } else {
        await partitionStatusEvents(client, log, now);
      }
    }
    await ensureCurrentPartitions(client, now);
  } finally {
    await run(client, sql`select pg_advisory_unlock(${PARTITIONS_LOCK})`);
  }
}

/** Partitions from this month to MONTHS_AHEAD months ahead, for each partitioned history table. */
async function ensureCurrentPartitions(client: pg.ClientBase, now: Date): Promise<string[]> {
  const created: string[] = [];
  for (const table of HISTORY_TABLE_NAMES) {
    if (await isPartitioned(client, table)) created.push(...(await ensurePartitions(client, table, now, monthStart(now, MONTHS_AHEAD))));
  }
  return created;
}

/**
 * Keeps the history's partitions, on one replica: partitions the old status history if a replica
 * starting found it too large to do it then, makes months ahead of need, and drops months older than
 * the retention from both history tables.
 */
export class HistoryMaintainer extends SingletonJob {
  constructor(
    databaseUrl: string,
    private readonly log: Logger,
    private readonly options: HistoryOptions,
  ) {
    super({ databaseUrl, lockKey: MAINTAINER_LOCK, name: 'history maintenance', applicationName: 'fleetgate-history', intervalMs: options.intervalMs, log });
  }

  protected async work(client: pg.Client): Promise<void> {
    const now = new Date();
    await run(client, sql`select pg_advisory_lock(${PARTITIONS_LOCK})`);
    try {
      await partitionStatusEvents(client, this.log, now);
      const created = await ensureCurrentPartitions(client, now);
      if (created.length > 0) this.log.info({ partitions: created }, 'history partitions made ahead of need');
      const cutoff = retentionCutoff(now, this.options.retentionDays);
      for (const table of HISTORY_TABLE_NAMES) await dropPartitionsBefore(client, table, cutoff, this.log);
    } finally {
      await run(client, sql`select pg_advisory_unlock(${PARTITIONS_LOCK})`);
    }
  }
}
