import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReportError } from '../../src/ingest/errors';
import { maskLicenseKey } from '../../src/ingest/license-key';
import { normalizeReport } from '../../src/ingest/report';
import type { AppliedReport, ReceivedReport } from '../../src/ingest/store/outcome';
import type { ReportWriter } from '../../src/ingest/writer';
import { registerBox, removeBox } from '../../src/models/box-admin';
import { startWriter, type TestWriter } from '../helpers/writer';

// INGEST_POLICY=registered, at the store: a report with `mustExist` is refused, exactly and without a
// cache, when its box has no row or was removed; its batch neighbours are applied as usual.

let pool: pg.Pool;
let writer: ReportWriter;
/** Sizes of the batches the writer committed, re-runs included. */
let batches: number[];
let setup: TestWriter | undefined;

beforeAll(async () => {
  setup = await startWriter();
  ({ pool, writer, batches } = setup);
});
afterAll(() => setup?.close());

const newer = (key: string, devices = ['cam-1', 'cam-2']) => ({
  mq_license_key: key,
  media_devices: devices.map((id) => ({ media_device_id: id, media_device_status: 'online', media_device_type: 'rtsp' })),
});
const older = (key: string) => ({
  dev_sno: key,
  gateway_name: 'north gate',
  sub_devices: [{ ep_id: `${key}__10.0.0.1`, ep_ip: '10.0.0.1', ep_status: 'online', ep_type: 'photo' }],
});

function received(body: object, mustExist: boolean): ReceivedReport {
  const text = JSON.stringify(body);
  const report = normalizeReport(JSON.parse(text), Buffer.from(text), { maxDevices: 4096 }, [], text, false);
  return { report, receivedAt: new Date(), address: '10.9.8.7', mustExist };
}

/** Submits the reports together (one batch) and settles each. */
async function writeTogether(reports: ReceivedReport[]): Promise<Array<AppliedReport | ReportError>> {
  batches.length = 0;
  const settled = await Promise.allSettled(reports.map((r) => writer.write(r)));
  return settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as ReportError)));
}

async function boxRow(key: string) {
  return (await pool.query('select * from boxes where license_key = $1', [key])).rows[0];
}

/** Everything stored about a licence key, to show a refused report left nothing. */
async function storedFor(key: string) {
  const { rows } = await pool.query(
    `select (select count(*)::int from boxes where license_key = $1) as boxes,
            (select count(*)::int from devices d join boxes b on b.id = d.box_id where b.license_key = $1) as devices,
            (select count(*)::int from status_events e join boxes b on b.id = e.box_id where b.license_key = $1) as events,
            (select count(*)::int from box_last_reports r join boxes b on b.id = r.box_id where b.license_key = $1) as bodies`,
    [key],
  );
  return rows[0];
}

function expectUnknownBox(result: AppliedReport | ReportError, key: string, path: 'mq_license_key' | 'dev_sno') {
  expect(result).toBeInstanceOf(ReportError);
  const error = result as ReportError;
  expect(error.toJSON()).toEqual({
    error: {
      code: 'UNKNOWN_BOX',
      message: `Licence key ${maskLicenseKey(key)} is not registered; register the box (registerBox) before it reports.`,
      path,
    },
  });
  expect(error.status).toBe(403);
  expect(error.message).not.toContain(key);
}

describe('maskLicenseKey', () => {
  it('keeps the first 4 and the last 2 characters', () => {
    expect(maskLicenseKey('SE5NORTHGATE0001')).toBe('SE5N…01');
    expect(maskLicenseKey('ZKZCPI000120190807142601')).toBe('ZKZC…01');
  });
});

