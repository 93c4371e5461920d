import type pg from 'pg';
import { Listener } from '../../db/listener';
import type { Logger } from '../../log';
import { ALERT_CHANGES_CHANNEL } from '../changes';
import { claimDue, recordAttempts, type ClaimedNotification, type FinishedAttempt, type RetryPolicy } from './outbox';
import { WEBHOOKS_DUE_CHANNEL } from './redeliver';
import { keepAliveAgents, sendWebhook } from './send';
import type { WebhookNetworks } from './webhook-networks';

export interface DelivererOptions {
  /** Deadline of one attempt (WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number;
  retry: RetryPolicy;
  /** Sends to one channel at once from this process (WEBHOOK_CHANNEL_CONCURRENCY). */
  channelConcurrency: number;
  /** Sends at once in this process (WEBHOOK_CONCURRENCY); claims never exceed the free slots. */
  concurrency: number;
  /** How often to look for due notifications without a NOTIFY (retries come due by time). */
  pollIntervalMs: number;
  networks: WebhookNetworks;
  /** On stop, sends still under way get this long to finish; the rest are abandoned with their lease. */
  stopGraceMs?: number;
}

/** How long a finished send waits for others to finish before its slot is refilled. */
const CLAIM_GATHER_MS = 3;

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
  /** Sends under way by channel id: each channel gets at most channelConcurrency of this process's slots. */
  private readonly perChannel = new Map<number, number>();
  private readonly abort = new AbortController();
  private readonly agents = keepAliveAgents();
  private timer: NodeJS.Timeout | undefined;
  private readonly listener: Listener;
  private claiming: Promise<void> | undefined;
  private again = false;
  private soon: NodeJS.Timeout | undefined;
  /** Attempts finished and not yet recorded: written together, one statement per batch. */
  private unrecorded: Array<FinishedAttempt & { recorded: () => void }> = [];
  private recording: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly pool: pg.Pool,
    databaseUrl: string,
    private readonly log: Logger,
    private readonly options: DelivererOptions,
  ) {
    this.listener = new Listener({
      databaseUrl,
      applicationName: 'fleetgate-webhooks',
      channels: [ALERT_CHANGES_CHANNEL, WEBHOOKS_DUE_CHANNEL],
      onNotification: () => this.poke(),
      onReconnected: () => this.poke(),
      name: 'webhook listener',
      log,
    });
  }

  /** Sends under way in this process. */
  get sending(): number {
    return this.inFlight.size;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.listener.start().catch((error) => this.log.warn({ err: (error as Error).message }, 'webhook deliverer cannot LISTEN; polling only'));
    this.timer = setInterval(() => this.poke(), this.options.pollIntervalMs);
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

  /** A poke a moment from now, so the sends that end together are refilled by one claim, not one each. */
  private pokeSoon(): void {
    if (this.soon || this.stopped) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.poke();
    }, CLAIM_GATHER_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.claiming;
    await this.listener.stop();
    const grace = new Promise<void>((resolve) => setTimeout(resolve, this.options.stopGraceMs ?? 2_000).unref());
    await Promise.race([Promise.all(this.inFlight.values()), grace]);
    // Abandoned sends are not recorded: their leases lapse and a replica sends them again.
    this.abort.abort();
    await Promise.all(this.inFlight.values());
    this.agents.destroy();
  }

  private async claimAndSend(): Promise<void> {
    const claimed = await claimDue(this.pool, {
      free: this.options.concurrency - this.inFlight.size,
      perChannel: this.options.channelConcurrency,
      sending: this.perChannel,
      leaseMs: this.options.timeoutMs + LEASE_MARGIN_MS,
    });
    for (const notification of claimed) {
      const channel = notification.channelId;
      this.perChannel.set(channel, (this.perChannel.get(channel) ?? 0) + 1);
      // The channel's slot frees when the send ends; the process slot when the attempt is recorded
      // (so what waits in memory stays within WEBHOOK_CONCURRENCY).
      const sent = () => {
        const left = this.perChannel.get(channel)! - 1;
        if (left === 0) this.perChannel.delete(channel);
        else this.perChannel.set(channel, left);
      };
      const done = this.deliver(notification, sent).finally(() => {
        this.inFlight.delete(notification.id);
        this.pokeSoon(); // a slot is free, and this alert's next notification may now be due
      });
      this.inFlight.set(notification.id, done);
    }
  }

  private async deliver(notification: ClaimedNotification, sent: () => void): Promise<void> {
    const startedAt = new Date();
    let result;
    try {
      result = await sendWebhook(
        {
          url: notification.url,
          secret: notification.secret,
          event: notification.kind.toUpperCase(),
          idempotencyKey: notification.idempotencyKey,
          body: Buffer.from(notification.payload),
        },
        { timeoutMs: this.options.timeoutMs, networks: this.options.networks, signal: this.abort.signal, agents: this.agents },
      );
    } finally {
      sent();
    }
    // Abandoned (stopping): not recorded; its lease lapses and a replica sends it again.
    if (this.abort.signal.aborted) return;
    if (result.outcome !== 'delivered') {
      this.log.info({ notification: notification.id, channel: notification.channelId, outcome: result.outcome, httpStatus: result.httpStatus }, 'webhook not delivered');
    }
    await new Promise<void>((recorded) => {
      this.unrecorded.push({ claimed: notification, startedAt, result, recorded });
      this.record();
    });
  }

  /** Writes the finished attempts waiting, in one statement; those finishing meanwhile go in the next. */
  private record(): void {
    if (this.recording || this.unrecorded.length === 0) return;
    const batch = this.unrecorded;
    this.unrecorded = [];
    this.recording = recordAttempts(this.pool, batch, this.options.retry)
      .then(() => undefined)
      .catch((error) => {
        // Not recorded: the leases lapse and these notifications are sent again (at least once).
        this.log.warn({ notifications: batch.length, err: (error as Error).message }, 'webhook attempts not recorded');
      })
      .finally(() => {
        this.recording = undefined;
        for (const item of batch) item.recorded();
        this.record();
      });
  }
}
