import { selectRows, sql, type SQL } from '../db/sql';
import type pg from 'pg';
import { redactedSql } from './redacted-sql';
import type { Box, BoxStatus, ReportFormat } from '../db/schema';
import { containsText, oneOf, pageQuery, textKey, timestampKey, type Ordering, type PageWindow } from './query-parts';

/** The columns the read API shows of a box (not the raw last report nor the hashes). */
export type BoxRow = Pick<
  Box,
  | 'id'
  | 'licenseKey'
  | 'name'
  | 'address'
  | 'reportFormat'
  | 'status'
  | 'statusSince'
  | 'firstReportAt'
  | 'lastReportAt'
  | 'reportCount'
  | 'observedPeriodSeconds'
  | 'reportPeriodSeconds'
  | 'apiAddress'
  | 'apiPort'
  | 'monitorUrl'
  | 'gateway'
  | 'gatewayExtData'
  | 'createdAt'
  | 'hardwareSerial'
  | 'hardwareBoundAt'
  | 'lastLoginAt'
> & { sortValue?: string };

/** The columns of a box row, aliased to its property names. */
const BOX_COLUMN: Record<Exclude<keyof BoxRow, 'sortValue'>, string> = {
  id: 'b.id',
  licenseKey: 'b.license_key',
  name: 'b.name',
  address: 'b.address',
  reportFormat: 'b.report_format',
  status: 'b.status',
  statusSince: 'b.status_since',
  firstReportAt: 'b.first_report_at',
  lastReportAt: 'b.last_report_at',
  reportCount: 'b.report_count',
  observedPeriodSeconds: 'b.observed_period_seconds',
  reportPeriodSeconds: 'b.report_period_seconds',
  apiAddress: 'b.api_address',
  apiPort: 'b.api_port',
  monitorUrl: 'b.monitor_url',
  gateway: 'b.gateway',
  gatewayExtData: 'b.gateway_ext_data',
  createdAt: 'b.created_at',
  hardwareSerial: 'b.hardware_serial',
  hardwareBoundAt: 'b.hardware_bound_at',
  lastLoginAt: 'b.last_login_at',
};

export type BoxColumn = keyof typeof BOX_COLUMN;

const ALL_BOX_COLUMNS = Object.keys(BOX_COLUMN) as BoxColumn[];

function boxColumnList(columns?: ReadonlySet<BoxColumn>): BoxColumn[] {
  return columns ? (['id', ...[...columns].filter((c) => c !== 'id')] as BoxColumn[]) : ALL_BOX_COLUMNS;
}

/** The select list for `columns` (all when undefined), aliased `"<prefix><property>"` (a prefix keeps a join's names apart). */
export function boxColumns(prefix = '', columns?: ReadonlySet<BoxColumn>): SQL {
  return sql.raw(
    boxColumnList(columns)
      .map((key) => `${BOX_COLUMN[key]} as "${prefix}${key}"`)
      .join(', '),
  );
}

/** The box inside a joined row selected with `boxColumns(prefix, columns)`. */
export function boxFromJoinedRow(row: Record<string, unknown>, prefix: string, columns?: ReadonlySet<BoxColumn>): BoxRow {
  const box: Record<string, unknown> = {};
  for (const key of boxColumnList(columns)) box[key] = row[prefix + key];
  return box as BoxRow;
}

export interface BoxFilter {
  status?: readonly BoxStatus[];
  reportFormat?: readonly ReportFormat[];
  /** Substring of the licence key, name or address, any letter case. */
  search?: string;
  /** The reader may not read URLs: the name (an older box's `gateway_name`) is searched as it is shown, masked. */
  masked?: boolean;
}

export const BOX_ORDER_FIELDS = ['ID', 'LICENSE_KEY', 'NAME', 'LAST_REPORT_AT', 'STATUS_SINCE'] as const;
export type BoxOrderField = (typeof BOX_ORDER_FIELDS)[number];

/** With `masked`, names sort (and cursors hold them) as a reader who may not read URLs is shown them. */
export function boxOrdering(field: BoxOrderField, descending: boolean, masked = false): Ordering {
  const key = {
    ID: null,
    LICENSE_KEY: textKey(sql`b.license_key`),
    NAME: textKey(sql`coalesce(${masked ? redactedSql(sql`b.name`) : sql`b.name`}, '')`),
    LAST_REPORT_AT: timestampKey(sql`coalesce(b.last_report_at, b.created_at)`),
    STATUS_SINCE: timestampKey(sql`b.status_since`),
  }[field];
  return { key, id: sql`b.id`, idType: 'int4', descending };
}

/** Removed boxes (`removed_at` set) are hidden from every read. */
function boxConditions(filter: BoxFilter): SQL[] {
  const conditions = [sql`b.removed_at is null`];
  if (filter.status) conditions.push(oneOf(sql`b.status`, filter.status, 'text'));
  if (filter.reportFormat) conditions.push(oneOf(sql`b.report_format`, filter.reportFormat, 'text'));
  if (filter.search) {
    const name = filter.masked ? redactedSql(sql`b.name`) : sql`b.name`;
    conditions.push(containsText([sql`b.license_key`, name, sql`b.address`], filter.search));
  }
  return conditions;
}

export function boxesPage(pool: pg.Pool, filter: BoxFilter, ordering: Ordering, window: PageWindow): Promise<BoxRow[]> {
  return selectRows<BoxRow>(pool, pageQuery({ columns: boxColumns(), from: sql`boxes b`, where: boxConditions(filter), ordering, window }));
}

/** The ids of the boxes `filter` matches, in id order: what a rollout over a filter targets. */
export function boxIdsMatchingQuery(filter: BoxFilter): SQL {
  return sql`select b.id from boxes b where ${sql.join(boxConditions(filter), sql` and `)} order by b.id`;
}

export function countBoxesQuery(filter: BoxFilter): SQL {
  return sql`select count(*)::int as count from boxes b where ${sql.join(boxConditions(filter), sql` and `)}`;
}

export function boxesByIds(pool: pg.Pool, ids: readonly number[]): Promise<BoxRow[]> {
  return selectRows<BoxRow>(
    pool,
    sql`select ${boxColumns()} from boxes b where b.id = any(${sql.param(ids)}::int4[]) and b.removed_at is null`,
  );
}

export async function boxByLicenseKey(pool: pg.Pool, licenseKey: string): Promise<BoxRow | undefined> {
  const rows = await selectRows<BoxRow>(
    pool,
    sql`select ${boxColumns()} from boxes b where b.license_key = ${licenseKey} and b.removed_at is null`,
  );
  return rows[0];
}

/** A box's last report as it arrived (box_last_reports): the body text and when it was received. */
export interface LastReportRow {
  receivedAt: Date;
  body: string;
}

export async function lastReportsByBoxIds(pool: pg.Pool, boxIds: readonly number[]): Promise<Map<number, LastReportRow>> {
  // The stored body is rewritten whenever a report's differs, so it was received at last_report_at.
  const rows = await selectRows<LastReportRow & { boxId: number }>(
    pool,
    sql`select r.box_id as "boxId", b.last_report_at as "receivedAt", r.body
        from box_last_reports r join boxes b on b.id = r.box_id where r.box_id = any(${sql.param(boxIds)}::int4[])`,
  );
  return new Map(rows.map(({ boxId, ...row }) => [boxId, row]));
}