describe('reports that must find their box', () => {
  it('refuses unknown and removed boxes exactly, applies the rest of the batch, stores nothing of the refused', async () => {
    const registered = await registerBox(pool, { licenseKey: 'REG-KNOWN-0001', name: 'north gate', apiAddress: null, apiPort: null });
    expect(registered.kind).toBe('registered');

    // A box that reported once and was then removed by an operator (history kept).
    const [gone] = await writeTogether([received(newer('REG-REMOVED-01'), false)]);
    const goneId = (gone as AppliedReport).boxId;
    expect((await removeBox(pool, goneId, false)).kind).toBe('removed');
    const goneBefore = await boxRow('REG-REMOVED-01');
    const goneStoredBefore = await storedFor('REG-REMOVED-01');

    const results = await writeTogether([
      received(newer('REG-KNOWN-0001'), true),
      received(newer('REG-UNKNOWN-01'), true),
      received(older('REG-UNKNOWN-OLD-1'), true),
      received(newer('REG-REMOVED-01', ['cam-1', 'cam-9']), true),
      received(newer('OPEN-NEW-00001'), false),
    ]);
    expect(batches).toEqual([5]); // one batch, no re-run one by one

    const known = results[0] as AppliedReport;
    expect(known).not.toBeInstanceOf(Error);
    expect(known.boxId).toBe(registered.kind === 'registered' ? registered.box.id : -1);
    expect(known.changes).toBe(3); // the box comes online, two devices first seen
    expect(await storedFor('REG-KNOWN-0001')).toEqual({ boxes: 1, devices: 2, events: 3, bodies: 1 });
    expect(await boxRow('REG-KNOWN-0001')).toMatchObject({ status: 'online', report_count: 1, name: 'north gate', address: '10.9.8.7' });

    expectUnknownBox(results[1]!, 'REG-UNKNOWN-01', 'mq_license_key');
    expect(await storedFor('REG-UNKNOWN-01')).toEqual({ boxes: 0, devices: 0, events: 0, bodies: 0 });
    expectUnknownBox(results[2]!, 'REG-UNKNOWN-OLD-1', 'dev_sno');
    expect(await storedFor('REG-UNKNOWN-OLD-1')).toEqual({ boxes: 0, devices: 0, events: 0, bodies: 0 });

    expectUnknownBox(results[3]!, 'REG-REMOVED-01', 'mq_license_key');
    expect(await boxRow('REG-REMOVED-01')).toEqual(goneBefore);
    expect(await storedFor('REG-REMOVED-01')).toEqual(goneStoredBefore);

    // Without mustExist (INGEST_POLICY=open) a first report still registers its box.
    expect(results[4]).not.toBeInstanceOf(Error);
    expect(await storedFor('OPEN-NEW-00001')).toEqual({ boxes: 1, devices: 2, events: 3, bodies: 1 });
  });

  it('accepts a registered box on the one-statement path too (its device list unchanged)', async () => {
    await registerBox(pool, { licenseKey: 'REG-FAST-00001', name: null, apiAddress: null, apiPort: null });
    const [first] = await writeTogether([received(newer('REG-FAST-00001'), true)]);
    expect(first).not.toBeInstanceOf(Error);
    const [second] = await writeTogether([received(newer('REG-FAST-00001'), true)]);
    expect(second).toMatchObject({ boxId: (first as AppliedReport).boxId, changes: 0 });
    expect(await boxRow('REG-FAST-00001')).toMatchObject({ report_count: 2 });
  });

  it('refuses a removed box on either path, and again after a later report of the same batch', async () => {
    const [first] = await writeTogether([received(newer('REG-REMOVED-02'), false)]);
    await removeBox(pool, (first as AppliedReport).boxId, false);
    // The same device list (the one-statement path's case), then a changed one (the full path's).
    const [same] = await writeTogether([received(newer('REG-REMOVED-02'), true)]);
    expectUnknownBox(same!, 'REG-REMOVED-02', 'mq_license_key');
    const [changed] = await writeTogether([received(newer('REG-REMOVED-02', ['cam-3']), true)]);
    expectUnknownBox(changed!, 'REG-REMOVED-02', 'mq_license_key');
    expect(await boxRow('REG-REMOVED-02')).toMatchObject({ report_count: 1 });
    expect((await boxRow('REG-REMOVED-02')).removed_at).not.toBeNull();
  });

  it('applies a batch in order: a box exists for a report only once an earlier one created it', async () => {
    const results = await writeTogether([
      received(newer('REG-ORDER-0001'), true), // refused: nothing created it yet
      received(newer('REG-ORDER-0001'), false), // creates it
      received(newer('REG-ORDER-0001', ['cam-1']), true), // finds it
    ]);
    expect(batches).toEqual([3]);
    expectUnknownBox(results[0]!, 'REG-ORDER-0001', 'mq_license_key');
    expect(results[1]).toMatchObject({ changes: 3 });
    expect(results[2]).toMatchObject({ boxId: (results[1] as AppliedReport).boxId, changes: 1 }); // cam-2 removed
    expect(await boxRow('REG-ORDER-0001')).toMatchObject({ report_count: 2 });
  });

  it('refuses every report of a new key when all of them must find their box', async () => {
    const results = await writeTogether([received(newer('REG-NEVER-0001'), true), received(newer('REG-NEVER-0001', ['x']), true)]);
    expectUnknownBox(results[0]!, 'REG-NEVER-0001', 'mq_license_key');
    expectUnknownBox(results[1]!, 'REG-NEVER-0001', 'mq_license_key');
    expect(await storedFor('REG-NEVER-0001')).toEqual({ boxes: 0, devices: 0, events: 0, bodies: 0 });
  });
});
