import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePartitions } from '../../src/history/partitions';
import { normalizeReport } from '../../src/ingest/report';
import { ReportReader } from '../../src/ingest/report-reader';
import { ReportWriter } from '../../src/ingest/writer';
import { createLogger } from '../../src/log';
import type { AppliedReport, ReceivedReport } from '../../src/ingest/store/outcome';
import { startWriter, type TestWriter } from '../helpers/writer';

// What the store writes, seen at the ReportWriter with a real Postgres: device times kept or set
// as the reports say (the store reads only what its diff needs), batches of several reports of one
// box, and a statement failing in the middle of a pipelined transaction.

let pool: pg.Pool;
let writer: ReportWriter;
/** Sizes of the batches the writer committed, re-runs included. */
let batches: number[];
let setup: TestWriter | undefined;

beforeAll(async () => {
  setup = await startWriter();
  ({ pool, writer, batches } = setup);
  // The reports here arrive in the first half of 2026: their history needs those months' partitions.
  await ensurePartitions(pool, 'status_events', new Date('2025-12-01T00:00:00Z'), new Date('2026-06-30T00:00:00Z'));
});
afterAll(() => setup?.close());

type Dev = { id: string; status?: string; name?: string };
function received(key: string, devices: Dev[], at: Date): ReceivedReport {
  const text = JSON.stringify({
    mq_license_key: key,
    media_devices: devices.map((d) => ({ media_device_id: d.id, media_device_name: d.name ?? d.id, media_device_status: d.status ?? 'online', media_device_type: 'rtsp' })),
  });
  const report = normalizeReport(JSON.parse(text), Buffer.from(text), { maxDevices: 4096 }, [], text, false);
  return { report, receivedAt: at, address: null };
}

async function writeTogether(reports: ReceivedReport[]): Promise<Array<AppliedReport | Error>> {
  batches.length = 0;
  const settled = await Promise.allSettled(reports.map((r) => writer.write(r)));
  return settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error)));
}

/** Device times as Postgres prints them (microseconds), by external id. */
async function deviceTimes(key: string) {
  const { rows } = await pool.query(
    `select d.external_id, d.name, d.status, d.status_since::text, d.first_seen_at::text, d.updated_at::text, d.removed_at::text
     from devices d join boxes b on b.id = d.box_id where b.license_key = $1 order by d.external_id`,
    [key],
  );
  return Object.fromEntries(rows.map((r) => [r.external_id, r]));
}

const time = (iso: string) => new Date(iso);
const pgTime = async (date: Date) => (await pool.query('select $1::timestamptz::text as t', [date])).rows[0].t as string;

