import type pg from 'pg';
import type { DeviceStatus, DeviceType } from '../../db/schema';
import { sql } from '../../db/sql';
import { int4Array, textArray, timestamptzArray } from '../binary-arrays';
import type { BoxState, DeviceState } from './diff';
import type { Pipeline } from './pipeline';
import { REPORT_FIELD_NAMES, ReportColumns } from './report-columns';
import { upsertHealth, type HealthColumns } from './health-columns';
import type { StatusColumns } from './status-changes';

/**
 * The SQL of a batch of reports, one multi-row statement each. Every statement has a fixed name, so
 * it is prepared once per connection; each is sent on the batch's pipeline, and its answer awaited
 * by the caller when it needs it.
 */

/** Only what the diff needs. status_since comes as text and goes back as it came: a Date would lose its microseconds. */
const DEVICE_COLUMNS = sql.raw(`d.id, d.external_id, d.name, d.ip, d.type, d.url, d.permission_id, d.status,
  d.status_since::text as status_since, d.reported_status, d.reported_type, d.removed_at is not null as removed`);

const BOX_COLUMNS = sql.raw('id, license_key, status, status_since, last_report_at, last_report_hash, devices_hash, removed_at');

/**
 * Locks the boxes of `licenseKeys`, sorted: one lock order for the boxes that change, so a deadlock
 * with another replica (which needs its reports of the same boxes at the same moment) is rare, and
 * retried (writer.ts).
 */
export function lockBoxes(pipeline: Pipeline, licenseKeys: string[]): Promise<pg.QueryResult> {
  return pipeline.run(
    sql`select ${BOX_COLUMNS} from boxes where license_key = any(${sql.param(licenseKeys)}::text[])
        order by license_key for no key update`,
    'ingest_select_boxes',
  );
}

/**
 * The devices of the boxes whose stored device list differs from a report's (given as parallel
 * arrays of licence key and device-list hash); such a box without devices gives one row of nulls.
 */
export function selectChangedDevices(pipeline: Pipeline, licenseKeys: string[], devicesHashes: string[]): Promise<pg.QueryResult> {
  return pipeline.run(
    sql`select b.id as box_id, ${DEVICE_COLUMNS}
        from boxes b left join devices d on d.box_id = b.id
        where b.license_key = any(${sql.param(licenseKeys)}::text[])
          and exists (select from unnest(${sql.param(licenseKeys)}::text[], ${sql.param(devicesHashes)}::text[]) as r(license_key, devices_hash)
                      where r.license_key = b.license_key and r.devices_hash is distinct from b.devices_hash)`,
    'ingest_select_changed_devices',
  );
}

/** The devices of the boxes `boxIds`. */
export function selectDevices(pipeline: Pipeline, boxIds: number[]): Promise<pg.QueryResult> {
  return pipeline.run(sql`select d.box_id, ${DEVICE_COLUMNS} from devices d where d.box_id = any(${sql.param(boxIds)}::int[])`, 'ingest_select_devices');
}

/** Inserts boxes not created yet; returns the keys this statement inserted (not those another replica did meanwhile). */
export function insertBoxes(pipeline: Pipeline, licenseKeys: string[], at: Date): Promise<pg.QueryResult> {
  return pipeline.run(
    sql`insert into boxes (license_key, status, status_since, first_report_at)
        select key, 'online', ${at}, ${at} from unnest(${sql.param(licenseKeys)}::text[]) as key
        on conflict (license_key) do nothing
        returning license_key`,
    'ingest_insert_boxes',
  );
}

/** The columns of a device row as the JSON of deviceRow gives them. */
const DEVICE_RECORD = sql.raw(`name text, ip text, type text, url text, permission_id text, status text,
  status_since timestamptz, reported_status text, reported_type text, changed_at timestamptz, removed boolean`);

function deviceRow(d: DeviceState) {
  return {
    name: d.name,
    ip: d.ip,
    type: d.type,
    url: d.url,
    permission_id: d.permissionId,
    status: d.status,
    status_since: d.statusSince,
    reported_status: d.reportedStatus,
    reported_type: d.reportedType,
    changed_at: d.changedAt,
    removed: d.removed,
  };
}

/**
 * Devices seen for the first time; returns their ids. None can exist, since their box is locked and
 * its devices read, but a conflict updates rather than fails.
 */
