import pg from 'pg';
import type { BoxStatus, DeviceStatus, DeviceType } from '../db/schema';
import { ReportError, type ReportWarning } from './errors';
import { int4Array, textArray, timestamptzArray } from './binary-arrays';
import { Pipeline } from './pipeline';
import { insertStatusEvents, type EventRow, type RecordedEvent } from '../live/events-table';
import { licenseKeyField, maskLicenseKey } from './license-key';
import type { Report, ReportedDevice } from './report';

export type { RecordedEvent };

/** A report waiting in a batch: what arrived, when, and from where. */
export interface ReceivedReport {
  report: Report;
  receivedAt: Date;
  address: string | null;
  /** INGEST_POLICY=registered: refuse the report (403 UNKNOWN_BOX) unless its box exists and is not removed. */
  mustExist?: boolean;
}

/** What the store did with one report; the ingest answers it as the 200 body. */
export interface AppliedReport {
  boxId: number;
  licenseKey: string;
  format: Report['format'];
  devices: number;
  changes: number;
  warnings: ReportWarning[];
}

/** A timestamp as Postgres sent it (text, passed back unchanged) or as this batch set it. */
type Timestamp = Date | string;

interface BoxState {
  id: number;
  licenseKey: string;
  status: BoxStatus;
  statusSince: Date;
  lastReportAt: Date | null;
  /** Removed by an operator (history kept); a report brings it back. */
  removedAt: Date | null;
  lastReportHash: string | null;
  devicesHash: string | null;
  /** Inserted by this batch for a report that has not been applied yet: to a report that must find its box, it does not exist. */
  created: boolean;
  /** Set once the batch touched it: the values the final UPDATE writes. */
  reports: number;
  report?: Report;
  address?: string | null;
  rawChanged: boolean;
  devices?: Map<string, DeviceState>;
}

interface DeviceState extends ReportedDevice {
  id: number | null;
  statusSince: Timestamp;
  /** Gone from its box's list. */
  removed: boolean;
  /** Written when dirty: the time of the report that changed it last (and of its removal, if removed). */
  updatedAt: Date | null;
  dirty: boolean;
}

interface PendingEvent {
  box: BoxState;
  device: DeviceState | null;
  fromStatus: string | null;
  toStatus: string;
  at: Date;
}

const SELECT_BOXES = `
  select id, license_key, status, status_since, last_report_at, last_report_hash, devices_hash, removed_at
  from boxes where license_key = any($1::text[])
  order by license_key -- one lock order for the boxes that change (a deadlock with another replica, which
                       -- needs its reports of the same boxes at the same moment, is retried: writer.ts)
  for no key update`;

const INSERT_BOXES = `
  insert into boxes (license_key, status, status_since, first_report_at)
  select key, 'online', $2, $2 from unnest($1::text[]) as key
  on conflict (license_key) do nothing
  returning license_key`;

/** Only what the diff needs: a device's other times are either kept or set to its report's time. */
const DEVICE_COLUMNS = `d.id, d.external_id, d.name, d.ip, d.type, d.url, d.permission_id, d.status, d.status_since,
         d.reported_status, d.reported_type, d.removed_at is not null as removed`;

const SELECT_DEVICES = `
  select d.box_id, ${DEVICE_COLUMNS}
  from devices d where d.box_id = any($1::int[])`;

/**
 * The devices of the boxes whose stored device list differs from a report's (given as parallel
 * arrays of licence key and device-list hash); such a box without devices gives one row of nulls.
 */
const SELECT_CHANGED_DEVICES = `
  select b.id as box_id, ${DEVICE_COLUMNS}
  from boxes b left join devices d on d.box_id = b.id
  where b.license_key = any($1::text[])
    and exists (select from unnest($1::text[], $2::text[]) as r(license_key, devices_hash)
                where r.license_key = b.license_key and r.devices_hash is distinct from b.devices_hash)`;

/** The columns of a device row as the diff sends them (see deviceRow). */
const DEVICE_RECORD = `name text, ip text, type text, url text, permission_id text, status text,
    status_since timestamptz, reported_status text, reported_type text, updated_at timestamptz, removed boolean`;

/**
 * Devices seen for the first time. None can exist, since their box is locked and its devices read,
 * but a conflict updates rather than fails.
 */
