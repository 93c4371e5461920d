import { describe, expect, it } from 'vitest';
import { devicesHash, hashBody, type Report, type ReportedDevice } from '../../src/ingest/report';
import { applyReport, devicesToWrite, diffDevices, type BoxState, type DeviceState } from '../../src/ingest/store/diff';

// The store's diff on its own: states in, states and history out, no database.

const T0 = new Date('2026-03-01T00:00:00Z');
const T1 = new Date('2026-03-01T00:01:00Z');
const STORED_SINCE = '2026-02-01 10:00:00.123456+00'; // as Postgres prints it, microseconds and all

function reported(externalId: string, status: 'online' | 'offline' = 'online', name: string | null = externalId): ReportedDevice {
  return { externalId, name, ip: null, type: 'rtsp', url: null, permissionId: null, status, reportedStatus: null, reportedType: null };
}

function stored(device: ReportedDevice, id: number, removed = false): DeviceState {
  return { ...device, id, statusSince: STORED_SINCE, removed, changedAt: null };
}

function storedList(...devices: DeviceState[]): Map<string, DeviceState> {
  return new Map(devices.map((d) => [d.externalId, d]));
}

function report(devices: ReportedDevice[], body = JSON.stringify(devices)): Report {
  const rawBody = Buffer.from(body);
  return { licenseKey: 'DIFF-01', format: 'new', devices, gateway: null, gatewayExtData: null, boxName: null, rawBody, rawHash: hashBody(rawBody), devicesHash: devicesHash(devices), warnings: [] };
}

function box(overrides: Partial<BoxState> = {}): BoxState {
  return {
    id: 7,
    licenseKey: 'DIFF-01',
    status: 'online',
    statusSince: T0,
    lastReportAt: T0,
    removedAt: null,
    lastReportHash: 'stored-body',
    devicesHash: 'stored-list',
    created: false,
    reports: 0,
    bodyChanged: false,
    ...overrides,
  };
}

const history = (changes: Array<{ externalId: string | null; from: string | null; to: string }>) =>
  changes.map((c) => `${c.externalId ?? 'box'}: ${c.from} → ${c.to}`);

describe('diffDevices', () => {
  it('adds a device seen for the first time, with no id yet, and its first sighting', () => {
    const { devices, changes } = diffDevices(storedList(), [reported('cam-1')], T1);
    expect(devices.get('cam-1')).toMatchObject({ id: null, status: 'online', statusSince: T1, removed: false, changedAt: T1 });
    expect(history(changes)).toEqual(['cam-1: null → online']);
  });

  it('marks a device missing from the list removed, keeping the rest of its row', () => {
    const before = storedList(stored(reported('cam-1'), 1), stored(reported('cam-2', 'offline'), 2));
    const { devices, changes } = diffDevices(before, [reported('cam-1')], T1);
    expect(devices.get('cam-2')).toMatchObject({ id: 2, status: 'offline', removed: true, statusSince: T1, changedAt: T1 });
    expect(devices.get('cam-1')).toBe(before.get('cam-1')); // untouched: not written
    expect(history(changes)).toEqual(['cam-2: offline → removed']);
  });

  it('records a status change and sets its time; a field change keeps the stored time to the microsecond', () => {
    const before = storedList(stored(reported('cam-1'), 1), stored(reported('cam-2'), 2));
    const { devices, changes } = diffDevices(before, [reported('cam-1', 'offline'), reported('cam-2', 'online', 'front door')], T1);
    expect(devices.get('cam-1')).toMatchObject({ status: 'offline', statusSince: T1, changedAt: T1 });
    expect(devices.get('cam-2')).toMatchObject({ name: 'front door', statusSince: STORED_SINCE, changedAt: T1 });
    expect(history(changes)).toEqual(['cam-1: online → offline']); // a renamed device makes no history
  });

  it('brings a removed device back, from "removed", under the same id', () => {
    const { devices, changes } = diffDevices(storedList(stored(reported('cam-1', 'offline'), 1, true)), [reported('cam-1', 'offline')], T1);
    expect(devices.get('cam-1')).toMatchObject({ id: 1, removed: false, status: 'offline', statusSince: T1, changedAt: T1 });
    expect(history(changes)).toEqual(['cam-1: removed → offline']);
  });

  it('leaves a removed device that stays missing alone', () => {
    const before = storedList(stored(reported('cam-1'), 1, true));
    const { devices, changes } = diffDevices(before, [], T1);
    expect(devices.get('cam-1')).toBe(before.get('cam-1'));
    expect(changes).toEqual([]);
  });

  it('changes nothing for the same list, in any order', () => {
    const before = storedList(stored(reported('cam-1'), 1), stored(reported('cam-2', 'offline'), 2));
    const { devices, changes } = diffDevices(before, [reported('cam-2', 'offline'), reported('cam-1')], T1);
    expect(changes).toEqual([]);
    expect([...devices.values()].every((d) => d.changedAt === null)).toBe(true);
  });

  it('refuses a list with the same device id twice (normalizeReport answers it with DUPLICATE_DEVICE_ID)', () => {
    expect(() => diffDevices(storedList(), [reported('cam-1'), reported('cam-1', 'offline')], T1)).toThrow(/listed twice/);
  });

  it('does not change the states it is given', () => {
    const device = Object.freeze(stored(reported('cam-1'), 1));
    const before = storedList(device);
    diffDevices(before, [reported('cam-1', 'offline'), reported('cam-2')], T1);
    expect([...before.values()]).toEqual([device]);
    expect(device).toMatchObject({ status: 'online', changedAt: null });
  });
});

