import { selectRows, sql, type SQL } from '../db/sql';
import type pg from 'pg';
import type { BoxRow } from './boxes';
import type { DeviceRow } from './devices';
import type { StatusEvent } from '../db/schema';
import { keysetConditionAt, oneOf, pagePerParentQuery, pageQuery, type Ordering, type PageWindow } from './query-parts';

export type StatusEventRow = Pick<StatusEvent, 'id' | 'boxId' | 'deviceId' | 'fromStatus' | 'toStatus' | 'at'> & {
  /** `at` as Postgres prints it (to the microsecond), for cursors; set on rows read from the table. */
  atText?: string;
  /** Set on live events: their box and device as read once for all subscribers. */
  box?: BoxRow;
  device?: DeviceRow & { box?: BoxRow };
};

const EVENT_COLUMNS = sql`e.id, e.box_id as "boxId", e.device_id as "deviceId", e.from_status as "fromStatus", e.to_status as "toStatus", e.at,
  to_json(e.at) #>> '{}' as "atText"`;

/** History of removed boxes is hidden with them (a join: one box row per event read). */
const EVENTS_OF_LISTED_BOXES = sql`status_events e join boxes b on b.id = e.box_id`;
const OF_LISTED_BOX = sql`b.removed_at is null`;

export interface StatusEventFilter {
  boxIds?: readonly number[];
  deviceIds?: readonly number[];
  /** Box events have no device. */
  subject?: 'box' | 'device';
  toStatus?: readonly string[];
  /** `at >= since` */
  since?: Date;
  /** `at < until` */
  until?: Date;
}

export const STATUS_EVENT_ORDER_FIELDS = ['AT', 'ID'] as const;
export type StatusEventOrderField = (typeof STATUS_EVENT_ORDER_FIELDS)[number];

export function statusEventOrdering(field: StatusEventOrderField, descending: boolean): Ordering {
  // The AT key's cursor is the event id too: its position is looked up (`statusEventPosition`), so a
  // cursor stays the event's id whatever the ordering, as subscriptions resume from it.
  const key = field === 'AT' ? { expr: sql`e.at`, cursorText: sql`null`, type: 'timestamptz' as const } : null;
  return { key, id: sql`e.id`, idType: 'int8', descending };
}

/**
 * Keyset condition for rows after/before the event `id` in `ordering`. With the event's time (`at`,
 * from its cursor) the position is known without a read, and the bound on `at` alone lets Postgres
 * leave out the months before (or after) it; without, the position is looked up by id.
 */
export function statusEventKeyset(ordering: Ordering, id: number, side: 'after' | 'before', at?: string): SQL {
  if (ordering.key && at !== undefined) {
    const forward = (side === 'after') !== ordering.descending;
    const op = sql.raw(forward ? '>' : '<');
    const bound = sql.raw(forward ? '>=' : '<=');
    return sql`e.at ${bound} ${at}::timestamptz and (e.at, e.id) ${op} (${at}::timestamptz, ${id}::int8)`;
  }
  const position = ordering.key
    ? sql`select s.at, s.id from status_events s where s.id = ${id}::int8`
    : sql`select ${id}::int8`;
  return keysetConditionAt(ordering, position, side);
}

function eventConditions(filter: StatusEventFilter): SQL[] {
  const conditions = [OF_LISTED_BOX];
  if (filter.boxIds) conditions.push(oneOf(sql`e.box_id`, filter.boxIds, 'int4'));
  if (filter.deviceIds) conditions.push(oneOf(sql`e.device_id`, filter.deviceIds, 'int4'));
  if (filter.subject) conditions.push(filter.subject === 'box' ? sql`e.device_id is null` : sql`e.device_id is not null`);
  if (filter.toStatus) conditions.push(oneOf(sql`e.to_status`, filter.toStatus, 'text'));
  if (filter.since) conditions.push(sql`e.at >= ${filter.since}::timestamptz`);
  if (filter.until) conditions.push(sql`e.at < ${filter.until}::timestamptz`);
  return conditions;
}

/**
 * Events with `afterId < id <= untilId` in id order, at most `limit`: a subscription's catch-up from
 * its cursor before it goes live. Returned as the table's rows (snake_case), as the event hub reads them.
 */
export function statusEventsBetween(pool: pg.Pool, filter: StatusEventFilter, afterId: number, untilId: number, limit: number) {
  return selectRows<{ id: number; box_id: number; device_id: number | null; from_status: string | null; to_status: string; at: Date }>(
    pool,
    sql`select e.id, e.box_id, e.device_id, e.from_status, e.to_status, e.at from ${EVENTS_OF_LISTED_BOXES}
        where e.id > ${afterId}::int8 and e.id <= ${untilId}::int8 and ${sql.join(eventConditions(filter), sql` and `)}
        order by e.id limit ${limit}`,
  );
}

export function statusEventsPage(pool: pg.Pool, filter: StatusEventFilter, ordering: Ordering, window: PageWindow): Promise<StatusEventRow[]> {
  return selectRows<StatusEventRow>(
    pool,
    pageQuery({ columns: EVENT_COLUMNS, from: EVENTS_OF_LISTED_BOXES, where: eventConditions(filter), ordering, window }),
  );
}

/** A page of history for each parent (`box` or `device`), in one statement. */
export function statusEventsPagePerParent(
  pool: pg.Pool,
  parent: 'box' | 'device',
  parentIds: readonly number[],
  filter: StatusEventFilter,
  ordering: Ordering,
  window: PageWindow,
): Promise<StatusEventRow[]> {
  return selectRows<StatusEventRow>(
    pool,
    pagePerParentQuery({
      parentIds,
      parentColumn: parent === 'box' ? sql`e.box_id` : sql`e.device_id`,
      columns: EVENT_COLUMNS,
      from: EVENTS_OF_LISTED_BOXES,
      where: eventConditions(filter),
      ordering,
      window,
    }),
  );
}

export function countStatusEventsQuery(filter: StatusEventFilter): SQL {
  return sql`select count(*)::int as count from ${EVENTS_OF_LISTED_BOXES} where ${sql.join(eventConditions(filter), sql` and `)}`;
}

export async function countStatusEventsPerParent(
  pool: pg.Pool,
  parent: 'box' | 'device',
  parentIds: readonly number[],
  filter: StatusEventFilter,
): Promise<Map<number, number>> {
  const column = parent === 'box' ? sql`e.box_id` : sql`e.device_id`;
  const rows = await selectRows<{ parentId: number; count: number }>(
    pool,
    sql`select ${column} as "parentId", count(*)::int as count from ${EVENTS_OF_LISTED_BOXES}
        where ${column} = any(${sql.param(parentIds)}::int4[]) and ${sql.join(eventConditions(filter), sql` and `)}
        group by ${column}`,
  );
  return new Map(rows.map((r) => [r.parentId, r.count]));
}

export function statusEventsByIds(pool: pg.Pool, ids: readonly number[]): Promise<StatusEventRow[]> {
  return selectRows<StatusEventRow>(
    pool,
    sql`select ${EVENT_COLUMNS} from ${EVENTS_OF_LISTED_BOXES} where e.id = any(${sql.param(ids)}::int8[]) and ${OF_LISTED_BOX}`,
  );
}
