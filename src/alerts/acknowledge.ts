import type pg from 'pg';
import { alerts, type Alert } from '../db/schema';
import { fieldsOf, inTransaction, run, sql } from '../db/sql';
import { recordAlertChanges } from './changes';
import { AlertRequestError } from './errors';

const ALERT_COLUMNS = fieldsOf(alerts);
export const ACKNOWLEDGE_COMMENT_MAX = 1000;

/**
 * An operator takes a firing alert in hand: firing -> acknowledged (who, when, comment), recorded as an
 * `acknowledged` change (and a webhook to channels that asked for acknowledgements). Acknowledging an
 * acknowledged alert returns it unchanged (no new change); a resolved one is ALERT_NOT_OPEN. An
 * acknowledged alert gets no repeats and still resolves when its condition clears.
 */
export async function acknowledgeAlert(pool: pg.Pool, alertId: number, actor: string | null, comment: string | null, now = new Date()): Promise<Alert> {
  if (comment !== null && comment.length > ACKNOWLEDGE_COMMENT_MAX) {
    throw new AlertRequestError(`comment must be at most ${ACKNOWLEDGE_COMMENT_MAX} characters.`, 'comment', 'BAD_USER_INPUT', { max: ACKNOWLEDGE_COMMENT_MAX });
  }
  const notFound = () => new AlertRequestError(`No alert with id ${alertId}.`, 'id', 'NOT_FOUND');
  if (!Number.isSafeInteger(alertId) || alertId < 1) throw notFound();
  return inTransaction(pool, async (client) => {
    // The row lock orders this against a round resolving the alert at the same moment.
    const { rows } = await run<Alert>(client, sql`select ${ALERT_COLUMNS} from alerts where id = ${alertId} for update`);
    const alert = rows[0];
    if (!alert) throw notFound();
    if (alert.state === 'acknowledged') return alert;
    if (alert.state === 'resolved') {
      throw new AlertRequestError(`Alert ${alertId} was resolved at ${alert.resolvedAt?.toISOString()}; only an open alert can be acknowledged.`, 'id', 'ALERT_NOT_OPEN', {
        resolvedAt: alert.resolvedAt?.toISOString(),
        resolution: alert.resolution,
      });
    }
    const { rows: updated } = await run<Alert>(
      client,
      sql`update alerts set state = 'acknowledged', acknowledged_at = ${now}, acknowledged_by = ${actor}, acknowledge_comment = ${comment},
            next_repeat_at = null, updated_at = ${now}
          where id = ${alertId} returning ${ALERT_COLUMNS}`,
    );
    await recordAlertChanges(client, [{ alertId, kind: 'acknowledged' }], now);
    return updated[0]!;
  });
}
