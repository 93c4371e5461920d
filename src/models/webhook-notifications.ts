import type pg from 'pg';
import type { AlertNotification, NotificationStatus, WebhookAttempt } from '../db/schema';
import { selectRows, sql, type SQL } from '../db/sql';
import { and, oneOf, pagePerParentQuery, pageQuery, type Ordering, type PageWindow } from './query-parts';

// The webhook outbox as operators read it: notifications newest first, per alert or channel in one
// statement, and every attempt of each.

export type WebhookNotificationRow = Omit<AlertNotification, 'payload' | 'leaseUntil'>;
export type WebhookAttemptRow = Omit<WebhookAttempt, 'id'>;

export interface WebhookNotificationFilter {
  channelIds?: readonly number[];
  statuses?: readonly NotificationStatus[];
  alertIds?: readonly number[];
}

export const NOTIFICATION_ORDERING: Ordering = { key: null, id: sql`n.id`, idType: 'int8', descending: true };

const NOTIFICATION_COLUMNS = sql`n.id, n.alert_id as "alertId", n.channel_id as "channelId", n.kind, n.idempotency_key as "idempotencyKey",
  n.status, n.attempts, n.next_attempt_at as "nextAttemptAt", n.created_at as "createdAt", n.delivered_at as "deliveredAt", n.last_error as "lastError"`;

function notificationConditions(filter: WebhookNotificationFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.channelIds) where.push(oneOf(sql`n.channel_id`, filter.channelIds, 'int4'));
  if (filter.statuses) where.push(oneOf(sql`n.status`, filter.statuses, 'text'));
  if (filter.alertIds) where.push(oneOf(sql`n.alert_id`, filter.alertIds, 'int8'));
  return where;
}

export function notificationsPage(pool: pg.Pool, filter: WebhookNotificationFilter, window: PageWindow): Promise<WebhookNotificationRow[]> {
  return selectRows(
    pool,
    pageQuery({ columns: NOTIFICATION_COLUMNS, from: sql`alert_notifications n`, where: notificationConditions(filter), ordering: NOTIFICATION_ORDERING, window }),
  );
}

export function countNotificationsQuery(filter: WebhookNotificationFilter): SQL {
  return sql`select count(*)::int as count from alert_notifications n where ${and(notificationConditions(filter))}`;
}

const parentColumn = (parent: 'alert' | 'channel') => (parent === 'alert' ? sql`n.alert_id` : sql`n.channel_id`);

/** A page of notifications for each alert (or channel) of `parentIds`, in one statement. */
export function notificationsPagePerParent(
  pool: pg.Pool,
  parent: 'alert' | 'channel',
  parentIds: readonly number[],
  filter: WebhookNotificationFilter,
  window: PageWindow,
): Promise<WebhookNotificationRow[]> {
  const query = pagePerParentQuery({
    parentIds,
    parentColumn: parentColumn(parent),
    parentIdType: parent === 'alert' ? 'int8' : 'int4',
    columns: NOTIFICATION_COLUMNS,
    from: sql`alert_notifications n`,
    where: notificationConditions(filter),
    ordering: NOTIFICATION_ORDERING,
    window,
  });
  return selectRows(pool, query);
}

export async function countNotificationsPerParent(
  pool: pg.Pool,
  parent: 'alert' | 'channel',
  parentIds: readonly number[],
  filter: WebhookNotificationFilter,
): Promise<Map<number, number>> {
  const column = parentColumn(parent);
  const rows = await selectRows<{ parent: number; count: number }>(
    pool,
    sql`select ${column} as parent, count(*)::int as count from alert_notifications n
        where ${column} = any(${sql.param(parentIds)}::int8[]) and ${and(notificationConditions(filter))} group by ${column}`,
  );
  return new Map(rows.map((r) => [r.parent, r.count]));
}

export function notificationsByIds(pool: pg.Pool, ids: readonly number[]): Promise<WebhookNotificationRow[]> {
  return selectRows(pool, sql`select ${NOTIFICATION_COLUMNS} from alert_notifications n where n.id = any(${sql.param(ids)}::int8[])`);
}

/** Every attempt of each notification, oldest first, in one statement. */
export async function attemptsPerNotification(pool: pg.Pool, notificationIds: readonly number[]): Promise<Map<number, WebhookAttemptRow[]>> {
  const rows = await selectRows<WebhookAttemptRow>(
    pool,
    sql`select t.notification_id as "notificationId", t.attempt, t.started_at as "startedAt", t.outcome, t.http_status as "httpStatus",
          t.latency_ms as "latencyMs", t.error
        from webhook_attempts t where t.notification_id = any(${sql.param(notificationIds)}::int8[]) order by t.notification_id, t.id`,
  );
  const byNotification = new Map<number, WebhookAttemptRow[]>();
  for (const row of rows) {
    const list = byNotification.get(row.notificationId);
    if (list) list.push(row);
    else byNotification.set(row.notificationId, [row]);
  }
  return byNotification;
}
