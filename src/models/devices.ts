import { selectRows, sql, type SQL } from '../db/sql';
import type pg from 'pg';
import { redactedSql } from './redacted-sql';
import type { Device, DeviceStatus, DeviceType } from '../db/schema';
import { boxColumns, boxFromJoinedRow, type BoxColumn, type BoxRow } from './boxes';
import { containsText, oneOf, pagePerParentQuery, pageQuery, textKey, timestampKey, type Ordering, type PageWindow } from './query-parts';

export type DeviceRow = Pick<
  Device,
  | 'id'
  | 'boxId'
  | 'externalId'
  | 'name'
  | 'ip'
  | 'type'
  | 'url'
  | 'permissionId'
  | 'status'
  | 'statusSince'
  | 'reportedStatus'
  | 'reportedType'
  | 'firstSeenAt'
  | 'updatedAt'
  | 'removedAt'
> & {
  /** Reports do not touch unchanged devices, so a listed device was last seen at its box's last report. */
  lastSeenAt: Date | null;
  /** Its box is offline: the status is the last one reported, not a current one. */
  stale: boolean;
  sortValue?: string;
};

/** The columns of a device row, aliased to its property names. */
const DEVICE_COLUMN: Record<Exclude<keyof DeviceRow, 'sortValue'>, SQL> = {
  id: sql`d.id`,
  boxId: sql`d.box_id as "boxId"`,
  externalId: sql`d.external_id as "externalId"`,
  name: sql`d.name`,
  ip: sql`d.ip`,
  type: sql`d.type`,
  url: sql`d.url`,
  permissionId: sql`d.permission_id as "permissionId"`,
  status: sql`d.status`,
  statusSince: sql`d.status_since as "statusSince"`,
  reportedStatus: sql`d.reported_status as "reportedStatus"`,
  reportedType: sql`d.reported_type as "reportedType"`,
  firstSeenAt: sql`d.first_seen_at as "firstSeenAt"`,
  updatedAt: sql`d.updated_at as "updatedAt"`,
  removedAt: sql`d.removed_at as "removedAt"`,
  lastSeenAt: sql`case when d.removed_at is null then b.last_report_at else d.removed_at end as "lastSeenAt"`,
  stale: sql`b.status = 'offline' as stale`,
};

export type DeviceColumn = keyof typeof DEVICE_COLUMN;

/**
 * The select list for `columns` (all when undefined). Rows read with fewer columns lack the others:
 * pass what the caller will read (the GraphQL layer derives it from the fields an operation asks for).
 */
function deviceColumns(columns?: ReadonlySet<DeviceColumn>): SQL {
  const keys = columns
    ? (['id', 'boxId', ...[...columns].filter((c) => c !== 'id' && c !== 'boxId')] as DeviceColumn[])
    : (Object.keys(DEVICE_COLUMN) as DeviceColumn[]);
  return sql.join(
    keys.map((key) => DEVICE_COLUMN[key]),
    sql`, `,
  );
}

const DEVICES_WITH_BOX = sql`devices d join boxes b on b.id = d.box_id`;

/** Devices of removed boxes are hidden with their box (a join: Postgres reads one box row per device). */
const ON_LISTED_BOX = sql`b.removed_at is null`;

export interface DeviceFilter {
  boxIds?: readonly number[];
  licenseKeys?: readonly string[];
  status?: readonly DeviceStatus[];
  type?: readonly DeviceType[];
  permissionId?: string;
  /** Substring of the name, ip or url, any letter case (with `masked`: of the masked name or ip only). */
  search?: string;
  /**
   * The reader may not read URLs (see readsCredentials): text conditions test what it is shown, the
   * credentials masked, and never the url, so no result or count can confirm a guessed password.
   */
  masked?: boolean;
  /** false: in their box's current list; true: gone from it; undefined: both. */
  removed?: boolean;
}

export const DEVICE_ORDER_FIELDS = ['ID', 'NAME', 'STATUS_SINCE', 'FIRST_SEEN_AT'] as const;
export type DeviceOrderField = (typeof DEVICE_ORDER_FIELDS)[number];

/** A text column as the reader is shown it: masked (see DeviceFilter.masked) or as stored. */
const shownText = (column: SQL, masked: boolean | undefined): SQL => (masked ? redactedSql(column) : column);

/** With `masked`, names sort (and cursors hold them) as a reader who may not read URLs is shown them. */
export function deviceOrdering(field: DeviceOrderField, descending: boolean, masked = false): Ordering {
  const key = {
    ID: null,
    NAME: textKey(sql`coalesce(${shownText(sql`d.name`, masked)}, '')`),
    STATUS_SINCE: timestampKey(sql`d.status_since`),
    FIRST_SEEN_AT: timestampKey(sql`d.first_seen_at`),
  }[field];
  return { key, id: sql`d.id`, idType: 'int4', descending };
}

