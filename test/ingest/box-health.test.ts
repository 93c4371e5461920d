import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePartitions } from '../../src/history/partitions';
import { normalizeReport } from '../../src/ingest/report';
import type { ReceivedReport } from '../../src/ingest/store/outcome';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { startWriter, type TestWriter } from '../helpers/writer';

// Box health over time as ingest writes it: an older box's figures (gateway_ext_data) folded into one
// box_health row per box and UTC hour, in the transaction that stores the report. Over HTTP with a
// real gateway, and at the writer for batches whose make-up and times a test must choose.

let gateway: TestGateway;
let store: TestWriter;

beforeAll(async () => {
  [gateway, store] = await Promise.all([startGateway(), startWriter()]);
  // Start-up makes the months around now; the batches below are written in January 2026.
  for (const table of ['box_health', 'status_events']) await ensurePartitions(store.pool, table, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-31T00:00:00Z'));
});
afterAll(async () => {
  await gateway?.close();
  await store?.close();
});

/** An older report of one device with these `gateway_ext_data` figures (a key set to undefined is left out). */
function older(key: string, figures: Record<string, unknown>, status = 'online') {
  return {
    dev_sno: key,
    gateway_name: 'SE5',
    gateway_ext_data: { sw_version: '2.3.1', ...figures },
    sub_devices: [{ ep_id: `${key}__10.0.0.1`, ep_ip: '10.0.0.1', ep_status: status, ep_location: 'l', ep_type: 'rtsp', ep_name: 'gate' }],
  };
}

async function post(body: unknown) {
  const res = await postReport(gateway.url, body);
  expect(res.status, res.text).toBe(200);
  return res.json;
}

/** The box's health over every hour stored (a test may straddle an hour: rows are folded here as DAY buckets are). */
async function totals(pool: TestWriter['pool'], key: string) {
  const { rows } = await pool.query(
    `select count(*)::int as rows, sum(reports)::int as reports,
            min(cpu_min) as cpu_min, max(cpu_max) as cpu_max, sum(cpu_sum) as cpu_sum, sum(cpu_count)::int as cpu_count,
            min(memory_min) as memory_min, max(memory_max) as memory_max, sum(memory_sum) as memory_sum, sum(memory_count)::int as memory_count,
            min(disk_min) as disk_min, max(disk_max) as disk_max, sum(disk_sum) as disk_sum, sum(disk_count)::int as disk_count,
            min(temperature_min) as temperature_min, max(temperature_max) as temperature_max,
            sum(temperature_sum) as temperature_sum, sum(temperature_count)::int as temperature_count
     from box_health h join boxes b on b.id = h.box_id where b.license_key = $1`,
    [key],
  );
  return rows[0];
}

async function hours(pool: TestWriter['pool'], key: string) {
  const { rows } = await pool.query(
    `select h.hour, h.reports, h.cpu_min, h.cpu_max, h.cpu_sum, h.cpu_count, h.temperature_min, h.temperature_max, h.temperature_count
     from box_health h join boxes b on b.id = h.box_id where b.license_key = $1 order by h.hour`,
    [key],
  );
  return rows;
}

describe('health figures over HTTP', () => {
  it('folds every report of an hour into its row: min, max, sum and count per figure', async () => {
    const key = 'HEALTH-FOLD-01';
    // As boxes send them: numbers, numeric strings, and a unit after the number.
    await post(older(key, { cpu_usage: 10, memory_usage: '40.5', disk_usage: 63, temperature: '52℃' }));
    await post(older(key, { cpu_usage: '20', memory_usage: 41.5, disk_usage: 63, temperature: 50 }));
    await post(older(key, { cpu_usage: 60.5, memory_usage: '39', disk_usage: '63.0', temperature: '57.5 ℃' }, 'offline'));
    const t = await totals(gateway.sql, key);
    expect(t).toMatchObject({ reports: 3, cpu_min: 10, cpu_max: 60.5, cpu_sum: 90.5, cpu_count: 3 });
    expect(t).toMatchObject({ memory_min: 39, memory_max: 41.5, memory_sum: 121, memory_count: 3 });
    expect(t).toMatchObject({ disk_min: 63, disk_max: 63, disk_sum: 189, disk_count: 3 });
    expect(t).toMatchObject({ temperature_min: 50, temperature_max: 57.5, temperature_sum: 159.5, temperature_count: 3 });
    expect(t.rows).toBeLessThanOrEqual(2); // one, or two when the reports straddled an hour
  });

  it('a figure left out is a gap, not a zero: its count stays, and never sent it stays null', async () => {
    const key = 'HEALTH-GAPS-01';
    await post(older(key, { cpu_usage: 30, memory_usage: 50 }));
    await post(older(key, { cpu_usage: 40 }));
    await post(older(key, { memory_usage: null, disk_usage: undefined }));
    const t = await totals(gateway.sql, key);
    expect(t).toMatchObject({ reports: 3, cpu_min: 30, cpu_max: 40, cpu_sum: 70, cpu_count: 2 });
    expect(t).toMatchObject({ memory_min: 50, memory_max: 50, memory_sum: 50, memory_count: 1 });
    expect(t).toMatchObject({ disk_min: null, disk_max: null, disk_sum: null, disk_count: 0 });
    expect(t).toMatchObject({ temperature_min: null, temperature_max: null, temperature_sum: null, temperature_count: 0 });
  });

  it('skips unreadable and out-of-range figures, and stores the report all the same', async () => {
    const key = 'HEALTH-BAD-01';
    await post(older(key, { cpu_usage: 25, memory_usage: 50, disk_usage: 70, temperature: 45 }));
    const res = await postReport(
      gateway.url,
      older(key, { cpu_usage: 'n/a', memory_usage: 130, disk_usage: -1, temperature: -300, extra: 1 }, 'offline'),
    );
    expect(res.status, res.text).toBe(200);
    await post(older(key, { cpu_usage: true, memory_usage: {}, disk_usage: '', temperature: '1e9' }));
    await post(older(key, { cpu_usage: [50], memory_usage: '100', disk_usage: '0', temperature: '-50' }));
    const t = await totals(gateway.sql, key);
    expect(t).toMatchObject({ reports: 4, cpu_min: 25, cpu_max: 25, cpu_count: 1 });
    expect(t).toMatchObject({ memory_min: 50, memory_max: 100, memory_count: 2 }); // 100 % is a figure, 130 % is not
    expect(t).toMatchObject({ disk_min: 0, disk_max: 70, disk_count: 2 });
    expect(t).toMatchObject({ temperature_min: -50, temperature_max: 45, temperature_count: 2 });
    const { rows } = await gateway.sql.query(`select status from devices where box_id = (select id from boxes where license_key = $1)`, [key]);
    expect(rows).toEqual([{ status: 'online' }]); // offline, then online again with the last report
    expect(res.json.changes).toBe(1); // its device went offline
  });

  it('counts a report whose body is the last one again: the same figures once more', async () => {
    const key = 'HEALTH-SAME-01';
    const body = older(key, { cpu_usage: 12, temperature: 48 });
    for (let i = 0; i < 3; i++) await post(body);
    expect(await totals(gateway.sql, key)).toMatchObject({ reports: 3, cpu_sum: 36, cpu_count: 3, temperature_count: 3 });
  });

  it('writes nothing for a box that sends no gateway_ext_data', async () => {
    const key = 'HEALTH-NEWER-01';
    await post({ mq_license_key: key, media_devices: [{ media_device_id: 'a', media_device_name: 'a', media_device_status: 'online', media_device_type: 'rtsp' }] });
    await post({ dev_sno: `${key}-OLD`, sub_devices: [{ ep_id: 'x', ep_ip: '10.0.0.1', ep_status: 'online', ep_type: 'rtsp' }] });
    expect((await totals(gateway.sql, key)).rows).toBe(0);
    expect((await totals(gateway.sql, `${key}-OLD`)).rows).toBe(0);
  });

  it('deletes a box’s health with the box when its history is deleted', async () => {
    const key = 'HEALTH-DELETE-01';
    const { boxId } = await post(older(key, { cpu_usage: 5 }));
    const { rows } = await gateway.sql.query('select id from boxes where license_key = $1', [key]);
    expect((await gateway.sql.query('select count(*)::int as n from box_health where box_id = $1', [rows[0].id])).rows[0].n).toBe(1);
    const removed = await graphql(gateway.url, `mutation { removeBox(boxId: "${boxId}", deleteHistory: true) { __typename } }`);
    expect(removed.body.data).toEqual({ removeBox: { __typename: 'RemoveBoxSuccess' } });
    expect((await gateway.sql.query('select count(*)::int as n from box_health where box_id = $1', [rows[0].id])).rows[0].n).toBe(0);
  });
});

describe('health figures in one batch', () => {
  function received(key: string, figures: Record<string, unknown>, at: string, status = 'online'): ReceivedReport {
    const text = JSON.stringify(older(key, figures, status));
    const report = normalizeReport(JSON.parse(text), Buffer.from(text), { maxDevices: 4096 }, [], text, false);
    return { report, receivedAt: new Date(at), address: null };
  }
  async function writeTogether(reports: ReceivedReport[]) {
    store.batches.length = 0;
    await Promise.all(reports.map((r) => store.writer.write(r)));
    expect(store.batches).toEqual([reports.length]);
  }

  it('folds several reports of one box in a batch, each into its own hour', async () => {
    const key = 'HEALTH-BATCH-01';
    await writeTogether([received(key, { cpu_usage: 50, temperature: 60 }, '2026-01-05T09:30:00Z')]);
    await writeTogether([
      received(key, { cpu_usage: 10, temperature: 40 }, '2026-01-05T09:59:00Z', 'offline'),
      received(key, { cpu_usage: 30 }, '2026-01-05T09:59:30Z'),
      received(key, { cpu_usage: 20, temperature: 44 }, '2026-01-05T10:00:00Z', 'offline'),
      received(key, { cpu_usage: 'broken', temperature: 46 }, '2026-01-05T10:30:00Z'),
    ]);
    expect(await hours(store.pool, key)).toEqual([
      {
        hour: new Date('2026-01-05T09:00:00Z'),
        reports: 3,
        cpu_min: 10,
        cpu_max: 50,
        cpu_sum: 90,
        cpu_count: 3,
        temperature_min: 40,
        temperature_max: 60,
        temperature_count: 2,
      },
      {
        hour: new Date('2026-01-05T10:00:00Z'),
        reports: 2,
        cpu_min: 20,
        cpu_max: 20,
        cpu_sum: 20,
        cpu_count: 1,
        temperature_min: 44,
        temperature_max: 46,
        temperature_count: 2,
      },
    ]);
  });

  it('in a batch of boxes on both paths (one update, and the diff), counts each report once', async () => {
    const [a, b, c] = ['HEALTH-BATCH-A', 'HEALTH-BATCH-B', 'HEALTH-BATCH-C'];
    await writeTogether([received(a, { cpu_usage: 1 }, '2026-01-06T00:10:00Z'), received(b, { cpu_usage: 2 }, '2026-01-06T00:10:00Z')]);
    // a: the one-statement update; b: its device changes (the diff); c: new; a again in the next batch.
    await writeTogether([
      received(a, { cpu_usage: 3 }, '2026-01-06T00:20:00Z'),
      received(b, { cpu_usage: 4 }, '2026-01-06T00:20:00Z', 'offline'),
      received(c, { cpu_usage: 5 }, '2026-01-06T00:20:00Z'),
    ]);
    await writeTogether([received(a, { cpu_usage: 7 }, '2026-01-06T00:30:00Z')]);
    expect(await totals(store.pool, a)).toMatchObject({ rows: 1, reports: 3, cpu_min: 1, cpu_max: 7, cpu_sum: 11, cpu_count: 3 });
    expect(await totals(store.pool, b)).toMatchObject({ rows: 1, reports: 2, cpu_min: 2, cpu_max: 4, cpu_sum: 6, cpu_count: 2 });
    expect(await totals(store.pool, c)).toMatchObject({ rows: 1, reports: 1, cpu_min: 5, cpu_max: 5, cpu_sum: 5, cpu_count: 1 });
  });
});