const UPSERT_DEVICES = `
  insert into devices (box_id, external_id, name, ip, type, url, permission_id, status, status_since,
                       reported_status, reported_type, first_seen_at, updated_at, removed_at)
  select box_id, external_id, name, ip, type, url, permission_id, status, status_since,
         reported_status, reported_type, updated_at, updated_at, case when removed then updated_at end
  from jsonb_to_recordset($1::jsonb) as d(box_id int, external_id text, ${DEVICE_RECORD})
  on conflict (box_id, external_id) do update set
    name = excluded.name, ip = excluded.ip, type = excluded.type, url = excluded.url,
    permission_id = excluded.permission_id, status = excluded.status, status_since = excluded.status_since,
    reported_status = excluded.reported_status, reported_type = excluded.reported_type,
    updated_at = excluded.updated_at, removed_at = excluded.removed_at
  returning id, box_id, external_id`;

/**
 * Stored devices changed or removed now, by id: cheaper than the upsert, which first tries an insert
 * into the unique index for each row (about a quarter less time for a batch's 35 changed devices).
 */
const UPDATE_DEVICES = `
  update devices d set
    name = v.name, ip = v.ip, type = v.type, url = v.url, permission_id = v.permission_id, status = v.status,
    status_since = v.status_since, reported_status = v.reported_status, reported_type = v.reported_type,
    updated_at = v.updated_at, removed_at = case when v.removed then v.updated_at end
  from jsonb_to_recordset($1::jsonb) as v(id int, ${DEVICE_RECORD})
  where d.id = any($2::int[]) and d.id = v.id -- by index (see UPDATE_UNCHANGED_BOXES)`;

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
 * Columns both box updates set from a report. The report's own fields (format, name, gateway data,
 * the body) are taken only when its body differs from the stored one (`body` not null). A body that
 * differs from the box's last only in `gateway_ext_data` is not sent (see Report.extDataOnly): its
 * value is (`ext_data` not null), and the stored body stays, with that value read in its place (see
 * lastReportsByBoxIds). Its `gateway_ext_data` is taken either way.
 */
const REPORT_COLUMNS = `
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
    gateway_ext_data = case when v.body is null and v.ext_data is null then b.gateway_ext_data else v.gateway_ext_data::jsonb end,
    last_report_ext_data = case when v.body is not null then null when v.ext_data is not null then v.ext_data else b.last_report_ext_data end,
    last_report_ext_prefix = case when v.body is not null then null when v.ext_data is not null then v.ext_prefix else b.last_report_ext_prefix end,
    last_report_ext_suffix = case when v.body is not null then null when v.ext_data is not null then v.ext_suffix else b.last_report_ext_suffix end,
    last_report_ext_for = case when v.body is not null then null when v.ext_data is not null then v.last_report_hash else b.last_report_ext_for end`;

/**
 * A report's fields in both box updates, in this order, each sent as one array parameter of its type
 * (see ReportColumns). `gateway` and `gateway_ext_data` come as JSON text.
 */
const REPORT_FIELDS = [
  ['last_report_at', 'timestamptz'],
  ['address', 'text'],
  ['reports', 'int4'],
  ['last_report_hash', 'text'],
  ['devices_hash', 'text'],
  ['report_format', 'text'],
  ['name', 'text'],
  ['gateway', 'text'],
  ['gateway_ext_data', 'text'],
  ['body', 'text'],
  ['ext_data', 'text'],
  ['ext_prefix', 'int4'],
  ['ext_suffix', 'int4'],
  ['previous_hash', 'text'],
] as const;
type ReportField = (typeof REPORT_FIELDS)[number][0];
/** The array parameters of REPORT_FIELDS, numbered from `$first`. */
const reportArrays = (first: number) => REPORT_FIELDS.map(([, type], i) => `$${first + i}::${type}[]`).join(', ');
const REPORT_FIELD_NAMES = REPORT_FIELDS.map(([name]) => name).join(', ');

/**
 * Stores the bodies sent with an update (`updated` returns id and body, null when unchanged). Only
 * the body is written: when the row's other bytes stay as they are and the new version fits on its
 * page, Postgres logs just the bytes of the body that changed (for an older box, its health figures).
 */