function deviceConditions(filter: DeviceFilter): SQL[] {
  const conditions = [ON_LISTED_BOX];
  if (filter.removed !== undefined) conditions.push(filter.removed ? sql`d.removed_at is not null` : sql`d.removed_at is null`);
  if (filter.boxIds) conditions.push(oneOf(sql`d.box_id`, filter.boxIds, 'int4'));
  if (filter.licenseKeys) {
    conditions.push(oneOf(sql`b.license_key`, filter.licenseKeys, 'text'));
  }
  if (filter.status) conditions.push(oneOf(sql`d.status`, filter.status, 'text'));
  if (filter.type) conditions.push(oneOf(sql`d.type`, filter.type, 'text'));
  if (filter.permissionId !== undefined) conditions.push(sql`${shownText(sql`d.permission_id`, filter.masked)} = ${filter.permissionId}`);
  if (filter.search) {
    const searched = filter.masked ? [redactedSql(sql`d.name`), redactedSql(sql`d.ip`)] : [sql`d.name`, sql`d.ip`, sql`d.url`];
    conditions.push(containsText(searched, filter.search));
  }
  return conditions;
}

/** Which columns to read of the devices and, when asked, of their boxes (all when undefined). */
export interface DeviceSelection {
  device?: ReadonlySet<DeviceColumn>;
  /** false: no box columns; a set or undefined: the box of each device, read in the same statement. */
  box?: ReadonlySet<BoxColumn> | false;
}

/** A page of devices, each with its box when asked (read in the same statement, so `Device.box` costs nothing). */
export async function devicesPage(
  pool: pg.Pool,
  filter: DeviceFilter,
  ordering: Ordering,
  window: PageWindow,
  selection: DeviceSelection = {},
): Promise<{ device: DeviceRow; box?: BoxRow }[]> {
  const withBox = selection.box !== false;
  const rows = await selectRows<DeviceRow & Record<string, unknown>>(
    pool,
    pageQuery({
      columns: withBox
        ? sql`${deviceColumns(selection.device)}, ${boxColumns('box.', selection.box || undefined)}`
        : deviceColumns(selection.device),
      from: DEVICES_WITH_BOX,
      where: deviceConditions(filter),
      ordering,
      window,
    }),
  );
  return rows.map((row) => ({ device: row, box: withBox ? boxFromJoinedRow(row, 'box.', selection.box || undefined) : undefined }));
}

/** A page of devices for each box, in one statement. */
export async function devicesPagePerBox(
  pool: pg.Pool,
  boxIds: readonly number[],
  filter: DeviceFilter,
  ordering: Ordering,
  window: PageWindow,
  columns?: ReadonlySet<DeviceColumn>,
): Promise<DeviceRow[]> {
  return selectRows<DeviceRow>(
    pool,
    pagePerParentQuery({
      parentIds: boxIds,
      parentColumn: sql`d.box_id`,
      columns: deviceColumns(columns),
      from: DEVICES_WITH_BOX,
      where: deviceConditions(filter),
      ordering,
      window,
    }),
  );
}

export function countDevicesQuery(filter: DeviceFilter): SQL {
  return sql`select count(*)::int as count from ${DEVICES_WITH_BOX} where ${sql.join(deviceConditions(filter), sql` and `)}`;
}

/** How many devices match `filter` in each of `boxIds`, in one statement. */
export async function countDevicesPerBox(pool: pg.Pool, boxIds: readonly number[], filter: DeviceFilter): Promise<Map<number, number>> {
  const rows = await selectRows<{ boxId: number; count: number }>(
    pool,
    sql`select d.box_id as "boxId", count(*)::int as count from ${DEVICES_WITH_BOX}
        where d.box_id = any(${sql.param(boxIds)}::int4[]) and ${sql.join(deviceConditions(filter), sql` and `)}
        group by d.box_id`,
  );
  return new Map(rows.map((r) => [r.boxId, r.count]));
}

/** Devices by id, removed ones included; those of removed boxes are not found. */
export function devicesByIds(pool: pg.Pool, ids: readonly number[]): Promise<DeviceRow[]> {
  return selectRows<DeviceRow>(
    pool,
    sql`select ${deviceColumns()} from ${DEVICES_WITH_BOX} where d.id = any(${sql.param(ids)}::int4[]) and b.removed_at is null`,
  );
}
