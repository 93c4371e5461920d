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
  observedPeriodSeconds: number | null;
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

// Intervals outside this range say nothing about the configured period (bursts, outages).
const MIN_PERIOD_SAMPLE_S = 0.5;
const MAX_PERIOD_SAMPLE_S = 3600;

const SELECT_BOXES = `
  select id, license_key, status, status_since, last_report_at, observed_period_seconds, last_report_hash, devices_hash
  from boxes where license_key = any($1::text[])
  order by license_key
  for update`;

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

// Box fields from the report (format, name, gateway data, raw body) are written only when the body changed.
const UPDATE_BOXES = `
  update boxes b set
    last_report_at = v.last_report_at,
    first_report_at = coalesce(b.first_report_at, v.last_report_at),
    address = coalesce(v.address, b.address),
    report_count = b.report_count + v.reports,
    status = v.status,
    status_since = v.status_since,
    observed_period_seconds = v.observed_period_seconds,
    last_report_hash = v.last_report_hash,
    devices_hash = v.devices_hash,
    report_format = case when v.raw_changed then v.report_format else b.report_format end,
    name = case when v.raw_changed and v.name is not null then v.name else b.name end,
    gateway = case when v.raw_changed then v.gateway else b.gateway end,
    gateway_ext_data = case when v.raw_changed then v.gateway_ext_data else b.gateway_ext_data end,
    last_report = case when v.raw_changed then v.last_report else b.last_report end
  from jsonb_to_recordset($1::jsonb) as v(
    id int, last_report_at timestamptz, address text, reports int, status text, status_since timestamptz,
    observed_period_seconds real, last_report_hash text, devices_hash text, raw_changed boolean,
    report_format text, name text, gateway jsonb, gateway_ext_data jsonb, last_report jsonb)
  where b.id = v.id`;

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
      observedPeriodSeconds: r.observed_period_seconds,
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

function observePeriod(box: BoxState, at: Date): void {
  if (!box.lastReportAt) return;
  const seconds = (at.getTime() - box.lastReportAt.getTime()) / 1000;
  if (seconds < MIN_PERIOD_SAMPLE_S || seconds > MAX_PERIOD_SAMPLE_S) return;
  // Smoothed, so one late report does not swing offline detection.
  box.observedPeriodSeconds = box.observedPeriodSeconds === null ? seconds : box.observedPeriodSeconds * 0.8 + seconds * 0.2;
}

/**
 * Applies a batch of reports in one transaction that the caller opened and commits: locks the
 * batch's boxes (creating new ones), diffs device lists only where their hash changed, and writes
 * devices, boxes and history with one multi-row statement each. Reports are applied in order.
 */
export async function applyReports(
  client: pg.ClientBase,
  batch: ReceivedReport[],
): Promise<{ applied: AppliedReport[]; events: RecordedEvent[] }> {
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
  const applied: AppliedReport[] = [];
  for (const { report, receivedAt, address } of batch) {
    const box = boxes.get(report.licenseKey)!;
    let changes = 0;
    if (box.lastReportAt === null) {
      events.push({ box, device: null, fromStatus: null, toStatus: 'online', at: receivedAt });
      changes++;
    } else if (box.status === 'offline') {
      events.push({ box, device: null, fromStatus: 'offline', toStatus: 'online', at: receivedAt });
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
    observePeriod(box, receivedAt);
    box.lastReportAt = receivedAt;
    box.reports++;
    box.report = report;
    box.address = address;
    applied.push({
      boxId: box.id,
      licenseKey: box.licenseKey,
      format: report.format,
      devices: report.devices.length,
      changes,
      warnings: report.warnings,
    });
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

  const touched = [...boxes.values()].filter((box) => box.reports > 0);
  const boxRows = touched.map((box) => ({
    id: box.id,
    last_report_at: box.lastReportAt,
    address: box.address,
    reports: box.reports,
    status: box.status,
    status_since: box.statusSince,
    observed_period_seconds: box.observedPeriodSeconds,
    last_report_hash: box.lastReportHash,
    devices_hash: box.devicesHash,
    raw_changed: box.rawChanged,
    report_format: box.report!.format,
    name: box.report!.boxName,
    gateway: box.report!.gateway,
    gateway_ext_data: box.report!.gatewayExtData,
    last_report: box.report!.raw,
  }));
  await client.query({ name: 'ingest_update_boxes', text: UPDATE_BOXES, values: [JSON.stringify(boxRows)] });

  // Last, because it serializes event writers across replicas until commit.
  const recorded = await insertStatusEvents(
    client,
    events.map((e) => ({ box_id: e.box.id, device_id: e.device?.id ?? null, from_status: e.fromStatus, to_status: e.toStatus, at: e.at })),
  );
  return { applied, events: recorded };
}
