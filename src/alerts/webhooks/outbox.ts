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
  /** The JSON body as Postgres writes jsonb out: sent as it is, with no parse and print in between. */
  payload: string;
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
  /** Most sends under way to one channel from this process. */
  perChannel: number;
  /** This process's sends under way, by channel id. */
  sending: ReadonlyMap<number, number>;
  /** How long a claim holds: the send deadline and a margin, after which another replica may send it. */
  leaseMs: number;
}

/**
 * Claims due notifications in one statement: pending, due, not leased (or its lease lapsed), no
 * earlier pending notification of the same alert and channel (so each receiver gets an alert's
 * notifications in order), and its channel under this process's cap. Candidates are picked first
 * (the window function cannot sit beside FOR UPDATE), then locked with SKIP LOCKED and re-checked,
 * so two replicas never claim the same row. Channels at their cap are left out of the scan, so one
 * slow receiver's backlog never hides other channels' notifications.
 */
export async function claimDue(db: pg.Pool, limits: ClaimLimits): Promise<ClaimedNotification[]> {
  if (limits.free <= 0) return [];
  const channels = [...limits.sending.keys()];
  const counts = channels.map((id) => limits.sending.get(id)!);
  const full = channels.filter((id) => limits.sending.get(id)! >= limits.perChannel);
  // One parameter per list, as a Postgres array literal (the sql tag would spread a JS array into many).
  const intArray = (values: number[]) => `{${values.join(',')}}`;
  const { rows } = await run<ClaimedNotification & { leaseUntil: Date }>(
    db,
    sql`with due as (
          select n.id, n.channel_id, n.next_attempt_at from alert_notifications n
          where n.status = 'pending' and n.next_attempt_at <= now() and (n.lease_until is null or n.lease_until <= now())
            and n.channel_id <> all(${intArray(full)}::int[])
            and not exists (
              select 1 from alert_notifications e
              where e.alert_id = n.alert_id and e.channel_id = n.channel_id and e.status = 'pending' and e.id < n.id)
          order by n.next_attempt_at, n.id
          limit ${Math.max(limits.free * 4, 64)}),
        ranked as (
          select due.id, due.next_attempt_at,
            row_number() over (partition by due.channel_id order by due.next_attempt_at, due.id) + coalesce(busy.sending, 0) as slot
          from due left join unnest(${intArray(channels)}::int[], ${intArray(counts)}::int[]) as busy(channel_id, sending) using (channel_id)),
        picked as (select id from ranked where slot <= ${limits.perChannel} order by next_attempt_at, id limit ${limits.free}),
        locked as (
          select n.id from alert_notifications n
          where n.id in (select id from picked) and n.status = 'pending' and (n.lease_until is null or n.lease_until <= now())
          for update of n skip locked)
        -- whole milliseconds, so the lease read back into a Date compares equal when the attempt is recorded
        update alert_notifications n set lease_until = date_trunc('milliseconds', now() + make_interval(secs => ${limits.leaseMs / 1000}))
        from locked, webhook_channels w
        where n.id = locked.id and w.id = n.channel_id
        returning n.id::int as id, n.channel_id as "channelId", n.kind, n.idempotency_key as "idempotencyKey", n.payload::text as payload, n.attempts,
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

/** One finished attempt to record. */
export interface FinishedAttempt {
  claimed: ClaimedNotification;
  startedAt: Date;
  result: AttemptResult;
}

/**
 * Records finished attempts in one statement: each in webhook_attempts (always: it happened), and
 * each notification moved on: delivered; or due again after a backoff; or dead after the last
 * attempt. A notification changes only while it still holds its claim's lease (a lapsed lease may
 * already be another replica's). Returns the new status by notification id; absent: lease lost or
 * notification gone (its channel deleted).
 */
export async function recordAttempts(db: pg.Pool, finished: readonly FinishedAttempt[], policy: RetryPolicy): Promise<Map<number, string>> {
  if (finished.length === 0) return new Map();
  const input = finished.map(({ claimed, startedAt, result }) => {
    const status = result.outcome === 'delivered' ? 'delivered' : claimed.attempts + 1 >= policy.maxAttempts ? 'dead' : 'pending';
    return {
      id: claimed.id,
      lease: claimed.leaseUntil.toISOString(),
      started_at: startedAt.toISOString(),
      outcome: result.outcome,
      http_status: result.httpStatus,
      latency_ms: result.latencyMs,
      error: result.error,
      status,
      retry_ms: status === 'pending' ? backoffMs(claimed.attempts + 1, policy) : 0,
    };
  });
  const { rows } = await run<{ id: number; status: string }>(
    db,
    sql`with input as (
          select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as i(id bigint, lease timestamptz, started_at timestamptz,
            outcome text, http_status int, latency_ms int, error text, status text, retry_ms double precision)),
        attempt as (
          insert into webhook_attempts (notification_id, attempt, started_at, outcome, http_status, latency_ms, error)
          select i.id, coalesce((select max(a.attempt) from webhook_attempts a where a.notification_id = i.id), 0) + 1,
            i.started_at, i.outcome, i.http_status, i.latency_ms, i.error
          from input i join alert_notifications n on n.id = i.id)
        update alert_notifications n set
          attempts = n.attempts + 1, lease_until = null, status = i.status,
          delivered_at = case when i.status = 'delivered' then now() end,
          next_attempt_at = case when i.status = 'pending' then now() + make_interval(secs => i.retry_ms / 1000) else n.next_attempt_at end,
          last_error = i.error
        from input i
        where n.id = i.id and n.status = 'pending' and n.lease_until = i.lease
        returning n.id::int as id, n.status`,
    'fleetgate_webhook_record',
  );
  return new Map(rows.map((row) => [row.id, row.status]));
}