export function insertDevices(pipeline: Pipeline, added: Array<{ boxId: number; device: DeviceState }>): Promise<pg.QueryResult> {
  const rows = added.map(({ boxId, device }) => ({ box_id: boxId, external_id: device.externalId, ...deviceRow(device) }));
  return pipeline.run(
    sql`insert into devices (box_id, external_id, name, ip, type, url, permission_id, status, status_since,
                             reported_status, reported_type, first_seen_at, updated_at, removed_at)
        select box_id, external_id, name, ip, type, url, permission_id, status, status_since,
               reported_status, reported_type, changed_at, changed_at, case when removed then changed_at end
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as d(box_id int, external_id text, ${DEVICE_RECORD})
        on conflict (box_id, external_id) do update set
          name = excluded.name, ip = excluded.ip, type = excluded.type, url = excluded.url,
          permission_id = excluded.permission_id, status = excluded.status, status_since = excluded.status_since,
          reported_status = excluded.reported_status, reported_type = excluded.reported_type,
          updated_at = excluded.updated_at, removed_at = excluded.removed_at
        returning id, box_id, external_id`,
    'ingest_upsert_devices',
  );
}

/** Stored devices changed or removed now, by id: cheaper than the upsert, which first tries an insert into the unique index. */
export function updateDevices(pipeline: Pipeline, changed: DeviceState[]): Promise<pg.QueryResult> {
  const rows = changed.map((device) => ({ id: device.id, ...deviceRow(device) }));
  return pipeline.run(
    sql`update devices d set
          name = v.name, ip = v.ip, type = v.type, url = v.url, permission_id = v.permission_id, status = v.status,
          status_since = v.status_since, reported_status = v.reported_status, reported_type = v.reported_type,
          updated_at = v.changed_at, removed_at = case when v.removed then v.changed_at end
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(id int, ${DEVICE_RECORD})
        where d.id = any(${sql.param(changed.map((d) => d.id))}::int[]) and d.id = v.id -- by index, not a scan of every device`,
    'ingest_update_devices',
  );
}

/**
 * The smoothed interval between a box's reports, for offline detection when no period is configured.
 * Samples outside 0.5 s .. 1 h say nothing about the period (bursts, outages) and are ignored.
 */
const OBSERVED_PERIOD = `
  case when b.last_report_at is null
         or extract(epoch from v.last_report_at - b.last_report_at) / v.reports not between 0.5 and 3600
       then b.observed_period_seconds
       else coalesce(b.observed_period_seconds * 0.8, 0.8 * extract(epoch from v.last_report_at - b.last_report_at) / v.reports)
            + 0.2 * extract(epoch from v.last_report_at - b.last_report_at) / v.reports end`;

/**
 * Columns both box updates set from a report (the `v` of ReportColumns). The report's own fields
 * (format, name, gateway data) are taken only with its body, sent only when it differs from the stored one.
 */
const REPORT_COLUMNS = sql.raw(`
    last_report_at = v.last_report_at,
    first_report_at = coalesce(b.first_report_at, v.last_report_at),
    address = coalesce(v.address, b.address),
    report_count = b.report_count + v.reports,
    observed_period_seconds = ${OBSERVED_PERIOD},
    last_report_hash = v.last_report_hash,
    devices_hash = v.devices_hash,
    report_format = case when v.body is null then b.report_format else v.report_format end,
    name = case when v.body is not null and v.name is not null then v.name else b.name end,
    gateway = case when v.body is null then b.gateway else v.gateway::jsonb end,
    gateway_ext_data = case when v.body is null then b.gateway_ext_data else v.gateway_ext_data::jsonb end`);

/** Writes the bodies of the boxes `updated` returns with a body (id, body); only the body, so an unchanged row stays as it is. */
const STORE_BODIES = sql`
  bodies as (
    insert into box_last_reports (box_id, body)
    select id, body from updated where body is not null
    on conflict (box_id) do update set body = excluded.body)`;

