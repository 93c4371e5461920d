import type pg from 'pg';
import type { BoxStatus, DeviceStatus, DeviceType } from '../db/schema';
import type { ReportWarning } from './errors';
import { insertStatusEvents, type RecordedEvent } from '../live/events-table';
import type { Report, ReportedDevice } from './report';

export type { RecordedEvent };

/** A report waiting in a batch: what arrived, when, and from where. */
export interface ReceivedReport {
  report: Report;
  receivedAt: Date;
  address: string | null;
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
  /** Set once the batch touched it: the values the final UPDATE writes. */
  reports: number;
  report?: Report;
  address?: string | null;
  rawChanged: boolean;
  devices?: Map<string, DeviceState>;
}

interface DeviceState extends ReportedDevice {
  id: number | null;
  statusSince: Date;
  firstSeenAt: Date;
  updatedAt: Date;
  removedAt: Date | null;
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
  order by license_key -- one lock order for every writer, so replicas cannot deadlock on boxes
  for no key update`;

const INSERT_BOXES = `
  insert into boxes (license_key, status, status_since, first_report_at)
  select key, 'online', $2, $2 from unnest($1::text[]) as key
  on conflict (license_key) do nothing`;

const SELECT_DEVICES = `
  select id, box_id, external_id, name, ip, type, url, permission_id, status, status_since,
         reported_status, reported_type, first_seen_at, updated_at, removed_at
  from devices where box_id = any($1::int[])`;

const UPSERT_DEVICES = `
  insert into devices (box_id, external_id, name, ip, type, url, permission_id, status, status_since,
                       reported_status, reported_type, first_seen_at, updated_at, removed_at)
  select * from jsonb_to_recordset($1::jsonb) as d(
    box_id int, external_id text, name text, ip text, type text, url text, permission_id text, status text,
    status_since timestamptz, reported_status text, reported_type text, first_seen_at timestamptz,
    updated_at timestamptz, removed_at timestamptz)
  on conflict (box_id, external_id) do update set
    name = excluded.name, ip = excluded.ip, type = excluded.type, url = excluded.url,
    permission_id = excluded.permission_id, status = excluded.status, status_since = excluded.status_since,
    reported_status = excluded.reported_status, reported_type = excluded.reported_type,
    updated_at = excluded.updated_at, removed_at = excluded.removed_at
  returning id, box_id, external_id`;

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
 * the body) are sent only when its body differs from the stored one (`last_report` not null).
 */
const REPORT_COLUMNS = `
    last_report_at = v.last_report_at,
    first_report_at = coalesce(b.first_report_at, v.last_report_at),
    address = coalesce(v.address, b.address),
    report_count = b.report_count + v.reports,
    observed_period_seconds = ${OBSERVED_PERIOD},
    last_report_hash = v.last_report_hash,
    devices_hash = v.devices_hash,
    report_format = case when v.last_report is null then b.report_format else v.report_format end,
    name = case when v.last_report is not null and v.name is not null then v.name else b.name end,
    gateway = case when v.last_report is null then b.gateway else v.gateway end,
    gateway_ext_data = case when v.last_report is null then b.gateway_ext_data else v.gateway_ext_data end`;

/** Stores the bodies sent with an update (`updated` returns id, last_report_at, last_report). */
const STORE_BODIES = `
  bodies as (
    insert into box_last_reports (box_id, received_at, body)
    select id, last_report_at, last_report::jsonb from updated where last_report is not null
    on conflict (box_id) do update set received_at = excluded.received_at, body = excluded.body)`;

const REPORT_RECORD = `
    last_report_at timestamptz, address text, reports int, last_report_hash text, devices_hash text,
    report_format text, name text, gateway jsonb, gateway_ext_data jsonb, last_report text`;

/**
 * The common case in one statement, without reading first: a box that is online and reports the
 * devices it reported last time. Rows that do not match (devices changed, box offline, new box, or
 * the body omitted but not equal to the stored one) take the full path.
 */
const UPDATE_UNCHANGED_BOXES = `
  with updated as (
    update boxes b set ${REPORT_COLUMNS}
    from jsonb_to_recordset($1::jsonb) as v(license_key text, ${REPORT_RECORD})
    where b.license_key = v.license_key and b.status = 'online' and b.removed_at is null
      and b.devices_hash = v.devices_hash
      and (v.last_report is not null or b.last_report_hash = v.last_report_hash)
    returning b.id, b.license_key, v.last_report_at, v.last_report),
  ${STORE_BODIES}
  select id, license_key from updated`;

const UPDATE_BOXES = `
  with updated as (
    update boxes b set ${REPORT_COLUMNS},
      status = v.status,
      status_since = v.status_since,
      removed_at = null
    from jsonb_to_recordset($1::jsonb) as v(id int, status text, status_since timestamptz, ${REPORT_RECORD})
    where b.id = v.id
    returning b.id, v.last_report_at, v.last_report),
  ${STORE_BODIES}
  select count(*) from updated`;

async function lockBoxes(client: pg.ClientBase, licenseKeys: string[], at: Date): Promise<Map<string, BoxState>> {
  const load = async (keys: string[]) => (await client.query({ name: 'ingest_select_boxes', text: SELECT_BOXES, values: [keys] })).rows;
  let rows = await load(licenseKeys);
  if (rows.length < licenseKeys.length) {
    const known = new Set(rows.map((r) => r.license_key as string));
    const unknown = licenseKeys.filter((key) => !known.has(key));
    await client.query({ name: 'ingest_insert_boxes', text: INSERT_BOXES, values: [unknown, at] });
    rows = rows.concat(await load(unknown));
  }
  const boxes = new Map<string, BoxState>();
  for (const r of rows) {
    boxes.set(r.license_key, {
      id: r.id,
      licenseKey: r.license_key,
      status: r.status,
      statusSince: r.status_since,
      lastReportAt: r.last_report_at,
      removedAt: r.removed_at,
      lastReportHash: r.last_report_hash,
      devicesHash: r.devices_hash,
      reports: 0,
      rawChanged: false,
    });
  }
  return boxes;
}

async function loadDevices(client: pg.ClientBase, boxes: BoxState[]): Promise<void> {
  for (const box of boxes) box.devices = new Map();
  const byId = new Map(boxes.map((box) => [box.id, box]));
  const { rows } = await client.query({ name: 'ingest_select_devices', text: SELECT_DEVICES, values: [[...byId.keys()]] });
  for (const r of rows) {
    byId.get(r.box_id)!.devices!.set(r.external_id, {
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
      firstSeenAt: r.first_seen_at,
      updatedAt: r.updated_at,
      removedAt: r.removed_at,
      dirty: false,
    });
  }
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
      const device: DeviceState = { ...reported, id: null, statusSince: at, firstSeenAt: at, updatedAt: at, removedAt: null, dirty: true };
      devices.set(reported.externalId, device);
      record(device, null, reported.status);
      continue;
    }
    const fieldsChanged = SAME_FIELDS.some((field) => current[field] !== reported[field]);
    if (current.removedAt) {
      record(current, 'removed', reported.status);
      current.removedAt = null;
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
    if (device.removedAt || listed.has(device.externalId)) continue;
    record(device, device.status, 'removed');
    Object.assign(device, { removedAt: at, statusSince: at, updatedAt: at, dirty: true });
  }
  return changes;
}

/** What the store remembers between batches: the body hash it last stored per box, to avoid resending equal bodies. */
export type StoredBodies = Map<string, string>;

/** A report's fields for the box updates; the body only when it differs from the one stored. */
function reportRecord(report: Report, at: Date, address: string | null, reports: number, sendBody: boolean) {
  return {
    last_report_at: at,
    address,
    reports,
    last_report_hash: report.rawHash,
    devices_hash: report.devicesHash,
    report_format: report.format,
    name: report.boxName,
    gateway: report.gateway,
    gateway_ext_data: report.gatewayExtData,
    last_report: sendBody ? report.rawJson : null,
  };
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
 * 1. reports of online boxes whose device list is unchanged: one conditional UPDATE, no reads, in
 *    its own implicit transaction (it commits before anything below);
 * 2. the rest, in one transaction: lock their boxes (creating new ones), diff device lists against the stored ones, and write devices,
 *    boxes and history with one multi-row statement each.
 * `stored` holds the body hash last stored per box (this process's view; a stale entry only costs
 * the slow path). If step 2 fails after step 1 committed, a PartlyAppliedError says which are stored.
 */
export async function applyReports(
  client: pg.ClientBase,
  batch: ReceivedReport[],
  stored: StoredBodies,
): Promise<{ applied: AppliedReport[]; events: RecordedEvent[] }> {
  const results = new Map<ReceivedReport, AppliedReport>();
  const perBox = new Map<string, number>();
  for (const { report } of batch) perBox.set(report.licenseKey, (perBox.get(report.licenseKey) ?? 0) + 1);

  // 1. The common case. A box reporting twice in one batch takes the full path, which orders them.
  const single = batch.filter((r) => perBox.get(r.report.licenseKey) === 1);
  if (single.length > 0) {
    const rows = single.map(({ report, receivedAt, address }) => ({
      license_key: report.licenseKey,
      ...reportRecord(report, receivedAt, address, 1, stored.get(report.licenseKey) !== report.rawHash),
    }));
    const { rows: updated } = await client.query({ name: 'ingest_update_unchanged_boxes', text: UPDATE_UNCHANGED_BOXES, values: [JSON.stringify(rows)] });
    const ids = new Map<string, number>(updated.map((r) => [r.license_key, r.id]));
    for (const received of single) {
      const id = ids.get(received.report.licenseKey);
      if (id !== undefined) results.set(received, applied(id, received.report, 0));
    }
  }

  // 2. Everything else.
  const rest = batch.filter((r) => !results.has(r));
  let recorded: RecordedEvent[] = [];
  if (rest.length > 0) {
    const committed = new Map(results);
    try {
      await client.query('begin');
      recorded = await applyChanges(client, rest, results);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw committed.size > 0 ? new PartlyAppliedError(error, committed) : error;
    }
  }
  return { applied: batch.map((r) => results.get(r)!), events: recorded };
}

async function applyChanges(
  client: pg.ClientBase,
  batch: ReceivedReport[],
  results: Map<ReceivedReport, AppliedReport>,
): Promise<RecordedEvent[]> {
  const at = batch[batch.length - 1]!.receivedAt;
  const keys = [...new Set(batch.map((r) => r.report.licenseKey))].sort();
  const boxes = await lockBoxes(client, keys, at);

  // Devices are read only for boxes whose device list changed since the stored one.
  const needDevices = new Set<BoxState>();
  const hashAfter = new Map<BoxState, string | null>();
  for (const { report } of batch) {
    const box = boxes.get(report.licenseKey)!;
    const previous = hashAfter.has(box) ? hashAfter.get(box) : box.devicesHash;
    if (previous !== report.devicesHash) needDevices.add(box);
    hashAfter.set(box, report.devicesHash);
  }
  if (needDevices.size > 0) await loadDevices(client, [...needDevices]);

  const events: PendingEvent[] = [];
  for (const received of batch) {
    const { report, receivedAt, address } = received;
    const box = boxes.get(report.licenseKey)!;
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

  const dirty: Array<{ box: BoxState; device: DeviceState }> = [];
  for (const box of needDevices) {
    for (const device of box.devices!.values()) if (device.dirty) dirty.push({ box, device });
  }
  if (dirty.length > 0) {
    const rows = dirty.map(({ box, device: d }) => ({
      box_id: box.id,
      external_id: d.externalId,
      name: d.name,
      ip: d.ip,
      type: d.type,
      url: d.url,
      permission_id: d.permissionId,
      status: d.status,
      status_since: d.statusSince,
      reported_status: d.reportedStatus,
      reported_type: d.reportedType,
      first_seen_at: d.firstSeenAt,
      updated_at: d.updatedAt,
      removed_at: d.removedAt,
    }));
    const result = await client.query({ name: 'ingest_upsert_devices', text: UPSERT_DEVICES, values: [JSON.stringify(rows)] });
    const idOf = new Map(result.rows.map((r) => [`${r.box_id}\u0000${r.external_id}`, r.id as number]));
    for (const { box, device } of dirty) device.id = idOf.get(`${box.id}\u0000${device.externalId}`) ?? null;
  }

  const boxRows = [...boxes.values()].map((box) => ({
    id: box.id,
    status: box.status,
    status_since: box.statusSince,
    // The stored body was read under lock above: send ours only when it differs.
    ...reportRecord(box.report!, box.lastReportAt!, box.address ?? null, box.reports, box.rawChanged),
  }));
  await client.query({ name: 'ingest_update_boxes', text: UPDATE_BOXES, values: [JSON.stringify(boxRows)] });

  // Last, because it serializes event writers across replicas until commit.
  return insertStatusEvents(
    client,
    events.map((e) => ({ box_id: e.box.id, device_id: e.device?.id ?? null, from_status: e.fromStatus, to_status: e.toStatus, at: e.at })),
  );
}
