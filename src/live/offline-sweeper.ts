import pg from 'pg';
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
 * Marks boxes offline when they fall silent, on exactly one replica at a time. Every replica runs
 * one; the one that holds the advisory lock sweeps, the others keep asking, so the job moves when
 * the holder's connection (and so its lock) goes away.
 */
export class OfflineSweeper {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private leader = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly options: SweeperOptions,
    /** Told of the events a sweep committed (EventHub.published). */
    private readonly onCommitted: (events: RecordedEvent[]) => void = () => {},
  ) {}

  /** Whether this replica currently holds the sweep. */
  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    // Ending the session releases the lock at once, so another replica takes over on its next tick.
    await this.client?.end().catch(() => {});
    this.client = undefined;
    this.leader = false;
  }

  private tick(): void {
    if (this.running || !this.timer) return;
    this.running = this.round()
      .catch((error) => {
        this.log.warn({ err: (error as Error).message }, 'offline sweep failed; will retry');
        this.leader = false;
        this.client?.end().catch(() => {});
        this.client = undefined;
      })
      .finally(() => (this.running = undefined));
  }

  private async round(): Promise<void> {
    if (!this.client) {
      const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'fleetgate-sweeper' });
      client.on('error', () => {}); // surfaces on the next query, which the round catches
      await client.connect();
      this.client = client;
    }
    if (!this.leader) {
      const { rows } = await run<{ locked: boolean }>(this.client, sql`select pg_try_advisory_lock(${SWEEP_LOCK}) as locked`);
      this.leader = rows[0]!.locked;
      if (this.leader) this.log.info('this replica now runs the offline sweep');
    }
    if (this.leader) await this.sweep(this.client, new Date());
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