describe('device times', () => {
  it('keeps status_since exactly when only a field changes, and sets it on a status change or removal', async () => {
    await writeTogether([received('T-TIMES-01', [{ id: 'a' }, { id: 'b' }], time('2026-01-01T00:00:00Z'))]);
    // A time with microseconds, as another writer (or the seed) may leave it: it must survive untouched.
    await pool.query(`update devices set status_since = '2025-12-31 23:59:59.123456+00' where external_id = 'a'`);
    await writeTogether([received('T-TIMES-01', [{ id: 'a', name: 'front door' }, { id: 'b', status: 'offline' }], time('2026-01-01T00:01:00Z'))]);
    let devices = await deviceTimes('T-TIMES-01');
    expect(devices.a).toMatchObject({ name: 'front door', status_since: '2025-12-31 23:59:59.123456+00', updated_at: await pgTime(time('2026-01-01T00:01:00Z')) });
    expect(devices.b).toMatchObject({ status: 'offline', status_since: await pgTime(time('2026-01-01T00:01:00Z')) });
    expect(devices.a.first_seen_at).toBe(await pgTime(time('2026-01-01T00:00:00Z')));

    await writeTogether([received('T-TIMES-01', [{ id: 'a', name: 'front door' }], time('2026-01-01T00:02:00Z'))]);
    devices = await deviceTimes('T-TIMES-01');
    const removedAt = await pgTime(time('2026-01-01T00:02:00Z'));
    expect(devices.b).toMatchObject({ status: 'offline', removed_at: removedAt, status_since: removedAt, updated_at: removedAt });
    expect(devices.b.first_seen_at).toBe(await pgTime(time('2026-01-01T00:00:00Z')));
    expect(devices.a.status_since).toBe('2025-12-31 23:59:59.123456+00');
  });

  it('in one batch of several reports of a box, takes each time from the report that changed it last', async () => {
    await writeTogether([received('T-TIMES-02', [{ id: 'a' }, { id: 'b' }], time('2026-02-01T00:00:00Z'))]);
    const results = await writeTogether([
      received('T-TIMES-02', [{ id: 'a', status: 'offline' }, { id: 'b', status: 'offline' }], time('2026-02-01T00:01:00Z')),
      received('T-TIMES-02', [{ id: 'a', status: 'offline', name: 'renamed' }, { id: 'b' }], time('2026-02-01T00:02:00Z')),
    ]);
    expect(batches).toEqual([2]);
    expect(results.map((r) => (r as AppliedReport).changes)).toEqual([2, 1]);
    const devices = await deviceTimes('T-TIMES-02');
    // a: status changed by the first report, renamed by the second.
    expect(devices.a).toMatchObject({ status: 'offline', status_since: await pgTime(time('2026-02-01T00:01:00Z')), updated_at: await pgTime(time('2026-02-01T00:02:00Z')) });
    // b: offline and back within the batch: its status is as old as its last change.
    expect(devices.b).toMatchObject({ status: 'online', status_since: await pgTime(time('2026-02-01T00:02:00Z')) });
  });
});

describe('the two paths in one batch', () => {
  it('applies a changed list (full path at once), a box the one-statement path missed, and an unchanged one', async () => {
    await writeTogether([
      received('T-PATH-CHANGED', [{ id: 'a' }], time('2026-04-01T00:00:00Z')),
      received('T-PATH-SAME', [{ id: 'a' }], time('2026-04-01T00:00:00Z')),
    ]);
    // Went offline behind this process's back (the offline sweeper): its next report, unchanged, misses the one-statement path.
    await pool.query(`insert into boxes (license_key, status, status_since) values ('T-PATH-MISSED', 'online', now())`);
    await writeTogether([received('T-PATH-MISSED', [{ id: 'a' }], time('2026-04-01T00:00:00Z'))]);
    await pool.query(`update boxes set status = 'offline' where license_key = 'T-PATH-MISSED'`);

    const results = await writeTogether([
      received('T-PATH-CHANGED', [{ id: 'a', status: 'offline' }], time('2026-04-01T00:01:00Z')),
      received('T-PATH-MISSED', [{ id: 'a' }], time('2026-04-01T00:01:00Z')),
      received('T-PATH-SAME', [{ id: 'a' }], time('2026-04-01T00:01:00Z')),
    ]);
    expect(batches).toEqual([3]);
    expect(results.map((r) => (r as AppliedReport).changes)).toEqual([1, 1, 0]);
    const { rows } = await pool.query(
      `select b.license_key, b.status, b.report_count, array_agg(e.from_status || '>' || e.to_status order by e.id) as events
       from boxes b join status_events e on e.box_id = b.id where b.license_key like 'T-PATH-%' group by b.id order by b.license_key`,
    );
    expect(rows).toEqual([
      { license_key: 'T-PATH-CHANGED', status: 'online', report_count: 2, events: [null, null, 'online>offline'] },
      { license_key: 'T-PATH-MISSED', status: 'online', report_count: 2, events: [null, null, 'offline>online'] },
      { license_key: 'T-PATH-SAME', status: 'online', report_count: 2, events: [null, null] },
    ]);
  });
});

