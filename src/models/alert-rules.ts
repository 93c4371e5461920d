import type pg from 'pg';
import { alertRules, type AlertRule, type WebhookChannel } from '../db/schema';
import { fieldsOf, selectRows, sql } from '../db/sql';
import { pageQuery, type Ordering, type PageWindow } from './query-parts';

// Alert rules and webhook channels as the API reads them. Writes are src/alerts/ (validation,
// re-evaluation); the channel's secret is never selected here.

export type AlertRuleRow = AlertRule;
export type WebhookChannelRow = Omit<WebhookChannel, 'secret'>;

/** Newest first. */
export const ALERT_RULE_ORDERING: Ordering = { key: null, id: sql`r.id`, idType: 'int4', descending: true };

const RULE_COLUMNS = fieldsOf(alertRules);

/** Rules not deleted, a page at a time. */
export function alertRulesPage(pool: pg.Pool, window: PageWindow): Promise<AlertRuleRow[]> {
  return selectRows<AlertRuleRow>(pool, pageQuery({ columns: RULE_COLUMNS, from: sql`alert_rules r`, where: [sql`r.deleted_at is null`], ordering: ALERT_RULE_ORDERING, window }));
}

export const countAlertRulesQuery = sql`select count(*)::int as count from alert_rules r where r.deleted_at is null`;

/** Rules by id, deleted ones too: an alert's rule outlives its deletion as history. */
export function alertRulesByIds(pool: pg.Pool, ids: readonly number[]): Promise<AlertRuleRow[]> {
  return selectRows<AlertRuleRow>(pool, sql`select ${RULE_COLUMNS} from alert_rules where id = any(${sql.param(ids)}::int4[])`);
}

/** Every column of webhook_channels but the secret. */
const CHANNEL_COLUMNS = sql`w.id, w.name, w.url, w.enabled, w.notify_acknowledged as "notifyAcknowledged", w.created_at as "createdAt",
  w.created_by as "createdBy", w.updated_at as "updatedAt"`;

export function webhookChannelsList(pool: pg.Pool, limit: number): Promise<WebhookChannelRow[]> {
  return selectRows<WebhookChannelRow>(pool, sql`select ${CHANNEL_COLUMNS} from webhook_channels w order by w.id limit ${limit}`);
}

export function webhookChannelsByIds(pool: pg.Pool, ids: readonly number[]): Promise<WebhookChannelRow[]> {
  return selectRows<WebhookChannelRow>(pool, sql`select ${CHANNEL_COLUMNS} from webhook_channels w where w.id = any(${sql.param(ids)}::int4[])`);
}

/** The channels each rule routes to, for all `ruleIds` in one statement. */
export async function channelsPerRule(pool: pg.Pool, ruleIds: readonly number[]): Promise<Map<number, WebhookChannelRow[]>> {
  const rows = await selectRows<WebhookChannelRow & { ruleId: number }>(
    pool,
    sql`select rc.rule_id as "ruleId", ${CHANNEL_COLUMNS} from alert_rule_channels rc join webhook_channels w on w.id = rc.channel_id
        where rc.rule_id = any(${sql.param(ruleIds)}::int4[]) order by rc.rule_id, w.id`,
  );
  const byRule = new Map<number, WebhookChannelRow[]>();
  for (const { ruleId, ...channel } of rows) {
    const list = byRule.get(ruleId);
    if (list) list.push(channel);
    else byRule.set(ruleId, [channel]);
  }
  return byRule;
}
