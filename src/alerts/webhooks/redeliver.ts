import type pg from 'pg';
import type { AlertNotification } from '../../db/schema';
import { fieldsOf, run, sql } from '../../db/sql';
import { alertNotifications } from '../../db/schema';
import { AlertRequestError } from '../errors';

/** Deliverers LISTEN here too, so a redelivery is sent at once by whichever replica is free. */
export const WEBHOOKS_DUE_CHANNEL = 'fleetgate_webhooks_due';

/**
 * Sends a notification again (operator's `redeliverWebhookNotification`): a delivered or dead one
 * goes back to pending, due now, with its attempts counted afresh (attempt numbers in
 * webhook_attempts keep rising, so the log shows every attempt); a pending one is made due now (a
 * send under way keeps its lease). Same payload and Idempotency-Key as before. NOT_FOUND if unknown.
 */
export async function redeliverNotification(pool: pg.Pool, id: number, now: Date = new Date()): Promise<AlertNotification> {
  const { rows } = await run<AlertNotification>(
    pool,
    sql`with changed as (
          update alert_notifications set
            attempts = case when status = 'pending' then attempts else 0 end,
            status = 'pending',
            next_attempt_at = ${now},
            delivered_at = null
          where id = ${id}
          returning *),
        notified as (select pg_notify(${WEBHOOKS_DUE_CHANNEL}, id::text) from changed)
        select ${fieldsOf(alertNotifications)} from changed, notified`,
  );
  if (!rows[0]) throw new AlertRequestError(`No webhook notification ${id}.`, 'id', 'NOT_FOUND');
  return rows[0];
}