describe('applyReport', () => {
  it('brings a box online at its first report, after silence, or after removal', () => {
    const devices = storedList();
    const list = report([]);
    const first = applyReport(box({ lastReportAt: null, devicesHash: list.devicesHash, devices }), list, T1, null);
    expect(history(first.changes)).toEqual(['box: null → online']);
    const silent = applyReport(box({ status: 'offline', devicesHash: list.devicesHash }), list, T1, null);
    expect(silent.box).toMatchObject({ status: 'online', statusSince: T1 });
    expect(history(silent.changes)).toEqual(['box: offline → online']);
    const removed = applyReport(box({ removedAt: T0, devicesHash: list.devicesHash }), list, T1, null);
    expect(removed.box).toMatchObject({ removedAt: null, status: 'online' });
    expect(history(removed.changes)).toEqual(['box: removed → online']);
  });

  it('changes nothing but the report times for an unchanged report of an online box', () => {
    const same = report([reported('cam-1')]);
    const before = box({ devicesHash: same.devicesHash, lastReportHash: same.rawHash });
    const { box: after, changes } = applyReport(before, same, T1, '10.0.0.9');
    expect(changes).toEqual([]);
    expect(after).toMatchObject({ status: 'online', statusSince: T0, lastReportAt: T1, reports: 1, bodyChanged: false, lastReport: { report: same, address: '10.0.0.9' } });
    expect(after.devices).toBeUndefined(); // not needed, not read
  });

  it('diffs the devices when the list changed, and refuses to guess when they were not read', () => {
    const next = report([reported('cam-1', 'offline')]);
    const before = box({ devices: storedList(stored(reported('cam-1'), 1)) });
    const { box: after, changes } = applyReport(before, next, T1, null);
    expect(history(changes)).toEqual(['cam-1: online → offline']);
    expect(after.devicesHash).toBe(next.devicesHash);
    expect(devicesToWrite(after)).toEqual({ added: [], changed: [after.devices!.get('cam-1')] });
    expect(() => applyReport(box(), next, T1, null)).toThrow(/were not read/);
  });

  it('keeps a body change and each device change of earlier reports in the batch', () => {
    const first = report([reported('cam-1', 'offline')], 'first');
    const second = report([reported('cam-1', 'offline'), reported('cam-2')], 'second');
    const third = report([reported('cam-1', 'offline'), reported('cam-2')], 'second');
    let state = box({ devices: storedList(stored(reported('cam-1'), 1)) });
    state = applyReport(state, first, T0, null).box;
    state = applyReport(state, second, T1, null).box;
    state = applyReport({ ...state, lastReportHash: third.rawHash }, third, T1, null).box;
    expect(state).toMatchObject({ reports: 3, bodyChanged: true });
    const { added, changed } = devicesToWrite(state);
    expect(added.map((d) => [d.externalId, d.changedAt])).toEqual([['cam-2', T1]]);
    expect(changed.map((d) => [d.externalId, d.changedAt])).toEqual([['cam-1', T0]]);
  });
});
