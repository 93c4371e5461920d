import type pg from 'pg';
import { ALERT_SEVERITIES, type Alert, type AlertSeverity, type AlertState } from '../db/schema';
import { selectRows, sql, type SQL } from '../db/sql';
import { and, oneOf, pagePerParentQuery, pageQuery, type Ordering, type PageWindow } from './query-parts';

// Alerts as the API reads them: lists newest first (by id), per box or device in one statement, and
// the counts of fleetSummary. (`alertChanged` reads the change log through alerts/change-hub.ts.)

export type AlertRow = Omit<Alert, 'updatedAt'>;

export const ALERT_COLUMNS = sql`a.id, a.rule_id as "ruleId", a.subject, a.box_id as "boxId", a.device_id as "deviceId", a.state, a.severity,
  a.value, a.condition_since as "conditionSince", a.fires_at as "firesAt", a.fired_at as "firedAt", a.acknowledged_at as "acknowledgedAt",
  a.acknowledged_by as "acknowledgedBy", a.acknowledge_comment as "acknowledgeComment", a.resolved_at as "resolvedAt", a.resolution,
  a.next_repeat_at as "nextRepeatAt"`;

/** Conditions an alert must all meet; a list matches any of its values. */
export interface AlertFilter {
  states?: readonly AlertState[];
  severities?: readonly AlertSeverity[];
  ruleIds?: readonly number[];
  boxIds?: readonly number[];
  deviceIds?: readonly number[];
  /** `fired_at >= firedSince` */
  firedSince?: Date;
  /** `fired_at < firedUntil` */
  firedUntil?: Date;
}

/** Newest first: alert ids grow as alerts fire. */
export const ALERT_ORDERING: Ordering = { key: null, id: sql`a.id`, idType: 'int8', descending: true };

function alertConditions(filter: AlertFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.states) where.push(oneOf(sql`a.state`, filter.states, 'text'));
  if (filter.severities) where.push(oneOf(sql`a.severity`, filter.severities, 'text'));
  if (filter.ruleIds) where.push(oneOf(sql`a.rule_id`, filter.ruleIds, 'int4'));
  if (filter.boxIds) where.push(oneOf(sql`a.box_id`, filter.boxIds, 'int4'));
  if (filter.deviceIds) where.push(oneOf(sql`a.device_id`, filter.deviceIds, 'int4'));
  if (filter.firedSince) where.push(sql`a.fired_at >= ${filter.firedSince}`);
  if (filter.firedUntil) where.push(sql`a.fired_at < ${filter.firedUntil}`);
  return where;
}

export function alertsPage(pool: pg.Pool, filter: AlertFilter, window: PageWindow): Promise<AlertRow[]> {
  return selectRows<AlertRow>(pool, pageQuery({ columns: ALERT_COLUMNS, from: sql`alerts a`, where: alertConditions(filter), ordering: ALERT_ORDERING, window }));
}

export function countAlertsQuery(filter: AlertFilter): SQL {
  return sql`select count(*)::int as count from alerts a where ${and(alertConditions(filter))}`;
}

const parentColumn = (parent: 'box' | 'device') => (parent === 'box' ? sql`a.box_id` : sql`a.device_id`);

/** A page of alerts for each box (or device) of `parentIds`, in one statement. */
export function alertsPagePerParent(pool: pg.Pool, parent: 'box' | 'device', parentIds: readonly number[], filter: AlertFilter, window: PageWindow): Promise<AlertRow[]> {
  return selectRows<AlertRow>(
    pool,
    pagePerParentQuery({
      parentIds,
      parentColumn: parentColumn(parent),
      columns: ALERT_COLUMNS,
      from: sql`alerts a`,
      where: alertConditions(filter),
      ordering: ALERT_ORDERING,
      window,
    }),
  );
}

export async function countAlertsPerParent(pool: pg.Pool, parent: 'box' | 'device', parentIds: readonly number[], filter: AlertFilter): Promise<Map<number, number>> {
  const column = parentColumn(parent);
  const rows = await selectRows<{ parent: number; count: number }>(
    pool,
    sql`select ${column} as parent, count(*)::int as count from alerts a
        where ${column} = any(${sql.param(parentIds)}::int4[]) and ${and(alertConditions(filter))} group by ${column}`,
  );
  return new Map(rows.map((r) => [r.parent, r.count]));
}

export function alertsByIds(pool: pg.Pool, ids: readonly number[]): Promise<AlertRow[]> {
  return selectRows<AlertRow>(pool, sql`select ${ALERT_COLUMNS} from alerts a where a.id = any(${sql.param(ids)}::int8[])`);
}

/** Open alerts of each rule (for AlertRule.openAlerts). */
export async function openAlertsPerRule(pool: pg.Pool, ruleIds: readonly number[]): Promise<Map<number, number>> {
  const rows = await selectRows<{ ruleId: number; count: number }>(
    pool,
    sql`select a.rule_id as "ruleId", count(*)::int as count from alerts a
        where a.rule_id = any(${sql.param(ruleIds)}::int4[]) and a.state <> 'resolved' group by a.rule_id`,
  );
  return new Map(rows.map((r) => [r.ruleId, r.count]));
}

// ---------------------------------------------------------------------------------------------
// Counts

export interface AlertCounts {
  /** Open alerts (firing + acknowledged) of rules not deleted. */
  open: number;
  firing: number;
  acknowledged: number;
  /** Every severity, zeros included, most severe first. */
  bySeverity: { severity: AlertSeverity; firing: number; acknowledged: number }[];
}

export async function alertCounts(pool: pg.Pool): Promise<AlertCounts> {
  const rows = await selectRows<{ severity: AlertSeverity; state: AlertState; count: number }>(
    pool,
    sql`select a.severity, a.state, count(*)::int as count from alerts a join alert_rules r on r.id = a.rule_id
        where a.state <> 'resolved' and r.deleted_at is null group by a.severity, a.state`,
  );
  const bySeverity = ALERT_SEVERITIES.map((severity) => ({ severity, firing: 0, acknowledged: 0 }));
  for (const row of rows) {
    const entry = bySeverity.find((s) => s.severity === row.severity);
    if (entry && (row.state === 'firing' || row.state === 'acknowledged')) entry[row.state] += row.count;
  }
  const firing = bySeverity.reduce((sum, s) => sum + s.firing, 0);
  const acknowledged = bySeverity.reduce((sum, s) => sum + s.acknowledged, 0);
  return { open: firing + acknowledged, firing, acknowledged, bySeverity };
}
