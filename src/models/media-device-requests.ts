import type pg from 'pg';
import type { MediaDeviceAction } from '../db/schema';
import { inTransaction, run, selectRows, sql, type SQL } from '../db/sql';
import { insertConfigChange, type ConfigChangeRow, type NewConfigChange } from './box-config';
import { boxColumns, type BoxRow } from './boxes';
import { storableTextOrNull } from './storable-text';

// Media devices a box accepted to add or delete, and whether its reports show it yet. The state is
// computed when read, from the box's last report time and its devices: ingest knows nothing of it.

/**
 * `confirmed`: a report received after the request reflects it (an add: the box's devices list it;
 * a delete: they do not). `pending`: not yet, within the pending window. `unconfirmed`: not after it.
 */
export const MEDIA_DEVICE_REQUEST_STATES = ['pending', 'confirmed', 'unconfirmed'] as const;
export type MediaDeviceRequestState = (typeof MEDIA_DEVICE_REQUEST_STATES)[number];

/** What the box was asked to do, as a request row keeps it. */
export interface NewMediaDeviceRequest {
  action: MediaDeviceAction;
  /** The box's `media_device_id` (for an add, as it answered). */
  mediaDeviceId: string;
  name: string | null;
  type: string | null;
  url: string | null;
  permissionId: string | null;
}

export interface MediaDeviceRequestRow extends NewMediaDeviceRequest {
  id: number;
  boxId: number;
  changeId: number;
  requestedBy: string | null;
  requestedAt: Date;
  state: MediaDeviceRequestState;
  /** The device row it concerns (an add: listed with its id or URL; a delete: with its id), if any. */
  deviceId: number | null;
}

/** How long a request stays pending: `periods` report periods of its box, at least `minSeconds`. */
export interface PendingWindow {
  /** Report periods; the issue fixes 3. */
  periods: number;
  /** Seconds assumed when the box has neither a configured nor an observed period (DEFAULT_REPORT_PERIOD_SECONDS). */
  defaultPeriodSeconds: number;
  /** The window's floor (MEDIA_DEVICE_PENDING_MIN_SECONDS). */
  minSeconds: number;
}

/**
 * Writes the audit row of an accepted call and its request row in one transaction: the call is
 * acknowledged only once both are committed. Undefined when the box was removed meanwhile.
 */
export async function recordMediaDeviceRequest(
  pool: pg.Pool,
  change: NewConfigChange,
  request: NewMediaDeviceRequest,
): Promise<{ change: ConfigChangeRow; box: BoxRow; requestId: number } | undefined> {
  return inTransaction(pool, async (client) => {
    // The row lock keeps a concurrent removal out until commit, as recordConfigChange does.
    const {
      rows: [box],
    } = await run<BoxRow>(client, sql`select ${boxColumns()} from boxes b where b.id = ${change.boxId} and b.removed_at is null for no key update`);
    if (!box) return undefined;
    const row = await insertConfigChange(client, change);
    const {
      rows: [inserted],
    } = await run<{ id: number }>(
      client,
      sql`insert into media_device_requests (box_id, action, media_device_id, name, type, url, permission_id, change_id, requested_by, requested_at)
          values (${change.boxId}, ${request.action}, ${storableTextOrNull(request.mediaDeviceId)}, ${storableTextOrNull(request.name)},
                  ${storableTextOrNull(request.type)}, ${storableTextOrNull(request.url)}, ${storableTextOrNull(request.permissionId)},
                  ${row.id}, ${storableTextOrNull(change.requestedBy)}, ${row.requestedAt})
          returning id`,
    );
    return { change: row, box, requestId: Number(inserted!.id) };
  });
}

/** A device of the box, not removed, with this URL: the box refuses a second one. */
export async function listedDeviceWithUrl(pool: pg.Pool, boxId: number, url: string): Promise<{ externalId: string; name: string | null } | undefined> {
  const { rows } = await run<{ externalId: string; name: string | null }>(
    pool,
    sql`select external_id as "externalId", name from devices where box_id = ${boxId} and url = ${url} and removed_at is null order by id limit 1`,
  );
  return rows[0];
}

/** The box's device with this id as last reported (removed or not), for what a delete request names. */
export async function deviceByExternalId(
  pool: pg.Pool,
  boxId: number,
  externalId: string,
): Promise<{ name: string | null; type: string; url: string | null; permissionId: string | null } | undefined> {
  const { rows } = await run<{ name: string | null; type: string; url: string | null; permissionId: string | null }>(
    pool,
    sql`select name, type, url, permission_id as "permissionId" from devices where box_id = ${boxId} and external_id = ${externalId}`,
  );
  return rows[0];
}