/**
 * The common cases in one statement, without reading first: a box that is online and reports either
 * the device list it has stored (`expected_devices_hash` the report's own) or that list with some
 * statuses changed (`statuses`, see StatusColumns), with a body either sent or the stored one. The
 * device rows are the stored list's (only the ingest writes them, always with that list's hash), so
 * the statuses are set by key. A box that does not match (devices changed otherwise, offline, removed,
 * new, or its body omitted but not the stored one) is not updated, and takes the diff path; the health
 * figures of the boxes updated go in with them (`health`, see upsertHealth). Returns
 * the boxes updated (`device_id` null) and the devices whose status was set.
 */
export function updateUnchangedBoxes(
  pipeline: Pipeline,
  licenseKeys: string[],
  expectedDevicesHashes: string[],
  columns: ReportColumns,
  statuses: StatusColumns,
  health: HealthColumns,
): Promise<pg.QueryResult> {
  const keys = textArray(licenseKeys);
  return pipeline.run(
    sql`with updated as (
          update boxes b set ${REPORT_COLUMNS}
          from unnest(${keys}::text[], ${textArray(expectedDevicesHashes)}::text[], ${columns.arrays()})
               as v(license_key, expected_devices_hash, ${REPORT_FIELD_NAMES})
          where b.license_key = any(${keys}::text[]) -- the keys as an array too: the rows are found by index, not by scanning every box
            and b.license_key = v.license_key and b.status = 'online' and b.removed_at is null
            and b.devices_hash = v.expected_devices_hash
            and (v.body is not null or b.last_report_hash = v.last_report_hash)
          returning b.id, b.license_key, v.body),
        ${STORE_BODIES},
        ${upsertHealth(health)},
        statuses as (
          update devices d set status = s.status, reported_status = s.reported_status, status_since = s.at, updated_at = s.at
          from unnest(${statuses.arrays()}) as s(license_key, external_id, status, reported_status, at)
          join updated u on u.license_key = s.license_key
          where d.box_id = u.id and d.external_id = s.external_id -- by the unique index
          returning d.box_id, d.id, d.external_id)
        select id, license_key, null::int4 as device_id, null::text as external_id from updated
        union all
        select box_id, null, id, external_id from statuses`,
    'ingest_update_unchanged_boxes',
  );
}

/** The boxes of the diff path, each with its status and the fields of its last report in the batch, and their health. */
export function updateBoxes(pipeline: Pipeline, boxes: BoxState[], health: HealthColumns): Promise<pg.QueryResult> {
  const columns = boxColumns(boxes);
  const ids = int4Array(boxes.map((box) => box.id));
  return pipeline.run(
    sql`with updated as (
          update boxes b set ${REPORT_COLUMNS}, status = v.status, status_since = v.status_since, removed_at = null
          from unnest(${ids}::int4[], ${textArray(boxes.map((box) => box.status))}::text[],
                      ${timestamptzArray(boxes.map((box) => box.statusSince))}::timestamptz[], ${columns.arrays()})
               as v(id, status, status_since, ${REPORT_FIELD_NAMES})
          where b.id = any(${ids}::int4[]) and b.id = v.id -- by index (see updateUnchangedBoxes)
          returning b.id, b.license_key, v.body),
        ${STORE_BODIES},
        ${upsertHealth(health)}
        select count(*) from updated`,
    'ingest_update_boxes',
  );
}

function boxColumns(boxes: BoxState[]): ReportColumns {
  const columns = new ReportColumns();
  for (const box of boxes) {
    const { report, address } = box.lastReport!;
    columns.add(report, box.lastReportAt!, address, box.reports, box.bodyChanged);
  }
  return columns;
}

export function boxState(r: pg.QueryResultRow, created: boolean): BoxState {
  return {
    id: r.id,
    licenseKey: r.license_key,
    status: r.status,
    statusSince: r.status_since,
    lastReportAt: r.last_report_at,
    removedAt: r.removed_at,
    lastReportHash: r.last_report_hash,
    devicesHash: r.devices_hash,
    created,
    reports: 0,
    bodyChanged: false,
  };
}

export function deviceState(r: pg.QueryResultRow): DeviceState {
  return {
    id: r.id,
    externalId: r.external_id,
    name: r.name,
    ip: r.ip,
    type: r.type as DeviceType,
    url: r.url,
    permissionId: r.permission_id,
    status: r.status as DeviceStatus,
    statusSince: r.status_since,
    reportedStatus: r.reported_status,
    reportedType: r.reported_type,
    removed: r.removed,
    changedAt: null,
  };
}
