import type pg from 'pg';
import type { AlertChangeKind } from '../db/schema';
import { run, sql, type SQL } from '../db/sql';

/** The channel every replica LISTENs on for alert changes; the payload is the highest change id just committed. */
export const ALERT_CHANGES_CHANNEL = 'fleetgate_alert_changes';

/**
 * Advisory lock taken by every transaction that records alert changes, just before inserting them.
 * Held until commit, it makes change ids commit in order, so an `alertChanged` subscriber resuming
 * from id N (`id > N`) can never skip a change that commits late (as EVENTS_LOCK for status events).
 */
const ALERT_CHANGES_LOCK = 0x666c_6763; // "flgc"

export interface AlertChangeInput {
  alertId: number;
  kind: AlertChangeKind;
}

export interface RecordedAlertChange extends AlertChangeInput {
  id: number;
  at: Date;
}

/** A timestamp as the API writes it: ISO 8601 in UTC with milliseconds, or null. */
const iso = (value: SQL) => sql`to_char(${value} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
/** A relay global id (`base64("Alert:12")`), as the GraphQL API gives it. */
const globalId = (typename: string, id: SQL) => sql`encode(convert_to(${typename + ':'} || ${id}, 'UTF8'), 'base64')`;

/**
 * The JSON body of a webhook, built in the statement that queues it (so a retry sends the state as
 * of the change, not as of the retry). `a`, `r`, `b`, `d`, `k` are the alert, its rule, box, device
 * and the notification's idempotency key; `kind` the notification kind. Documented in docs/alerts.md.
 */
const PAYLOAD = sql`jsonb_build_object(
  'idempotencyKey', k.key,
  'event', upper(q.kind),
  'alert', jsonb_build_object(
    'id', ${globalId('Alert', sql`a.id`)}, 'databaseId', a.id,
    'state', upper(a.state), 'severity', upper(a.severity), 'value', a.value,
    'conditionSince', ${iso(sql`a.condition_since`)}, 'firesAt', ${iso(sql`a.fires_at`)}, 'firedAt', ${iso(sql`a.fired_at`)},
    'acknowledgedAt', ${iso(sql`a.acknowledged_at`)}, 'acknowledgedBy', a.acknowledged_by, 'acknowledgeComment', a.acknowledge_comment,
    'resolvedAt', ${iso(sql`a.resolved_at`)}, 'resolution', upper(a.resolution)),
  'rule', jsonb_build_object(
    'id', ${globalId('AlertRule', sql`r.id`)}, 'databaseId', r.id, 'name', r.name, 'kind', upper(r.kind), 'severity', upper(r.severity),
    'forSeconds', r.for_seconds, 'flapChanges', r.flap_changes, 'flapWindowSeconds', r.flap_window_seconds,
    'healthFigure', upper(r.health_figure), 'healthThreshold', r.health_threshold),
  'subject', jsonb_build_object(
    'kind', case when a.device_id is null then 'BOX' else 'DEVICE' end,
    'box', jsonb_build_object('id', ${globalId('Box', sql`a.box_id`)}, 'databaseId', a.box_id, 'licenseKey', b.license_key, 'name', b.name),
    'device', case when a.device_id is not null then jsonb_build_object(
      'id', ${globalId('Device', sql`a.device_id`)}, 'databaseId', a.device_id, 'externalId', d.external_id, 'name', d.name, 'type', upper(d.type)) end))`;

/**
 * Queues a notification of each (alert, kind) in `queued` (a statement or CTE yielding `alert_id`,
 * `kind`, `n` for order) for every enabled channel its rule routes to (acknowledgements only to
 * channels that asked for them). Written in the caller's transaction: the outbox.
 */
function queueNotifications(queued: SQL): SQL {
  return sql`insert into alert_notifications (alert_id, channel_id, kind, idempotency_key, payload)
    select a.id, w.id, q.kind, k.key, ${PAYLOAD}
    from ${queued} as q
      join alerts a on a.id = q.alert_id
      join alert_rules r on r.id = a.rule_id
      join alert_rule_channels rc on rc.rule_id = r.id
      join webhook_channels w on w.id = rc.channel_id and w.enabled and (q.kind <> 'acknowledged' or w.notify_acknowledged)
      left join boxes b on b.id = a.box_id
      left join devices d on d.id = a.device_id
      cross join lateral (select gen_random_uuid() as key, w.id as channel_id) k -- lateral on w: one key per row, not one per statement
    order by q.n, w.id
    returning id`;
}

/**
 * Records alert state changes (already made to `alerts` by earlier statements of the caller's
 * transaction) in `alert_changes`, queues their webhooks in `alert_notifications` and tells every
 * replica (NOTIFY), all in one statement. Make it the transaction's last statement: the lock it
 * takes is held until commit. Returns the changes with their ids, in the order given.
 */
export async function recordAlertChanges(client: pg.ClientBase, changes: readonly AlertChangeInput[], at: Date): Promise<RecordedAlertChange[]> {
  if (changes.length === 0) return [];
  const input = JSON.stringify(changes.map((c, n) => ({ alert_id: c.alertId, kind: c.kind, n })));
  const { rows } = await run<{ id: string; alert_id: string; kind: AlertChangeKind }>(
    client,
    sql`with changed as (
          insert into alert_changes (alert_id, kind, at)
          select c.alert_id, c.kind, ${at}
          from (select pg_advisory_xact_lock(${ALERT_CHANGES_LOCK})) as serialized,
               jsonb_to_recordset(${input}::jsonb) as c(alert_id bigint, kind text, n int)
          order by c.n -- ids in the order given
          returning id, alert_id, kind),
        notified as (select pg_notify(${ALERT_CHANGES_CHANNEL}, max(id)::text) from changed),
        queued as (${queueNotifications(sql`(select alert_id, kind, id as n from changed)`)})
        select changed.id, changed.alert_id, changed.kind from changed, notified
        order by changed.id -- (queued runs though nothing reads it: Postgres runs every data-modifying WITH)`,
  );
  return rows.map((r) => ({ id: Number(r.id), alertId: Number(r.alert_id), kind: r.kind, at }));
}

/**
 * Queues a `repeat` notification for every alert still firing (not acknowledged) whose rule's repeat
 * interval has passed since it was last notified, and moves its next repeat on. In the caller's
 * transaction. Returns how many alerts were due.
 */
export async function queueRepeats(client: pg.ClientBase, now: Date): Promise<number> {
  const { rows } = await run<{ alerts: string }>(
    client,
    sql`with due as (
          update alerts a set next_repeat_at = ${now}::timestamptz + make_interval(secs => r.repeat_interval_seconds)
          from alert_rules r
          where r.id = a.rule_id and a.state = 'firing' and a.next_repeat_at is not null and a.next_repeat_at <= ${now}
            and r.repeat_interval_seconds is not null
          returning a.id),
        queued as (${queueNotifications(sql`(select id as alert_id, 'repeat'::text as kind, id as n from due)`)})
        select count(*)::text as alerts from due`,
  );
  return Number(rows[0]?.alerts ?? 0);
}
