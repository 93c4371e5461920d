import pg from 'pg';
import { Listener } from '../db/listener';
import type { Alert, AlertChangeKind } from '../db/schema';
import { run, selectRows, sql } from '../db/sql';
import type { Logger } from '../log';
import { ALERT_CHANGES_CHANNEL } from './changes';

/** One committed row of `alert_changes`, with its alert as it is now. */
export interface AlertChangeRecord {
  id: number;
  kind: AlertChangeKind;
  at: Date;
  alert: Omit<Alert, 'updatedAt'>;
}

export class AlertSubscriberTooSlow extends Error {
  constructor(readonly bufferSize: number) {
    super(`The subscriber fell ${bufferSize} alert changes behind and was disconnected; resubscribe from your last cursor.`);
  }
}

interface Subscriber {
  accepts(change: AlertChangeRecord): boolean;
  push(change: AlertChangeRecord): void;
}

const CHANGE_COLUMNS = sql`c.id as "changeId", c.kind as "changeKind", c.at as "changeAt",
  a.id, a.rule_id as "ruleId", a.subject, a.box_id as "boxId", a.device_id as "deviceId", a.state, a.severity, a.value,
  a.condition_since as "conditionSince", a.fires_at as "firesAt", a.fired_at as "firedAt", a.acknowledged_at as "acknowledgedAt",
  a.acknowledged_by as "acknowledgedBy", a.acknowledge_comment as "acknowledgeComment", a.resolved_at as "resolvedAt", a.resolution,
  a.next_repeat_at as "nextRepeatAt"`;

/**
 * One per gateway process, the alert counterpart of live/event-hub.ts (alert changes are few next to
 * status events, so it keeps only what they need): LISTENs for "alert changes committed up to id N",
 * reads `id > last delivered` once in id order with the alerts, and hands them to local subscribers.
 * Change ids commit in order (alerts/changes.ts), so reading by id never skips one.
 */
export class AlertChangeHub {
  private readonly listener: Listener;
  private readonly subscribers = new Set<Subscriber>();
  private delivered = 0;
  private fetching: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private poll: NodeJS.Timeout | undefined;

  constructor(
    databaseUrl: string,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly options: { pollIntervalMs: number; pageSize?: number },
  ) {
    this.listener = new Listener({
      databaseUrl,
      applicationName: 'fleetgate-alert-listen',
      channels: [ALERT_CHANGES_CHANNEL],
      onNotification: (_channel, payload) => {
        if (Number(payload) > this.delivered) this.catchUp();
      },
      onReconnected: () => this.catchUp(),
      name: 'alert change listener',
      log,
    });
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** The id of the last change committed, as the database says now (the hub may not have heard of it yet). */
  async lastCommittedId(): Promise<number> {
    const { rows } = await run<{ id: number }>(this.pool, sql`select coalesce(max(id), 0)::int8 as id from alert_changes`, 'alert_hub_last');
    return rows[0]!.id;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.delivered = await this.lastCommittedId();
    await this.listener.start();
    this.poll = setInterval(() => this.catchUp(), this.options.pollIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    await this.fetching;
    await this.listener.stop();
  }

  /** Changes with ids in (afterId, untilId], oldest first, at most `limit`: for replays from a cursor. */
  async changesBetween(afterId: number, untilId: number, limit: number): Promise<AlertChangeRecord[]> {
    const rows = await selectRows<Omit<Alert, 'updatedAt'> & { changeId: number; changeKind: AlertChangeKind; changeAt: Date }>(
      this.pool,
      sql`select ${CHANGE_COLUMNS} from alert_changes c join alerts a on a.id = c.alert_id
          where c.id > ${afterId} and c.id <= ${untilId} order by c.id limit ${limit}`,
    );
    return rows.map(({ changeId, changeKind, changeAt, ...alert }) => ({ id: changeId, kind: changeKind, at: changeAt, alert }));
  }

  /**
   * Changes accepted by `filter` delivered after this call; `startsAfter` is the last id delivered
   * before it, so a replay up to it joins them with no gap and no duplicate. At most `bufferSize` may
   * wait for a slow reader; one more ends the iteration with AlertSubscriberTooSlow.
   */
  subscribe(filter: (change: AlertChangeRecord) => boolean, bufferSize: number): { changes: AsyncIterableIterator<AlertChangeRecord>; startsAfter: number } {
    const startsAfter = this.delivered;
    const buffer: AlertChangeRecord[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    let done = false;
    const subscriber: Subscriber = {
      accepts: (change) => change.id > startsAfter && filter(change),
      push: (change) => {
        if (buffer.length >= bufferSize) {
          failure = new AlertSubscriberTooSlow(bufferSize);
          buffer.length = 0;
          this.subscribers.delete(subscriber);
        } else buffer.push(change);
        wake?.();
      },
    };
    this.subscribers.add(subscriber);
    const finish = () => {
      done = true;
      this.subscribers.delete(subscriber);
      wake?.();
    };
    const changes: AsyncIterableIterator<AlertChangeRecord> = {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        for (;;) {
          if (failure) {
            const error = failure;
            failure = undefined;
            finish();
            throw error;
          }
          const change = buffer.shift();
          if (change) return { value: change, done: false };
          if (done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
      async return() {
        finish();
        return { value: undefined, done: true };
      },
    };
    return { changes, startsAfter };
  }

  /** Reads and delivers everything after the last delivered id; one reader at a time. */
  private catchUp(): void {
    if (this.stopped) return;
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = this.readNewChanges()
      .catch((error) => this.log.warn({ err: (error as Error).message }, 'reading new alert changes failed; will retry'))
      .finally(() => {
        this.fetching = undefined;
        if (this.again) {
          this.again = false;
          this.catchUp();
        }
      });
  }

  private async readNewChanges(): Promise<void> {
    const pageSize = this.options.pageSize ?? 1000;
    for (;;) {
      // With nobody subscribed only the position moves on: nothing is read that nobody wants.
      if (this.subscribers.size === 0) {
        const last = await this.lastCommittedId();
        // One may have subscribed meanwhile (from the old position): then read for it after all.
        if (this.subscribers.size > 0) continue;
        this.delivered = Math.max(this.delivered, last);
        return;
      }
      const changes = await this.changesBetween(this.delivered, Number.MAX_SAFE_INTEGER, pageSize);
      for (const change of changes) {
        this.delivered = change.id;
        for (const subscriber of this.subscribers) if (subscriber.accepts(change)) subscriber.push(change);
      }
      if (changes.length < pageSize) return;
    }
  }
}
