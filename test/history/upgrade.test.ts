import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { fillOldHistory, migrateBefore } from '../../bench/lib/old-schema';
import { listPartitions } from '../../src/history/partitions';
import { newerReport, post } from '../graphql/fleet-fixture';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { withDatabase } from '../helpers/global-postgres';
import { capturedLogger } from '../helpers/log-capture';

// A database of the version before migration 0007, with a status history too large to partition
// before serving (more than 100,000 rows), is upgraded while boxes keep reporting: every row and id is
// kept, and every event ingest wrote meanwhile too.

const serverUrl = inject('postgresUrl');
const name = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
const url = withDatabase(serverUrl, name);
const ROWS = 120_000;
let db: pg.Client;
let gateway: TestGateway | undefined;

/** Every event, as one digest: ids, subjects, statuses and times. */
async function digest(where = 'true'): Promise<{ rows: number; md5: string }> {
  const { rows } = await db.query(
    `select count(*)::int as rows, md5(coalesce(string_agg(concat_ws(',', id, box_id, device_id, from_status, to_status, at), ';' order by id), '')) as md5
     from status_events where ${where}`,
  );
  return rows[0];
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  db = new pg.Client({ connectionString: url });
  await db.connect();
  await migrateBefore(db, 7);
  // Two boxes of 8 devices, and their history over the last 75 days: three months at least.
  await fillOldHistory(db, { boxes: 2, devicesPerBox: 8, rows: ROWS, days: 75 });
}, 60_000);

afterAll(async () => {
  await gateway?.close();
  await db?.end();
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
});

it('partitions a populated history by month while ingest writes to it, keeping every row and id', { timeout: 120_000 }, async () => {
  const before = await digest();
  expect(before.rows).toBe(ROWS);
  const { rows: maxRows } = await db.query('select max(id)::int8 as id from status_events');
  const lastOldId = Number(maxRows[0].id);

  const { log, lines } = capturedLogger('info');
  gateway = await startGateway({}, url, { log });
  // Served before the copy is done: the large history is partitioned in the background.
  expect(lines.some((line) => line.includes('partitioned in the background'))).toBe(true);

  // Boxes keep reporting, each report a status change, until the swap is over.
  let acknowledged = 0;
  let during = 0;
  const partitioned = async () => (await db.query(`select relkind::text as kind from pg_class where oid = 'status_events'::regclass`)).rows[0].kind === 'p';
  for (let i = 0; !(await partitioned()); i++) {
    const { changes } = await post(gateway, newerReport('UPG-LIVE', [{ id: 'door', status: i % 2 ? 'offline' : 'online' }]));
    acknowledged += changes;
    during++;
    if (i > 10_000) throw new Error('the history was not partitioned');
  }
  for (let i = 0; i < 5; i++) acknowledged += (await post(gateway, newerReport('UPG-LIVE', [{ id: 'door', status: i % 2 ? 'online' : 'offline' }]))).changes;

  // Every old row, unchanged, with its id.
  expect(await digest(`id <= ${lastOldId}`)).toEqual(before);
  // And every event acknowledged meanwhile (a box's first report is two: the box and its device).
  const { rows: written } = await db.query(`select count(*)::int as n from status_events e join boxes b on b.id = e.box_id where b.license_key = 'UPG-LIVE'`);
  expect(written[0].n).toBe(acknowledged);
  expect(during).toBeGreaterThan(1);

  // Months from the oldest event to two ahead, the old table gone, the names and the sequence taken over.
  const partitions = await listPartitions(db, 'status_events');
  expect(partitions.length).toBeGreaterThanOrEqual(5);
  expect(partitions.every((p) => /^status_events_p\d{4}_\d{2}$/.test(p.name))).toBe(true);
  const { rows: indexes } = await db.query(`select indexname from pg_indexes where tablename = 'status_events' order by 1`);
  expect(indexes.map((r) => r.indexname)).toEqual([
    'status_events_at_idx',
    'status_events_box_at_idx',
    'status_events_box_idx',
    'status_events_device_at_idx',
    'status_events_device_idx',
    'status_events_pkey',
  ]);
  expect((await db.query(`select to_regclass('status_events_partitioned') as t`)).rows[0].t).toBeNull();
  const { rows: owner } = await db.query(`select pg_get_serial_sequence('status_events', 'id') as seq`);
  expect(owner[0].seq).toBe('public.status_events_id_seq');

  // It said how far it was while it copied, and how long the swap held ingest.
  const entries = lines.map((line) => JSON.parse(line));
  const progress = entries.filter((entry) => entry.msg === 'partitioning the status history');
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.at(-1)).toMatchObject({ copied: expect.any(Number), of: expect.any(Number), percent: expect.any(Number), etaSeconds: expect.any(Number) });
  expect(progress.at(-1).of).toBeGreaterThanOrEqual(ROWS); // and what boxes wrote before it counted
  const done = entries.find((entry) => entry.msg === 'status history partitioned by month');
  expect(done).toMatchObject({ rows: expect.any(Number), ms: expect.any(Number), swapLockWaitMs: expect.any(Number), swapHeldMs: expect.any(Number) });
  expect(done.rows).toBeGreaterThanOrEqual(ROWS);
});
