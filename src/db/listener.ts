import pg from 'pg';
import type { Logger } from '../log';
import { run, sql } from './sql';

export interface ListenerOptions {
  databaseUrl: string;
  /** The session's name in pg_stat_activity. */
  applicationName: string;
  channels: readonly string[];
  onNotification(channel: string, payload: string | undefined): void;
  /** A lost session was replaced: NOTIFYs sent meanwhile are gone, so read what was missed. */
  onReconnected(): void;
  /** Said in the log lines ("alert change listener connection lost"). */
  name: string;
  log: Logger;
}

/**
 * A LISTEN session that stays: one connection listening on `channels`. A lost one is replaced
 * (after 250 ms, doubling to 5 s while Postgres refuses) and `onReconnected` runs, since Postgres
 * keeps no NOTIFY for a session that is gone. The live event hub, the alert change hub and the
 * webhook deliverer each hold one.
 */
export class Listener {
  private client: pg.Client | undefined;
  private stopped = true;
  private delayMs = 250;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly options: ListenerOptions) {}

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Connects and listens; throws when Postgres cannot be reached (a lost session later is replaced). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const { databaseUrl, applicationName, channels, onNotification, log, name } = this.options;
    const client = new pg.Client({ connectionString: databaseUrl, application_name: applicationName });
    client.on('notification', (message) => onNotification(message.channel, message.payload));
    client.on('error', (error) => {
      log.warn({ err: error.message }, `${name} connection lost; reconnecting`);
      this.reconnect(client);
    });
    client.on('end', () => this.reconnect(client));
    try {
      await client.connect();
      for (const channel of channels) await run(client, sql`listen ${sql.identifier(channel)}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.stopped) return void (await client.end().catch(() => {}));
    this.client = client;
    this.delayMs = 250;
  }

  private reconnect(lost: pg.Client): void {
    if (this.stopped || this.client !== lost) return;
    this.client = undefined;
    lost.end().catch(() => {});
    const again = () => {
      if (this.stopped) return;
      this.connect()
        .then(() => {
          this.options.log.info(`${this.options.name} reconnected; catching up`);
          this.options.onReconnected();
        })
        .catch(() => {
          this.delayMs = Math.min(this.delayMs * 2, 5_000);
          this.retry = setTimeout(again, this.delayMs);
        });
    };
    this.retry = setTimeout(again, this.delayMs);
  }
}
