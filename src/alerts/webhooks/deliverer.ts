import pg from 'pg';
import type { Logger } from '../../log';
import { ALERT_CHANGES_CHANNEL } from '../changes';
import { claimDue, recordAttempt, type ClaimedNotification, type RetryPolicy } from './outbox';
import { WEBHOOKS_DUE_CHANNEL } from './redeliver';
import { sendWebhook } from './send';
import type { WebhookNetworks } from './webhook-networks';

export interface DelivererOptions {
  /** Deadline of one attempt (WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number;
  retry: RetryPolicy;
  /** Sends to one channel at once, across replicas (WEBHOOK_CHANNEL_CONCURRENCY). */
  channelConcurrency: number;
  /** Sends at once in this process (WEBHOOK_CONCURRENCY); claims never exceed the free slots. */
  concurrency: number;
  /** How often to look for due notifications without a NOTIFY (retries come due by time). */
  pollIntervalMs: number;
  networks: WebhookNetworks;
  /** On stop, sends still under way get this long to finish; the rest are abandoned with their lease. */
  stopGraceMs?: number;
}

/** Lease beyond the send deadline: time to record the attempt before another replica may take it over. */
const LEASE_MARGIN_MS = 5_000;

/**
 * Sends the outbox (alert_notifications). Runs on every replica: claims are leased rows taken with
 * SKIP LOCKED, so replicas share the work and a notification whose deliverer died (kill -9) is sent
 * again by another once its lease lapses, with the same Idempotency-Key: at least once.
 * Wakes every pollIntervalMs, on `poke()`, and on NOTIFY of an alert change or a redelivery.
 */
export class WebhookDeliverer {
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private listener: pg.Client | undefined;
  private claiming: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly pool: pg.Pool,
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly options: DelivererOptions,
  ) {}

  /** Sends under way in this process. */
  get sending(): number {
    return this.inFlight.size;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.listen().catch((error) => this.log.warn({ err: (error as Error).message }, 'webhook deliverer cannot LISTEN; polling only'));
    this.timer = setInterval(() => {
      if (!this.listener) void this.listen().catch(() => {});
      this.poke();
    }, this.options.pollIntervalMs);
    this.poke();
  }

  /** Look for due notifications now (this process just queued some). */
  poke(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = this.claimAndSend()
      .catch((error) => this.log.warn({ err: (error as Error).message }, 'webhook claim failed; will retry'))
      .finally(() => {
        this.claiming = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.claiming;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
    const grace = new Promise<void>((resolve) => setTimeout(resolve, this.options.stopGraceMs ?? 2_000).unref());
    await Promise.race([Promise.all(this.inFlight.values()), grace]);
    // Abandoned sends are not recorded: their leases lapse and a replica sends them again.
    this.abort.abort();
    await Promise.all(this.inFlight.values());
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'fleetgate-webhooks' });
    client.on('error', () => {
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => {});
    });
    client.on('notification', () => this.poke());
    await client.connect();
    await client.query(`listen ${ALERT_CHANGES_CHANNEL}`);
    await client.query(`listen ${WEBHOOKS_DUE_CHANNEL}`);
    if (this.stopped) return void (await client.end());
    this.listener = client;
  }

  private async claimAndSend(): Promise<void> {
    const claimed = await claimDue(this.pool, {
      free: this.options.concurrency - this.inFlight.size,
      perChannel: this.options.channelConcurrency,
      leaseMs: this.options.timeoutMs + LEASE_MARGIN_MS,
    });
    for (const notification of claimed) {
      const done = this.deliver(notification).finally(() => {
        this.inFlight.delete(notification.id);
        this.poke(); // a slot is free, and this alert's next notification may now be due
      });
      this.inFlight.set(notification.id, done);
    }
  }

  private async deliver(notification: ClaimedNotification): Promise<void> {
    const startedAt = new Date();
    const result = await sendWebhook(
      {
        url: notification.url,
        secret: notification.secret,
        event: notification.kind.toUpperCase(),
        idempotencyKey: notification.idempotencyKey,
        body: Buffer.from(JSON.stringify(notification.payload)),
      },
      { timeoutMs: this.options.timeoutMs, networks: this.options.networks, signal: this.abort.signal },
    );
    if (this.abort.signal.aborted) return;
    try {
      const status = await recordAttempt(this.pool, notification, startedAt, result, this.options.retry);
      if (result.outcome !== 'delivered') {
        this.log.info({ notification: notification.id, channel: notification.channelId, outcome: result.outcome, httpStatus: result.httpStatus, status }, 'webhook not delivered');
      }
    } catch (error) {
      // Not recorded: the lease lapses and the notification is sent again (at least once).
      this.log.warn({ notification: notification.id, err: (error as Error).message }, 'webhook attempt not recorded');
    }
  }
}
