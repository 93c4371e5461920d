import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { lastReportsByBoxIds } from '../../src/models/boxes';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';

// Two gateways on one database, both receiving reports of the same boxes at the same moments: their
// batches lock the same box rows, in one transaction per batch, and may deadlock; Postgres breaks a
// deadlock and the writer retries. Nothing may be lost or applied twice.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let a: TestGateway;
let b: TestGateway;

beforeAll(async () => {
  database = await createTestDatabase();
  a = await startGateway({}, database.url);
  b = await startGateway({}, database.url);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
});

const BOXES = 30;
const DEVICES = 4;
const ROUNDS = 12;

/**
 * Box i changes in the rounds r where (i + r) % 3 is 0: its device cam-0 flips. In the other rounds
 * it reports what it reported before, so each batch mixes unchanged boxes (one-statement update) and
 * changed ones (row locks, diff, history) in its one transaction.
 */
function report(box: number, round: number) {
  let flips = 0;
  for (let r = 0; r <= round; r++) if ((box + r) % 3 === 0) flips++;
  return {
    mq_license_key: `REPLICA-${String(box).padStart(2, '0')}`,
    media_devices: Array.from({ length: DEVICES }, (_, d) => ({
      media_device_id: `cam-${d}`,
      media_device_status: d === 0 && flips % 2 === 1 ? 'offline' : 'online',
      media_device_type: 'rtsp',
    })),
  };
}

it('both replicas store every report of the same boxes, sent to both at once, with history that chains', async () => {
  let acknowledged = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // The same report to both replicas: whichever commits last, the stored state is this round's.
    const answers = await Promise.all(
      Array.from({ length: BOXES }, (_, box) => [postReport(a.url, report(box, round)), postReport(b.url, report(box, round))]).flat(),
    );
    expect(answers.filter((x) => x.status !== 200).map((x) => [x.status, x.text])).toEqual([]);
    acknowledged += answers.length;
  }

  const { rows: counts } = await a.sql.query(`select sum(report_count)::int as reports, count(*)::int as boxes from boxes where license_key like 'REPLICA-%'`);
  expect(counts[0]).toEqual({ reports: acknowledged, boxes: BOXES });

  const last = ROUNDS - 1;
  const { rows: devices } = await a.sql.query(
    `select b.license_key, d.external_id, d.status from devices d join boxes b on b.id = d.box_id
     where b.license_key like 'REPLICA-%' order by 1, 2`,
  );
  expect(devices).toEqual(
    Array.from({ length: BOXES }, (_, box) =>
      report(box, last).media_devices.map((d) => ({ license_key: report(box, last).mq_license_key, external_id: d.media_device_id, status: d.media_device_status })),
    ).flat(),
  );

  // Every device's history chains: each change starts from the status the one before it ended in.
  const { rows: broken } = await a.sql.query(
    `select * from (
       select e.device_id, e.from_status, lag(e.to_status) over (partition by e.device_id order by e.id) as before
       from status_events e join boxes b on b.id = e.box_id
       where b.license_key like 'REPLICA-%' and e.device_id is not null) h
     where from_status is distinct from before`,
  );
  expect(broken).toEqual([]);
}, 60_000);

/**
 * An older box's body changes at every report (its health figures). Each replica skips writing a body
 * it knows to be the stored one (CommittedHashes), which it cannot know of another replica's reports:
 * the database checks it, so the stored body is always the last one sent.
 */
it('serves the last body of an older box as sent, whichever replica stored it', async () => {
  const licenseKey = 'REPLICA-OLD-01';
  const body = (cpu: number) =>
    JSON.stringify({ dev_sno: licenseKey, sub_devices: [{ ep_id: 'cam-0', ep_name: '东门', ep_status: 'online', ep_type: 'rtsp' }], gateway_name: '网关', gateway_ext_data: { cpu_usage: cpu, note: '温度'.repeat(cpu % 3) } });
  const lastBody = async () => {
    const { rows } = await a.sql.query('select id from boxes where license_key = $1', [licenseKey]);
    return (await lastReportsByBoxIds(a.sql, [rows[0].id])).get(rows[0].id)?.body;
  };
  const post = async (gateway: TestGateway, text: string) => {
    expect((await postReport(gateway.url, text)).status).toBe(200);
    expect(await lastBody()).toBe(text);
  };

  await post(a, body(1));
  await post(a, body(2));
  await post(b, body(3)); // B never saw the box
  await post(a, body(2)); // A's last is body(2), but the stored one is body(3): not skipped
  await post(b, body(3)); // B's last is body(3), the stored one is body(2)
  await post(a, body(5));
});

/**
 * Each replica remembers what it stored last (CommittedHashes), but diffs a changed device list against
 * the devices as stored, read under the box's lock: another replica may have written them since.
 */
it('diffs a device list against what another replica stored since, not against what it stored last', async () => {
  const licenseKey = 'REPLICA-KEPT-01';
  const report = (cam0: string, cam1: string) => ({
    mq_license_key: licenseKey,
    media_devices: [
      { media_device_id: 'cam-0', media_device_status: cam0, media_device_type: 'rtsp' },
      { media_device_id: 'cam-1', media_device_status: cam1, media_device_type: 'rtsp' },
    ],
  });
  expect((await postReport(b.url, report('online', 'online'))).json).toMatchObject({ changes: 3 });
  expect((await postReport(a.url, report('offline', 'online'))).json).toMatchObject({ changes: 1 });
  // Against what B stored last, cam-0 would look unchanged (online) and only cam-1 would change.
  expect((await postReport(b.url, report('online', 'offline'))).json).toMatchObject({ changes: 2 });
  const { rows } = await a.sql.query(
    `select d.external_id, e.from_status, e.to_status from status_events e join devices d on d.id = e.device_id
     join boxes b on b.id = e.box_id where b.license_key = $1 order by e.id`,
    [licenseKey],
  );
  expect(rows.map((r) => `${r.external_id}: ${r.from_status} → ${r.to_status}`)).toEqual([
    'cam-0: null → online',
    'cam-1: null → online',
    'cam-0: online → offline',
    'cam-0: offline → online',
    'cam-1: online → offline',
  ]);
  const { rows: devices } = await a.sql.query(
    'select d.external_id, d.status from devices d join boxes b on b.id = d.box_id where b.license_key = $1 order by d.external_id',
    [licenseKey],
  );
  expect(devices).toEqual([{ external_id: 'cam-0', status: 'online' }, { external_id: 'cam-1', status: 'offline' }]);
});
