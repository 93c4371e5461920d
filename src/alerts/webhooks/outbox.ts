import type pg from 'pg';
import { run, sql } from '../../db/sql';
import type { AttemptResult } from './send';

// The deliverer's two statements on the outbox (alert_notifications): claim due notifications with
// a lease, and record an attempt's result. Any replica may run them at any time.

/** A notification claimed for one attempt, with what is needed to send it. */
export interface ClaimedNotification {
  id: number;
  channelId: number;
  kind: string;
  idempotencyKey: string;
  payload: unknown;
  /** Attempts so far (since the last redelivery). */
  attempts: number;
  /** The lease this claim set: the record only lands while the notification still holds it. */
  leaseUntil: Date;
  url: string;
  secret: string;
}

export interface ClaimLimits {
  /** Most notifications to claim now: this process's free send slots. */
  free: number;
  /** Most sends under way to one channel, counted by live leases on every replica. */
  perChannel: number;
  /** How long a claim holds: the send deadline and a margin, after which another replica may send it. */
  leaseMs: number;
}

/**
 * Claims due notifications in one statement: pending, due, not leased (or its lease lapsed), no
 * earlier pending notification of the same alert and channel (so each receiver gets an alert's
 * notifications in order), and its channel under its cap. Candidates are picked first (the window
 * function cannot sit beside FOR UPDATE), then locked with SKIP LOCKED and re-checked, so two
 * replicas never claim the same row. Channels at their cap are left out of the scan, so one slow
 * receiver's backlog never hides other channels' notifications.
 */
export async function claimDue(db: pg.Pool, limits: ClaimLimits): Promise<ClaimedNotification[]> {
  if (limits.free <= 0) return [];
  const { rows } = await run<ClaimedNotification & { leaseUntil: Date }>(
    db,
    sql`with busy as (
          select channel_id, count(*)::int as leased from alert_notifications
          where status = 'pending' and lease_until > now() group by channel_id),
        due as (
          select n.id, n.channel_id, n.next_attempt_at from alert_notifications n
          where n.status = 'pending' and n.next_attempt_at <= now() and (n.lease_until is null or n.lease_until <= now())
            and n.channel_id not in (select channel_id from busy where leased >= ${limits.perChannel})
            and not exists (
              select 1 from alert_notifications e
              where e.alert_id = n.alert_id and e.channel_id = n.channel_id and e.status = 'pending' and e.id < n.id)
          order by n.next_attempt_at, n.id
          limit ${Math.max(limits.free * 8, 256)}),
        ranked as (
          select due.id, due.next_attempt_at, row_number() over (partition by due.channel_id order by due.next_attempt_at, due.id) + coalesce(busy.leased, 0) as slot
          from due left join busy using (channel_id)),
        picked as (select id from ranked where slot <= ${limits.perChannel} order by next_attempt_at, id limit ${limits.free}),
        locked as (
          select n.id from alert_notifications n
          where n.id in (select id from picked) and n.status = 'pending' and (n.lease_until is null or n.lease_until <= now())
          for update of n skip locked)
        -- whole milliseconds, so the lease read back into a Date compares equal when the attempt is recorded
        update alert_notifications n set lease_until = date_trunc('milliseconds', now() + make_interval(secs => ${limits.leaseMs / 1000}))
        from locked, webhook_channels w
        where n.id = locked.id and w.id = n.channel_id
        returning n.id::int as id, n.channel_id as "channelId", n.kind, n.idempotency_key as "idempotencyKey", n.payload, n.attempts,
          n.lease_until as "leaseUntil", w.url, w.secret`,
    'fleetgate_webhook_claim',
  );
  return rows.sort((a, b) => a.id - b.id);
}

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

/** Full jitter: a random delay up to base × 2^(failures − 1), capped at max (AWS's "exponential backoff and jitter"). */
export function backoffMs(failures: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 40));
  return Math.floor(Math.random() * ceiling);
}

/**
 * Records one attempt in webhook_attempts (always: it happened) and moves the notification on:
 * delivered; or due again after a backoff; or dead after the last attempt. The notification changes
 * only while it still holds this claim's lease (a lapsed lease may already be another replica's).
 * Returns the notification's status, or null when the lease was lost or the notification is gone.
 */
export async function recordAttempt(
  db: pg.Pool,
  claimed: ClaimedNotification,
  startedAt: Date,
  result: AttemptResult,
  policy: RetryPolicy,
): Promise<'delivered' | 'pending' | 'dead' | null> {
  const delivered = result.outcome === 'delivered';
  const attempts = claimed.attempts + 1;
  const status = delivered ? 'delivered' : attempts >= policy.maxAttempts ? 'dead' : 'pending';
  const retryMs = status === 'pending' ? backoffMs(attempts, policy) : 0;
  const { rows } = await run<{ status: 'delivered' | 'pending' | 'dead' }>(
    db,
    sql`with attempt as (
          insert into webhook_attempts (notification_id, attempt, started_at, outcome, http_status, latency_ms, error)
          select n.id, coalesce((select max(a.attempt) from webhook_attempts a where a.notification_id = n.id), 0) + 1,
            ${startedAt}::timestamptz, ${result.outcome}::text, ${result.httpStatus}::int, ${result.latencyMs}::int, ${result.error}::text
          from alert_notifications n where n.id = ${claimed.id})
        update alert_notifications set
          attempts = attempts + 1, lease_until = null, status = ${status},
          delivered_at = case when ${delivered} then now() end,
          next_attempt_at = case when ${status} = 'pending' then now() + make_interval(secs => ${retryMs / 1000}) else next_attempt_at end,
          last_error = ${result.error}
        where id = ${claimed.id} and status = 'pending' and lease_until = ${claimed.leaseUntil}::timestamptz
        returning status`,
    'fleetgate_webhook_record',
  );
  return rows[0]?.status ?? null;
}
