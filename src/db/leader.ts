import pg from 'pg';
import type { Logger } from '../log';
import { run, sql } from './sql';

/**
 * A job that runs on exactly one replica at a time: every replica keeps a session that asks for the
 * job's advisory lock each round; the one holding it does the job, and when its connection (and so its
 * lock) goes away, another takes over on its next round. Postgres elects; no cluster layer.
 * A job is a subclass: its `work` is one round, on the leader's session.
 */
export abstract class SingletonJob {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private leader = false;
  /** A round asked for (runSoon) while one ran: run once more when it ends. */
  private again = false;
  private queued: NodeJS.Timeout | undefined;
  private lastRoundMs = 0;
  private lastEndedAt = 0;

  constructor(
    private readonly election: {
      databaseUrl: string;
      /** The session-level advisory lock that elects the replica. */
      lockKey: number;
      /** Said in the log lines. */
      name: string;
      /** The session's name in pg_stat_activity. */
      applicationName: string;
      intervalMs: number;
      log: Logger;
    },
  ) {}

  /** One round of the job, on the leader's session. */
  protected abstract work(client: pg.Client): Promise<void>;

  /** Whether this replica currently holds the job. */
  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    // Through runSoon: a round that outlasts the interval is followed by a pause as long as itself.
    this.timer = setInterval(() => this.runSoon(), this.election.intervalMs);
    this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    clearTimeout(this.queued);
    this.queued = undefined;
    await this.running;
    // Ending the session releases the lock at once, so another replica takes over on its next round.
    await this.client?.end().catch(() => {});
    this.client = undefined;
    this.leader = false;
  }

  /**
   * Runs a round as soon as possible, e.g. because something it watches just changed: at once when
   * idle, else once after the running round (calls coalesce: one running, one queued). The queued
   * round waits as long as the last one took (at most the interval), so a stream of changes keeps the
   * job busy half the time at most, leaving the database to the work that causes the changes.
   */
  runSoon(): void {
    if (!this.timer) return;
    if (this.running || this.queued) return void (this.again = true);
    const wait = this.lastEndedAt + Math.min(this.lastRoundMs, this.election.intervalMs) - performance.now();
    if (wait > 0) this.queued = setTimeout(() => this.tick(), wait);
    else this.tick();
  }

  private tick(): void {
    if (this.running || !this.timer) return;
    clearTimeout(this.queued);
    this.queued = undefined;
    this.again = false;
    const started = performance.now();
    this.running = this.round()
      .catch((error) => {
        this.election.log.warn({ err: (error as Error).message }, `${this.election.name} failed; will retry`);
        this.leader = false;
        this.client?.end().catch(() => {});
        this.client = undefined;
      })
      .finally(() => {
        this.running = undefined;
        this.lastEndedAt = performance.now();
        this.lastRoundMs = this.lastEndedAt - started;
        if (this.again && this.timer) this.queued = setTimeout(() => this.tick(), Math.min(this.lastRoundMs, this.election.intervalMs));
      });
  }

  private async round(): Promise<void> {
    if (!this.client) {
      const client = new pg.Client({ connectionString: this.election.databaseUrl, application_name: this.election.applicationName });
      client.on('error', () => {}); // surfaces on the next query, which the round catches
      await client.connect();
      this.client = client;
    }
    if (!this.leader) {
      const { rows } = await run<{ locked: boolean }>(this.client, sql`select pg_try_advisory_lock(${this.election.lockKey}) as locked`);
      this.leader = rows[0]!.locked;
      if (this.leader) this.election.log.info(`this replica now runs the ${this.election.name}`);
    }
    if (this.leader) await this.work(this.client);
  }
}