// ---------------------------------------------------------------------------------------------
// Reads

/**
 * The request's device: an add matches the box's device with the id the box answered, or (an older
 * box reports `ep_id`s, not ids) with its URL, listed ones first; a delete matches by id only.
 */
const MATCHED_DEVICE = sql`left join lateral (
    select d.id, d.removed_at from devices d
    where d.box_id = r.box_id and (d.external_id = r.media_device_id or (r.action = 'add' and r.url is not null and d.url = r.url))
    order by (d.removed_at is null) desc, (d.external_id = r.media_device_id) desc, d.id desc
    limit 1
  ) d on true`;

function stateExpression(window: PendingWindow): SQL {
  const confirmed = sql`b.last_report_at > r.requested_at and case r.action when 'add' then d.id is not null and d.removed_at is null else d.id is null or d.removed_at is not null end`;
  const periodSeconds = sql`coalesce(b.report_period_seconds::float8, b.observed_period_seconds, ${window.defaultPeriodSeconds}::float8)`;
  const windowSeconds = sql`greatest(${window.periods}::float8 * ${periodSeconds}, ${window.minSeconds}::float8)`;
  return sql`case when ${confirmed} then 'confirmed'
                  when r.requested_at + make_interval(secs => ${windowSeconds}) > now() then 'pending'
                  else 'unconfirmed' end`;
}

function requestColumns(window: PendingWindow): SQL {
  return sql`r.id, r.box_id as "boxId", r.action, r.media_device_id as "mediaDeviceId", r.name, r.type, r.url, r.permission_id as "permissionId",
             r.change_id as "changeId", r.requested_by as "requestedBy", r.requested_at as "requestedAt", d.id as "deviceId",
             ${stateExpression(window)} as state`;
}

/** Requests of removed boxes are hidden with them. */
const REQUESTS = sql`media_device_requests r join boxes b on b.id = r.box_id and b.removed_at is null ${MATCHED_DEVICE}`;

/** Each box's newest `limit` requests in one of `states` (any when undefined), newest first, in one statement. */
export function mediaDeviceRequestsPerBox(
  pool: pg.Pool,
  boxIds: readonly number[],
  window: PendingWindow,
  options: { states?: readonly MediaDeviceRequestState[]; limit: number },
): Promise<MediaDeviceRequestRow[]> {
  const stateFilter = options.states ? sql`and page.state = any(${sql.param(options.states)}::text[])` : sql``;
  // Filtered before the limit: the newest `limit` of the states asked for, not of all requests.
  return selectRows<MediaDeviceRequestRow>(
    pool,
    sql`select page.* from unnest(${sql.param(boxIds)}::int4[]) as parent(id)
        cross join lateral (
          select * from (select ${requestColumns(window)} from ${REQUESTS} where r.box_id = parent.id) page
          where true ${stateFilter}
          order by page.id desc
          limit ${options.limit}
        ) page`,
  );
}

export function mediaDeviceRequestsByIds(pool: pg.Pool, ids: readonly number[], window: PendingWindow): Promise<MediaDeviceRequestRow[]> {
  return selectRows<MediaDeviceRequestRow>(pool, sql`select ${requestColumns(window)} from ${REQUESTS} where r.id = any(${sql.param(ids)}::int8[])`);
}

/** For each device, its newest delete request while it is pending (its box has not reported without it yet). */
export async function pendingDeletionsByDeviceIds(pool: pg.Pool, deviceIds: readonly number[], window: PendingWindow): Promise<Map<number, MediaDeviceRequestRow>> {
  const rows = await selectRows<MediaDeviceRequestRow>(
    pool,
    sql`select distinct on (page."deviceId") page.* from (
          select ${requestColumns(window)} from devices x
          join media_device_requests r on r.box_id = x.box_id and r.media_device_id = x.external_id and r.action = 'delete'
          join boxes b on b.id = r.box_id and b.removed_at is null ${MATCHED_DEVICE}
          where x.id = any(${sql.param(deviceIds)}::int4[])
        ) page
        where page.state = 'pending'
        order by page."deviceId", page.id desc`,
  );
  return new Map(rows.filter((row) => row.deviceId !== null).map((row) => [row.deviceId!, row]));
}