const STORE_BODIES = `
  bodies as (
    insert into box_last_reports (box_id, body)
    select id, body from updated where body is not null
    on conflict (box_id) do update set body = excluded.body)`;

/**
 * The common cases in one statement, without reading first: a box that is online and reports either
 * the devices it reported last time (`expected_devices_hash` is the report's own), or those with only
 * some statuses changed (`expected_devices_hash` is the list they changed from, see
 * Report.statusChanges). Where the stored list is the expected one, the stored device rows are that
 * list's: only the ingest writes them, and always with the hash of the list it wrote. So the changed
 * statuses are set by key, without reading the devices, and the history comes from the report. Rows
 * that do not match (devices changed otherwise, box offline, new box, the body omitted but not equal
 * to the stored one, or sent as new health figures for a body that is not the stored last one) take
 * the full path. Returns the boxes updated (`device_id` null) and the devices whose status was set.
 */
const UPDATE_UNCHANGED_BOXES = `
  with updated as (
    update boxes b set ${REPORT_COLUMNS}
    from unnest($1::text[], $2::text[], ${reportArrays(3)}) as v(license_key, expected_devices_hash, ${REPORT_FIELD_NAMES})
    where b.license_key = any($1::text[]) -- the keys as an array too: the rows are found by index, not by scanning every box
      and b.license_key = v.license_key and b.status = 'online' and b.removed_at is null
      and b.devices_hash = v.expected_devices_hash
      and (v.body is not null or b.last_report_hash = v.last_report_hash
           or (v.ext_data is not null and b.last_report_hash = v.previous_hash))
    returning b.id, b.license_key, v.body),
  ${STORE_BODIES},
  statuses as (
    update devices d set status = s.status, reported_status = s.reported_status, status_since = s.at, updated_at = s.at
    from unnest($${3 + REPORT_FIELDS.length}::text[], $${4 + REPORT_FIELDS.length}::text[], $${5 + REPORT_FIELDS.length}::text[],
                $${6 + REPORT_FIELDS.length}::text[], $${7 + REPORT_FIELDS.length}::timestamptz[]) as s(license_key, external_id, status, reported_status, at)
    join updated u on u.license_key = s.license_key
    where d.box_id = u.id and d.external_id = s.external_id -- by the unique index
    returning d.box_id, d.id, d.external_id)
  select id, license_key, null::int4 as device_id, null::text as external_id from updated
  union all
  select box_id, null, id, external_id from statuses`;

const UPDATE_BOXES = `
  with updated as (
    update boxes b set ${REPORT_COLUMNS},
      status = v.status,
      status_since = v.status_since,
      removed_at = null
    from unnest($1::int4[], $2::text[], $3::timestamptz[], ${reportArrays(4)}) as v(id, status, status_since, ${REPORT_FIELD_NAMES})
    where b.id = any($1::int4[]) and b.id = v.id -- by index (see UPDATE_UNCHANGED_BOXES)
    returning b.id, v.body),
  ${STORE_BODIES}
  select count(*) from updated`;

/** A device's status_since is only written back: it stays the text Postgres sent, and is not parsed. */
const TIMESTAMPS_AS_TEXT = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.TIMESTAMPTZ ? (value: string) => value : pg.types.getTypeParser(oid, format ?? 'text'),
} as pg.CustomTypesConfig;

function boxState(r: pg.QueryResultRow, created: boolean): BoxState {
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
    rawChanged: false,
  };
}

function deviceState(r: pg.QueryResultRow): DeviceState {
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
    updatedAt: null,
    dirty: false,
  };
}

/**
 * Sends, without waiting: lock the boxes of `reports` (in key order), then read the devices of
 * those whose stored device list differs from one of the reports'. Postgres runs the read after the
 * lock is granted, so it reads what the lock protects.
 */
function lockAndRead(pipeline: Pipeline, reports: ReceivedReport[]): Promise<[pg.QueryResult, pg.QueryResult]> {
  const keys = [...new Set(reports.map((r) => r.report.licenseKey))].sort();
  return pipeline.track(Promise.all([
    pipeline.query({ name: 'ingest_select_boxes', text: SELECT_BOXES, values: [keys] }),
    pipeline.query({
      name: 'ingest_select_changed_devices',
      text: SELECT_CHANGED_DEVICES,
      values: [reports.map((r) => r.report.licenseKey), reports.map((r) => r.report.devicesHash)],
      types: TIMESTAMPS_AS_TEXT,
    }),
  ]));
}

