import type pg from 'pg';
import { SingletonJob } from '../db/leader';
import { run, sql } from '../db/sql';
import type { Logger } from '../log';
import { insertStatusEvents, type RecordedEvent } from './events-table';

export interface OfflineRule {
  /** A box is offline after this many report periods without a report. Default 3. */
  periods: number;
  /** ... and never sooner than this. Default 30 s. */
  minSeconds: number;
  /** The period assumed while neither a configured nor an observed one is known. Default 60 s (the vendor's). */
  defaultPeriodSeconds: number;
}

export interface SweeperOptions extends OfflineRule {
  /** How often the sweep runs, and how often a replica without the lock asks for it. Default 2000 ms. */
  intervalMs: number;
}

/** Session-level advisory lock: held by the one replica that sweeps, released when it dies. */
const SWEEP_LOCK = 0x666c_6773; // "flgs"

/** Boxes silent for `periods` report periods (and at least `minSeconds`) go offline; their ids are returned. */
function markSilentBoxesOffline(now: Date, { periods, minSeconds, defaultPeriodSeconds }: OfflineRule) {
  // The configured period wins, then the one observed between reports.
  return sql`update boxes set status = 'offline', status_since = ${now}
    where status = 'online' and removed_at is null and last_report_at is not null
      and last_report_at < ${now}::timestamptz - make_interval(secs => greatest(
        ${minSeconds}::float8, ${periods}::float8 * coalesce(report_period_seconds, observed_period_seconds, ${defaultPeriodSeconds}::float8)))
    returning id`;
}

/**
 * Marks boxes offline when they fall silent, on exactly one replica at a time (a SingletonJob): the
 * replica that holds the advisory lock sweeps, the others keep asking.
 */
export class OfflineSweeper extends SingletonJob {
  constructor(
    databaseUrl: string,
    private readonly log: Logger,
    private readonly options: SweeperOptions,
    /** Told of the events a sweep committed (EventHub.published). */
    private readonly onCommitted: (events: RecordedEvent[]) => void = () => {},
  ) {
    super({ databaseUrl, lockKey: SWEEP_LOCK, name: 'offline sweep', applicationName: 'fleetgate-sweeper', intervalMs: options.intervalMs, log });
  }

  protected work(client: pg.Client): Promise<void> {
    return this.sweep(client, new Date());
  }

  /** Marks silent boxes offline with one event each, in one transaction. */
  private async sweep(client: pg.Client, now: Date): Promise<void> {
    await run(client, sql`begin`);
    try {
      const { rows } = await run<{ id: number }>(client, markSilentBoxesOffline(now, this.options));
      const events = await insertStatusEvents(
        client,
        rows.map((r) => ({ box_id: r.id, device_id: null, from_status: 'online', to_status: 'offline', at: now })),
      );
      await run(client, sql`commit`);
      if (events.length > 0) {
        this.log.info({ boxes: events.length }, 'boxes fell silent; marked offline');
        this.onCommitted(events);
      }
    } catch (error) {
      await run(client, sql`rollback`).catch(() => {});
      throw error;
    }
  }
}