describe('the statements of each path', () => {
  /** Statement names the writers send, recorded at each pooled client (observed, not replaced). */
  const sent: string[] = [];
  beforeAll(() => {
    const watched = new WeakSet<pg.PoolClient>();
    pool.on('acquire', (client) => {
      if (watched.has(client)) return;
      watched.add(client);
      const query = client.query;
      client.query = function (this: pg.PoolClient, ...args: unknown[]) {
        const config = args[0] as { name?: string; text?: string };
        if (typeof config === 'object' && config !== null) sent.push(config.name ?? config.text ?? '');
        return (query as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof client.query;
    });
  });

  const body = (key: string, statuses: string[]) =>
    Buffer.from(JSON.stringify({
      mq_license_key: key,
      media_devices: statuses.map((status, i) => ({ media_device_id: `cam-${i}`, media_device_name: `门口 ${i}`, media_device_status: status, media_device_type: 'rtsp' })),
    }));
  const history = async (key: string) =>
    (await pool.query(
      `select d.external_id, e.from_status, e.to_status from status_events e join devices d on d.id = e.device_id
       join boxes b on b.id = e.box_id where b.license_key = $1 and e.from_status is not null order by e.id`,
      [key],
    )).rows.map((r) => `${r.external_id}: ${r.from_status} → ${r.to_status}`);

  it('stores a report of an unchanged box with one statement, outside any transaction', async () => {
    const key = 'T-STATUSES-00';
    const reader = new ReportReader({ maxDevices: 4096 });
    await writeTogether([{ report: reader.read(body(key, ['online', 'online'])), receivedAt: time('2026-04-01T00:00:00Z'), address: null }]);
    sent.length = 0;
    const [result] = await writeTogether([{ report: reader.read(body(key, ['online', 'online'])), receivedAt: time('2026-04-01T00:01:00Z'), address: null }]);
    expect(result).toMatchObject({ changes: 0, devices: 2 });
    expect(sent).toEqual(['ingest_update_unchanged_boxes']);
  });

  it('sets statuses changed from the list this process stored last by key in one statement, with their history, and reads no devices', async () => {
    const key = 'T-STATUSES-01';
    const reader = new ReportReader({ maxDevices: 4096 });
    await writeTogether([{ report: reader.read(body(key, ['online', 'online', 'online'])), receivedAt: time('2026-05-01T00:00:00Z'), address: null }]);
    const report = reader.read(body(key, ['online', 'offline', 'online']));
    expect(report.statusChanges?.changed.map((c) => `${c.device.externalId}: ${c.from} → ${c.device.status}`)).toEqual(['cam-1: online → offline']);

    sent.length = 0;
    const [result] = await writeTogether([{ report, receivedAt: time('2026-05-01T00:01:00Z'), address: null }]);
    expect(result).toMatchObject({ changes: 1, devices: 3 });
    expect(sent).toEqual(['begin', 'ingest_update_unchanged_boxes', 'events_insert', 'commit']);
    expect(await history(key)).toEqual(['cam-1: online → offline']);
    const devices = await deviceTimes(key);
    const [at0, at1] = [await pgTime(time('2026-05-01T00:00:00Z')), await pgTime(time('2026-05-01T00:01:00Z'))];
    expect(devices['cam-1']).toMatchObject({ status: 'offline', status_since: at1, updated_at: at1, name: '门口 1' });
    expect(devices['cam-0']).toMatchObject({ status: 'online', status_since: at0, updated_at: at0 });
    const box = (await pool.query('select devices_hash, report_count from boxes where license_key = $1', [key])).rows[0];
    expect(box).toEqual({ devices_hash: report.devicesHash, report_count: 2 });
  });

  it('diffs against what another replica stored since, not against what this one stored last', async () => {
    const key = 'T-STATUSES-02';
    const reader = new ReportReader({ maxDevices: 4096 });
    const replica = new ReportWriter(pool, createLogger('silent'), { windowMs: 0, maxItems: 100 });
    await writeTogether([{ report: reader.read(body(key, ['online', 'online', 'online'])), receivedAt: time('2026-06-01T00:00:00Z'), address: null }]);
    // The other replica stores cam-0 offline; this one still remembers all three online.
    await replica.write({ report: new ReportReader({ maxDevices: 4096 }).read(body(key, ['offline', 'online', 'online'])), receivedAt: time('2026-06-01T00:01:00Z'), address: null });
    // Read from this process's last body: only cam-2 changed (online → offline), from a list no longer stored.
    const report = reader.read(body(key, ['online', 'online', 'offline']));
    expect(report.statusChanges?.changed.map((c) => c.device.externalId)).toEqual(['cam-2']);

    sent.length = 0;
    const [result] = await writeTogether([{ report, receivedAt: time('2026-06-01T00:02:00Z'), address: null }]);
    expect(result).toMatchObject({ changes: 2 });
    expect(sent).toContain('ingest_select_changed_devices');
    expect(await history(key)).toEqual(['cam-0: online → offline', 'cam-0: offline → online', 'cam-2: online → offline']);
    const devices = await deviceTimes(key);
    expect(Object.values(devices as Record<string, { external_id: string; status: string }>).map((d) => `${d.external_id} ${d.status}`)).toEqual(['cam-0 online', 'cam-1 online', 'cam-2 offline']);
    expect(devices['cam-0'].status_since).toBe(await pgTime(time('2026-06-01T00:02:00Z')));
    await replica.drain();
  });
});

describe('a statement failing inside a pipelined transaction', () => {
  beforeAll(async () => {
    // History rows of one box fail, as a broken constraint or trigger would make them.
    await pool.query(`
      create function refuse_bad_box_events() returns trigger language plpgsql as $$
      begin
        if new.box_id = (select id from boxes where license_key = 'T-BAD-BOX') then raise exception 'refused for the test'; end if;
        return new;
      end $$;
      create trigger refuse_bad_box_events before insert on status_events for each row execute function refuse_bad_box_events();`);
  });
  afterAll(async () => {
    await pool.query('drop trigger refuse_bad_box_events on status_events; drop function refuse_bad_box_events()');
  });

  it('rolls back, stores the batch neighbours once, and leaves the connections usable', async () => {
    await pool.query(`insert into boxes (license_key, status, status_since) values ('T-BAD-BOX', 'offline', now())`);
    await writeTogether([received('T-GOOD-BOX', [{ id: 'a' }], time('2026-03-01T00:00:00Z'))]);
    const before = (await pool.query(`select report_count from boxes where license_key = 'T-GOOD-BOX'`)).rows[0].report_count;

    // The good box reports its device list unchanged (the one-statement path, committed first); the
    // bad one takes the full path, whose events insert fails: the batch is partly applied, and the rest re-run.
    const results = await writeTogether([
      received('T-GOOD-BOX', [{ id: 'a' }], time('2026-03-01T00:01:00Z')),
      received('T-BAD-BOX', [{ id: 'x' }], time('2026-03-01T00:01:00Z')),
    ]);
    expect(results[0]).toMatchObject({ changes: 0 });
    expect(results[1]).toBeInstanceOf(Error);
    expect((results[1] as Error).message).toContain('refused for the test');
    expect((await pool.query(`select report_count from boxes where license_key = 'T-GOOD-BOX'`)).rows[0].report_count).toBe(before + 1);
    const bad = (await pool.query(`select b.report_count, b.status, (select count(*)::int from devices d where d.box_id = b.id) as devices from boxes b where license_key = 'T-BAD-BOX'`)).rows[0];
    expect(bad).toEqual({ report_count: 0, status: 'offline', devices: 0 });

    // Every pooled connection works, outside any transaction.
    const clients = await Promise.all([1, 2, 3, 4].map(() => pool.connect()));
    for (const client of clients) {
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
      // Inside a transaction left open, now() would be its start, not this statement's.
      expect((await client.query('select now() = statement_timestamp() as outside')).rows[0].outside).toBe(true);
      client.release();
    }
    const [after] = await writeTogether([received('T-GOOD-BOX', [{ id: 'a', status: 'offline' }], time('2026-03-01T00:02:00Z'))]);
    expect(after).toMatchObject({ changes: 1 });
  });
});