/**
 * Inserts the boxes of `licenseKeys` that no report has created yet and locks them (with any that
 * another replica inserted meanwhile). Only keys with a report that may create its box are given.
 */
async function createBoxes(client: pg.ClientBase, licenseKeys: string[], at: Date, boxes: Map<string, BoxState>): Promise<number> {
  // Keys another replica inserted meanwhile are not ours: `returning` names only the rows this insert made.
  const inserted = await client.query({ name: 'ingest_insert_boxes', text: INSERT_BOXES, values: [licenseKeys, at] });
  const created = new Set(inserted.rows.map((r) => r.license_key as string));
  const locked = await client.query({ name: 'ingest_select_boxes', text: SELECT_BOXES, values: [licenseKeys] });
  for (const r of locked.rows) boxes.set(r.license_key, boxState(r, created.has(r.license_key)));
  return created.size;
}

/** The devices of `boxes`, read by id. */
async function loadDevices(client: pg.ClientBase, boxes: BoxState[]): Promise<void> {
  for (const box of boxes) box.devices = new Map();
  const byId = new Map(boxes.map((box) => [box.id, box]));
  const { rows } = await client.query({
    name: 'ingest_select_devices',
    text: SELECT_DEVICES,
    values: [[...byId.keys()]],
    types: TIMESTAMPS_AS_TEXT,
  });
  for (const r of rows) byId.get(r.box_id)!.devices!.set(r.external_id, deviceState(r));
}

const SAME_FIELDS = ['name', 'ip', 'type', 'url', 'permissionId', 'reportedStatus', 'reportedType'] as const;

/** Applies one report's device list to its box's device states; returns the history it makes. */
function diffDevices(box: BoxState, report: Report, at: Date, events: PendingEvent[]): number {
  const devices = box.devices!;
  let changes = 0;
  const listed = new Set<string>();
  const record = (device: DeviceState, fromStatus: string | null, toStatus: string) => {
    events.push({ box, device, fromStatus, toStatus, at });
    changes++;
  };
  for (const reported of report.devices) {
    listed.add(reported.externalId);
    const current = devices.get(reported.externalId);
    if (!current) {
      const device: DeviceState = { ...reported, id: null, statusSince: at, removed: false, updatedAt: at, dirty: true };
      devices.set(reported.externalId, device);
      record(device, null, reported.status);
      continue;
    }
    const fieldsChanged = SAME_FIELDS.some((field) => current[field] !== reported[field]);
    if (current.removed) {
      record(current, 'removed', reported.status);
      current.removed = false;
      current.statusSince = at;
    } else if (current.status !== reported.status) {
      record(current, current.status, reported.status);
      current.statusSince = at;
    } else if (!fieldsChanged) {
      continue;
    }
    Object.assign(current, reported, { updatedAt: at, dirty: true });
  }
  for (const device of devices.values()) {
    if (device.removed || listed.has(device.externalId)) continue;
    record(device, device.status, 'removed');
    Object.assign(device, { removed: true, statusSince: at, updatedAt: at, dirty: true });
  }
  return changes;
}

/**
 * What the store remembers between batches, per licence key: the hashes of the body and device list
 * it last committed. An equal body is not sent again, and a changed device list goes straight to the
 * full path. This is this process's view: a stale entry only costs the slower path.
 */
export type CommittedHashes = Map<string, { rawHash: string; devicesHash: string }>;

/**
 * Reports' fields for the box updates, a column each, in the order and types of REPORT_FIELDS. Values
 * go straight into their columns: no row object per report, which at thousands of reports a second is
 * garbage the young-generation collector would have to sweep.
 */
class ReportColumns {
  private readonly lastReportAt: Date[] = [];
  private readonly address: Array<string | null> = [];
  private readonly reports: number[] = [];
  private readonly lastReportHash: string[] = [];
  private readonly devicesHash: string[] = [];
  private readonly reportFormat: string[] = [];
  private readonly name: Array<string | null> = [];
  private readonly gateway: Array<string | null> = [];
  private readonly gatewayExtData: Array<string | null> = [];
  private readonly body: Array<Buffer | null> = [];
  private readonly extData: Array<string | null> = [];
  private readonly extPrefix: Array<number | null> = [];
  private readonly extSuffix: Array<number | null> = [];
  private readonly previousHash: Array<string | null> = [];

