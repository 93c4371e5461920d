import type { BoxStatus } from '../../db/schema';
import type { Report, ReportedDevice } from '../report';

/**
 * What one report changes in its box, as a pure function of the box as stored (and as the batch's
 * earlier reports left it) and the report: no database, no clock, inputs never mutated. The store
 * reads the states, applies its batch's reports here in order, and writes what changed.
 */

/** A timestamp as Postgres gave it (text, written back unchanged so no microsecond is lost) or as a report set it. */
export type Timestamp = Date | string;

/** A device as stored, and as the batch's reports leave it. */
export interface DeviceState extends ReportedDevice {
  /** Null for a device first seen in this batch: its insert gives it one. */
  id: number | null;
  statusSince: Timestamp;
  /** Gone from its box's list; its row and history are kept. */
  removed: boolean;
  /** When a report of this batch changed it last (its row is then written with this time); null: as stored. */
  changedAt: Date | null;
}

/** A box as stored, and as the batch's reports leave it. */
export interface BoxState {
  id: number;
  licenseKey: string;
  status: BoxStatus;
  statusSince: Date;
  lastReportAt: Date | null;
  /** Removed by an operator (history kept); a report brings it back. */
  removedAt: Date | null;
  lastReportHash: string | null;
  devicesHash: string | null;
  /** Its devices by external id: read only for a box whose device list changed. */
  devices?: ReadonlyMap<string, DeviceState>;
  /** Inserted by this batch and not reported to yet: to a report that must find its box, it does not exist. */
  created: boolean;
  /** How many of the batch's reports were applied to it. */
  reports: number;
  /** The last of them, and the address it came from: what the box update writes. */
  lastReport?: { report: Report; address: string | null };
  /** Its last report's body differs from the stored one, so the update writes it. */
  bodyChanged: boolean;
}

/** A change of status, of the box (`externalId` null) or of one of its devices: one history row. */
export interface StatusChange {
  externalId: string | null;
  /** Null for a first sighting. */
  from: string | null;
  to: string;
  at: Date;
}

/** Fields whose change rewrites a device's row without a status change (and without history). */
const DESCRIPTIVE_FIELDS = ['name', 'ip', 'type', 'url', 'permissionId', 'reportedStatus', 'reportedType'] as const;

/**
 * The box after `report`, received at `at` from `address`, and the history it makes. A box comes
 * online when it reports for the first time, after silence (offline) or after removeBox. Its devices
 * must have been read when the report's device list differs from the stored one.
 */
export function applyReport(box: BoxState, report: Report, at: Date, address: string | null): { box: BoxState; changes: StatusChange[] } {
  const next: BoxState = { ...box, created: false, reports: box.reports + 1, lastReportAt: at, lastReport: { report, address } };
  const changes: StatusChange[] = [];
  const from = box.removedAt !== null ? 'removed' : box.lastReportAt === null ? null : box.status === 'offline' ? 'offline' : undefined;
  if (from !== undefined) {
    changes.push({ externalId: null, from, to: 'online', at });
    Object.assign(next, { removedAt: null, status: 'online', statusSince: at });
  }
  if (box.devicesHash !== report.devicesHash) {
    if (!box.devices) throw new Error(`the devices of box ${box.id} were not read, though its device list changed`);
    const diff = diffDevices(box.devices, report.devices, at);
    next.devices = diff.devices;
    next.devicesHash = report.devicesHash;
    changes.push(...diff.changes);
  }
  if (box.lastReportHash !== report.rawHash) {
    // Stays set for the batch: the stored body is still the one before it.
    next.bodyChanged = true;
    next.lastReportHash = report.rawHash;
  }
  return { box: next, changes };
}

/**
 * A box's devices after a report lists `reported`: new ones added, listed ones updated (back from
 * removal, status or descriptive fields changed), unlisted ones marked removed. A status change
 * (including first sighting, removal and re-appearance) sets `statusSince` and makes history.
 */
export function diffDevices(
  stored: ReadonlyMap<string, DeviceState>,
  reported: readonly ReportedDevice[],
  at: Date,
): { devices: Map<string, DeviceState>; changes: StatusChange[] } {
  const devices = new Map(stored);
  const changes: StatusChange[] = [];
  const listed = new Set<string>();
  for (const device of reported) {
    const { externalId } = device;
    // normalizeReport refuses such a report (DUPLICATE_DEVICE_ID): which of the two would be meant?
    if (listed.has(externalId)) throw new Error(`device ${JSON.stringify(externalId)} is listed twice`);
    listed.add(externalId);
    const current = devices.get(externalId);
    if (!current) {
      devices.set(externalId, { ...device, id: null, statusSince: at, removed: false, changedAt: at });
      changes.push({ externalId, from: null, to: device.status, at });
      continue;
    }
    let statusSince = current.statusSince;
    if (current.removed || current.status !== device.status) {
      changes.push({ externalId, from: current.removed ? 'removed' : current.status, to: device.status, at });
      statusSince = at;
    } else if (DESCRIPTIVE_FIELDS.every((field) => current[field] === device[field])) {
      continue;
    }
    devices.set(externalId, { ...current, ...device, statusSince, removed: false, changedAt: at });
  }
  for (const device of stored.values()) {
    if (device.removed || listed.has(device.externalId)) continue;
    devices.set(device.externalId, { ...device, removed: true, statusSince: at, changedAt: at });
    changes.push({ externalId: device.externalId, from: device.status, to: 'removed', at });
  }
  return { devices, changes };
}

/** The devices a batch must write: those its reports changed, new ones (no id yet) apart. */
export function devicesToWrite(box: BoxState): { added: DeviceState[]; changed: DeviceState[] } {
  const added: DeviceState[] = [];
  const changed: DeviceState[] = [];
  for (const device of box.devices?.values() ?? []) {
    if (device.changedAt === null) continue;
    (device.id === null ? added : changed).push(device);
  }
  return { added, changed };
}
