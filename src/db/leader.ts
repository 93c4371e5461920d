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
    this.timer = setInterval(() => this.tick(), this.election.intervalMs);
    this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    // Ending the session releases the lock at once, so another replica takes over on its next round.
    await this.client?.end().catch(() => {});
    this.client = undefined;
    this.leader = false;
  }

  /**
   * Runs a round as soon as possible, e.g. because something it watches just changed: at once when
   * idle, else once right after the running round (calls coalesce: one running, one queued).
   */
  runSoon(): void {
    if (!this.timer) return;
    if (this.running) this.again = true;
    else this.tick();
  }

  private tick(): void {
    if (this.running || !this.timer) return;
    this.running = this.round()
      .catch((error) => {
        this.election.log.warn({ err: (error as Error).message }, `${this.election.name} failed; will retry`);
        this.leader = false;
        this.client?.end().catch(() => {});
        this.client = undefined;
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.tick();
        }
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