  /**
   * `body`: whether the report's body is the stored one (`same`), differs from it only in its health
   * figures (`ext-data`: the box's last stored body is its Report.extDataOnly.previousHash, as the
   * update checks), or replaces it with the report's own fields (`whole`).
   */
  add(report: Report, at: Date, address: string | null, reports: number, body: 'same' | 'ext-data' | 'whole'): void {
    const withBody = body === 'whole';
    const ext = body === 'ext-data' ? report.extDataOnly! : undefined;
    this.lastReportAt.push(at);
    this.address.push(address);
    this.reports.push(reports);
    this.lastReportHash.push(report.rawHash);
    this.devicesHash.push(report.devicesHash);
    this.reportFormat.push(report.format);
    this.name.push(report.boxName);
    this.gateway.push(withBody && report.gateway ? JSON.stringify(report.gateway) : null);
    this.gatewayExtData.push((withBody || ext) && report.gatewayExtData ? JSON.stringify(report.gatewayExtData) : null);
    this.body.push(withBody ? report.rawBody : null);
    this.extData.push(ext?.text ?? null);
    this.extPrefix.push(ext?.prefixBytes ?? null);
    this.extSuffix.push(ext?.suffixBytes ?? null);
    this.previousHash.push(ext?.previousHash ?? null);
  }

  /** The columns as array parameters, in the order of REPORT_FIELDS. */
  params(): Buffer[] {
    const columns: Record<ReportField, Buffer> = {
      last_report_at: timestamptzArray(this.lastReportAt),
      address: textArray(this.address),
      reports: int4Array(this.reports),
      last_report_hash: textArray(this.lastReportHash),
      devices_hash: textArray(this.devicesHash),
      report_format: textArray(this.reportFormat),
      name: textArray(this.name),
      gateway: textArray(this.gateway),
      gateway_ext_data: textArray(this.gatewayExtData),
      body: textArray(this.body),
      ext_data: textArray(this.extData),
      ext_prefix: int4Array(this.extPrefix),
      ext_suffix: int4Array(this.extSuffix),
      previous_hash: textArray(this.previousHash),
    };
    return REPORT_FIELDS.map(([name]) => columns[name]);
  }
}

/** The report's box does not exist or was removed, and the report may not create or restore it. */
function unknownBox(report: Report): ReportError {
  return new ReportError(
    403,
    'UNKNOWN_BOX',
    `Licence key ${maskLicenseKey(report.licenseKey)} is not registered; register the box (registerBox) before it reports.`,
    licenseKeyField(report.format),
  );
}

function applied(boxId: number, report: Report, changes: number): AppliedReport {
  return {
    boxId,
    licenseKey: report.licenseKey,
    format: report.format,
    devices: report.devices.length,
    changes,
    warnings: report.warnings,
  };
}

/** The batch failed after some of its reports were committed; those are in `applied`. */
export class PartlyAppliedError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly applied: Map<ReceivedReport, AppliedReport>,
  ) {
    super('batch partly applied', { cause });
  }
}

/**
 * Applies a batch of reports, in order, on a client with no transaction open:
 * 1. reports of online boxes whose device list is unchanged, or is the list this process stored last
 *    with only some statuses changed (Report.statusChanges): one conditional statement, no reads;
 * 2. the rest: lock their boxes (creating new ones), diff device lists against the stored ones, and
 *    write devices, boxes and history with one multi-row statement each.
 * When the batch has reports for step 2 or statuses set by step 1 (whose history is written last,
 * see insertStatusEvents), both steps share one transaction, so the batch waits for one commit (one
 * WAL flush) instead of two. Otherwise step 1 commits on its own, and any report it did not match
 * (its box or its devices changed meanwhile) takes step 2 in a second transaction.
 * Statements go out in pipeline mode: the UPDATE of step 1 and the locks and reads of step 2 in one
 * round trip (step 2 starting with the reports this process expects to need it), the writes and the
 * COMMIT in another. A report that must find its box and does not (`mustExist`) is answered with a
 * ReportError and leaves nothing behind; the others are applied. `committed` is this process's
 * memory of what it stored (see CommittedHashes). If a second transaction fails after step 1
 * committed, a PartlyAppliedError says which are stored. Also returns the history recorded and how
 * many boxes the batch created.
 */
export async function applyReports(
  client: pg.ClientBase,
  batch: ReceivedReport[],
  committed: CommittedHashes,
): Promise<{ applied: Array<AppliedReport | ReportError>; events: RecordedEvent[]; created: number }> {
  const results = new Map<ReceivedReport, AppliedReport | ReportError>();
  const perBox = new Map<string, number>();
  for (const { report } of batch) perBox.set(report.licenseKey, (perBox.get(report.licenseKey) ?? 0) + 1);

  // A box reporting twice in one batch takes the full path, which orders them, and so does a
  // device list known to differ from the one this process last stored, unless it is that list with
  // only some statuses changed (see UPDATE_UNCHANGED_BOXES).
  const columns = new ReportColumns();
  const single: ReceivedReport[] = [];
  const expectedLists: string[] = [];
  const statuses = { keys: [] as string[], ids: [] as string[], values: [] as string[], reported: [] as Array<string | null>, at: [] as Date[] };
  const full: ReceivedReport[] = [];
  for (const received of batch) {
    const { report, receivedAt, address } = received;
    const last = committed.get(report.licenseKey);
    const changes = report.statusChanges;
    const statusesOnly = changes !== undefined && last?.devicesHash !== report.devicesHash && (last === undefined || last.devicesHash === changes.previousDevicesHash);
    if (perBox.get(report.licenseKey) !== 1 || (!statusesOnly && last !== undefined && last.devicesHash !== report.devicesHash)) {
      full.push(received);
      continue;
    }
    single.push(received);
    expectedLists.push(statusesOnly ? changes.previousDevicesHash : report.devicesHash);
    if (statusesOnly) {
      for (const { device } of changes.changed) {
        statuses.keys.push(report.licenseKey);
        statuses.ids.push(device.externalId);
        statuses.values.push(device.status);
        statuses.reported.push(device.reportedStatus);
        statuses.at.push(receivedAt);
      }
    }
    const body = last?.rawHash === report.rawHash ? 'same' : last !== undefined && last.rawHash === report.extDataOnly?.previousHash ? 'ext-data' : 'whole';
    columns.add(report, receivedAt, address, 1, body);
  }

  const pipeline = new Pipeline(client);
  /** Reports committed by step 1 on its own. */
  const stored = new Map<ReceivedReport, AppliedReport>();
  let open = false;
  const begin = () => {
    open = true;
    return pipeline.query({ text: 'begin' });
  };
  try {
    const started: Array<Promise<unknown>> = [];
    // Statuses set by step 1 make history, which is written last, in the transaction of the full path.
    const together = full.length > 0 || statuses.keys.length > 0;
    if (together) started.push(begin());
    const unchanged = single.length > 0
      ? pipeline.query({
          name: 'ingest_update_unchanged_boxes',
          text: UPDATE_UNCHANGED_BOXES,
          values: [
            textArray(single.map((r) => r.report.licenseKey)),
            textArray(expectedLists),
            ...columns.params(),
            textArray(statuses.keys),
            textArray(statuses.ids),
            textArray(statuses.values),
            textArray(statuses.reported),
            timestamptzArray(statuses.at),
          ],
        })
      : undefined;
    const reads: Array<Promise<[pg.QueryResult, pg.QueryResult]>> = [];
    if (together && full.length > 0) reads.push(lockAndRead(pipeline, full));
    /** History of the statuses step 1 set, in batch order. */
    const statusEvents: EventRow[] = [];
    if (unchanged) {
      const { rows } = await unchanged;
      const ids = new Map<string, number>();
      const deviceIds = new Map<string, number>();
      for (const r of rows) {
        if (r.device_id === null) ids.set(r.license_key, r.id);
        else deviceIds.set(`${r.id}\u0000${r.external_id}`, r.device_id);
      }
      const missed: ReceivedReport[] = [];
      for (const [i, received] of single.entries()) {
        const { report, receivedAt } = received;
        const id = ids.get(report.licenseKey);
        if (id === undefined) {
          missed.push(received);
          continue;
        }
        const changes = report.devicesHash === expectedLists[i] ? [] : report.statusChanges!.changed;
        for (const { device, from } of changes) {
          const deviceId = deviceIds.get(`${id}\u0000${device.externalId}`);
          // The stored list was the expected one, so each of its devices has a row; if not, nothing of the batch is kept.
          if (deviceId === undefined) throw new Error(`device ${device.externalId} of box ${id} was not found though its list was the expected one`);
          statusEvents.push({ box_id: id, device_id: deviceId, from_status: from, to_status: device.status, at: receivedAt });
        }
        results.set(received, applied(id, report, changes.length));
      }
      if (!together) for (const [received, result] of results) stored.set(received, result as AppliedReport);
      if (missed.length > 0) {
        if (!open) started.push(begin());
        reads.push(lockAndRead(pipeline, missed));
      }
    }
    let changed: { events: RecordedEvent[]; created: number } = { events: [], created: 0 };
    if (open) {
      await Promise.all(started);
      changed = await applyChanges(
        pipeline,
        batch.filter((r) => !results.has(r)),
        await Promise.all(reads),
        results,
        statusEvents,
      );
      open = false;
    }
    return { applied: batch.map((r) => results.get(r)!), ...changed };
  } catch (error) {
    await pipeline.end();
    if (open) await client.query('rollback').catch(() => {});
    throw stored.size > 0 ? new PartlyAppliedError(error, stored) : error;
  } finally {
    await pipeline.end();
  }
}

/** Step 2 of applyReports, in its open transaction, given the boxes locked and devices read for `batch`. */
async function applyChanges(
  pipeline: Pipeline,
  batch: ReceivedReport[],
  reads: Array<[pg.QueryResult, pg.QueryResult]>,
  results: Map<ReceivedReport, AppliedReport | ReportError>,
  /** History already made by step 1 (statuses it set), written first. */
  earlierEvents: EventRow[],
): Promise<{ events: RecordedEvent[]; created: number }> {
  const client = pipeline.client;
  const boxes = new Map<string, BoxState>();
  for (const [locked] of reads) for (const r of locked.rows) boxes.set(r.license_key, boxState(r, false));
  const byId = new Map([...boxes.values()].map((box) => [box.id, box]));
  for (const [, devices] of reads) {
    for (const r of devices.rows) {
      const box = byId.get(r.box_id);
      if (!box) continue; // inserted by another replica after our lock: it is read again below
      box.devices ??= new Map();
      if (r.id !== null) box.devices.set(r.external_id, deviceState(r));
    }
  }

  // New boxes, unless every report of them must find its box (a refused report leaves nothing behind).
  const creators = new Set(batch.filter((r) => !r.mustExist).map((r) => r.report.licenseKey));
  const missing = [...creators].filter((key) => !boxes.has(key)).sort();
  const created = missing.length > 0 ? await createBoxes(client, missing, batch[batch.length - 1]!.receivedAt, boxes) : 0;

  // Whether a report's box exists for it, as the reports before it in the batch leave the box.
  const exists = (box: BoxState) => !box.created && box.removedAt === null;

  // Devices are needed only for boxes whose device list changed since the stored one.
  const needDevices = new Set<BoxState>();
  const hashAfter = new Map<BoxState, string | null>();
  for (const { report } of batch) {
    const box = boxes.get(report.licenseKey);
    if (!box) continue;
    const previous = hashAfter.has(box) ? hashAfter.get(box) : box.devicesHash;
    if (previous !== report.devicesHash) needDevices.add(box);
    hashAfter.set(box, report.devicesHash);
  }
  // Boxes the first read did not cover: those created here have no devices yet; others were created meanwhile by another replica.
  for (const box of needDevices) if (box.created) box.devices ??= new Map();
  const unread = [...needDevices].filter((box) => !box.devices);
  if (unread.length > 0) await loadDevices(client, unread);

  const events: PendingEvent[] = [];
  for (const received of batch) {
    const { report, receivedAt, address } = received;
    const box = boxes.get(report.licenseKey);
    if (!box || (received.mustExist && !exists(box))) {
      results.set(received, unknownBox(report));
      continue;
    }
    box.created = false;
    let changes = 0;
    // A box's first report (also of one an operator registered), its return after removeBox, or after silence.
    const fromStatus = box.removedAt ? 'removed' : box.lastReportAt === null ? null : box.status === 'offline' ? 'offline' : undefined;
    if (fromStatus !== undefined) {
      events.push({ box, device: null, fromStatus, toStatus: 'online', at: receivedAt });
      box.removedAt = null;
      box.status = 'online';
      box.statusSince = receivedAt;
      changes++;
    }
    if (box.devicesHash !== report.devicesHash) {
      changes += diffDevices(box, report, receivedAt, events);
      box.devicesHash = report.devicesHash;
    }
    if (box.lastReportHash !== report.rawHash) {
      box.rawChanged = true;
      box.lastReportHash = report.rawHash;
    }
    box.lastReportAt = receivedAt;
    box.reports++;
    box.report = report;
    box.address = address;
    results.set(received, applied(box.id, report, changes));
  }

  // The writes and the COMMIT go out together.
  const dirty: Array<{ box: BoxState; device: DeviceState }> = [];
  for (const box of needDevices) {
    for (const device of box.devices!.values()) if (device.dirty) dirty.push({ box, device });
  }
  const deviceRow = (d: DeviceState) => ({
    name: d.name,
    ip: d.ip,
    type: d.type,
    url: d.url,
    permission_id: d.permissionId,
    status: d.status,
    status_since: d.statusSince,
    reported_status: d.reportedStatus,
    reported_type: d.reportedType,
    updated_at: d.updatedAt,
    removed: d.removed,
  });
  const fresh = dirty.filter(({ device }) => device.id === null);
  const known = dirty.filter(({ device }) => device.id !== null);
  const upsert = fresh.length > 0
    ? pipeline.query({ name: 'ingest_upsert_devices', text: UPSERT_DEVICES, values: [JSON.stringify(fresh.map(({ box, device }) => ({ box_id: box.id, external_id: device.externalId, ...deviceRow(device) })))] })
    : undefined;
  const updateDevices = known.length > 0
    ? pipeline.query({ name: 'ingest_update_devices', text: UPDATE_DEVICES, values: [JSON.stringify(known.map(({ device }) => ({ id: device.id, ...deviceRow(device) }))), known.map(({ device }) => device.id)] })
    : undefined;

  const columns = new ReportColumns();
  const boxIds: number[] = [];
  const statuses: string[] = [];
  const statusSince: Date[] = [];
  for (const box of boxes.values()) {
    if (!box.report) continue; // every report of it was refused
    boxIds.push(box.id);
    statuses.push(box.status);
    statusSince.push(box.statusSince);
    // The stored body was read under lock above: send ours only when it differs.
    columns.add(box.report, box.lastReportAt!, box.address ?? null, box.reports, box.rawChanged ? 'whole' : 'same');
  }
  const update = boxIds.length > 0
    ? pipeline.query({ name: 'ingest_update_boxes', text: UPDATE_BOXES, values: [int4Array(boxIds), textArray(statuses), timestamptzArray(statusSince), ...columns.params()] })
    : undefined;

  // History names devices by id: a device seen for the first time has one once the upsert answers.
  if (upsert) {
    const idOf = new Map((await upsert).rows.map((r) => [`${r.box_id}\u0000${r.external_id}`, r.id as number]));
    for (const { box, device } of fresh) device.id = idOf.get(`${box.id}\u0000${device.externalId}`) ?? null;
  }
  // Last, because it serializes event writers across replicas until commit.
  const inserted = pipeline.track(
    insertStatusEvents(client, [
      ...earlierEvents,
      ...events.map((e) => ({ box_id: e.box.id, device_id: e.device?.id ?? null, from_status: e.fromStatus, to_status: e.toStatus, at: e.at })),
    ]),
  );
  const commit = pipeline.query({ text: 'commit' });
  const [, , , recorded, committed] = await Promise.all([upsert, updateDevices, update, inserted, commit]);
  // Every statement above answered without an error, so the transaction cannot have been rolled back; say so if it was.
  if (committed.command !== 'COMMIT') throw new Error(`the ingest transaction ended with ${committed.command}, not COMMIT`);
  return { events: recorded, created };
}
