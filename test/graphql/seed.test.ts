import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPartitions, monthStart } from '../../src/history/partitions';
import { hasFleet, refreshOnlineBoxes, seedFleet } from '../../tools/seed/fleet';
import { createTestDatabase } from '../helpers/database';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { graphql } from './generated';

const OPTIONS = { boxes: 60, devicesPerBox: 12, days: 5, seed: 7 };

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
  const steps: number[] = [];
  const result = await seedFleet(gateway.sql, OPTIONS, (done, total) => steps.push(done / total));
  expect(result).toMatchObject({ boxes: 60, devices: 720 });
  expect(result.boxHealthRows).toBeGreaterThan(0);
  expect(steps.at(-1)).toBeCloseTo(1);
});
afterAll(() => gateway?.close());

const Summary = graphql(`
  query SeedSummary {
    fleetSummary {
      boxes { total online offline byFormat { format total } }
      devices { total online offline unknown removed byType { type total } }
    }
  }
`);

const History = graphql(`
  query SeedDeviceHistory($id: ID!) {
    device(id: $id) {
      status
      removed
      statusSince
      statusEvents(first: 500, orderBy: { field: AT, direction: ASC }) { nodes { fromStatus toStatus at } }
    }
  }
`);

describe('npm run seed', () => {
  it('makes the fleet asked for, both formats, gateway details for older boxes', async () => {
    expect(await hasFleet(gateway.sql, OPTIONS)).toBe(true);
    const { rows } = await gateway.sql.query(
      `select report_format, count(*)::int as n, count(gateway)::int as with_gateway,
              count(*) filter (where last_report_at is not null and observed_period_seconds > 0)::int as reporting
       from boxes group by 1 order by 1`,
    );
    expect(rows).toEqual([
      { report_format: 'new', n: 40, with_gateway: 0, reporting: 40 },
      { report_format: 'old', n: 20, with_gateway: 20, reporting: 20 },
    ]);
    const { rows: recent } = await gateway.sql.query(
      `select count(*)::int as n from boxes where status = 'online'
         and last_report_at > now() - make_interval(secs => 2 * coalesce(report_period_seconds, observed_period_seconds))`,
    );
    const { rows: online } = await gateway.sql.query(`select count(*)::int as n from boxes where status = 'online'`);
    expect(recent[0].n).toBe(online[0].n);
    expect(online[0].n).toBeGreaterThan(45);
  });

  it('mixes device statuses and types, with a few removed', async () => {
    const { rows } = await gateway.sql.query(
      `select count(distinct status)::int as statuses, count(distinct type)::int as types,
              count(*) filter (where removed_at is not null)::int as removed,
              count(*) filter (where status = 'offline')::int as offline, count(*)::int as total
       from devices`,
    );
    expect(rows[0].statuses).toBe(3);
    expect(rows[0].types).toBeGreaterThanOrEqual(4);
    expect(rows[0].removed).toBeGreaterThan(0);
    expect(rows[0].removed).toBeLessThan(30);
    expect(rows[0].offline).toBeGreaterThan(30);
  });

  it('writes history consistent with every device’s and box’s current status', async () => {
    // Each timeline starts with a first sighting, chains from -> to, and ends where the row is now.
    const { rows: broken } = await gateway.sql.query(`
      with ordered as (
        select e.*, lag(to_status) over w as previous, row_number() over w as n,
               row_number() over (partition by box_id, device_id order by at desc, id desc) as from_end
        from status_events e window w as (partition by box_id, device_id order by at, id))
      select o.* from ordered o
      left join devices d on d.id = o.device_id
      join boxes b on b.id = o.box_id
      where (o.n = 1 and o.from_status is not null)
         or (o.n > 1 and o.from_status is distinct from o.previous)
         or (o.from_end = 1 and o.device_id is not null and (
               o.to_status <> case when d.removed_at is null then d.status else 'removed' end
               or o.at <> d.status_since or (d.removed_at is not null and d.removed_at <> o.at)))
         or (o.from_end = 1 and o.device_id is null and (o.to_status <> b.status or o.at <> b.status_since))
      limit 5`);
    expect(broken).toEqual([]);
    const { rows } = await gateway.sql.query(
      `select (select count(*) from devices d where not exists (select 1 from status_events e where e.device_id = d.id))::int as without,
              (select min(at) from status_events) < now() - interval '4 days' as old_enough,
              (select max(at) from status_events) <= now() as not_future,
              (select count(*) from status_events e join devices d on d.id = e.device_id join boxes b on b.id = d.box_id
                where e.at > b.last_report_at + interval '1 second')::int as after_last_report`,
    );
    expect(rows[0]).toEqual({ without: 0, old_enough: true, not_future: true, after_last_report: 0 });
    // Ids follow time, as when boxes report live.
    const { rows: order } = await gateway.sql.query(
      `select count(*)::int as n from (select at < lag(at) over (order by id) as back from status_events) s where back`,
    );
    expect(order[0].n).toBe(0);
  });

  it('is what the API reports', async () => {
    const { fleetSummary } = await query(gateway.url, Summary);
    const { rows } = await gateway.sql.query(
      `select count(*) filter (where removed_at is null)::int as listed, count(*) filter (where removed_at is not null)::int as removed,
              count(*) filter (where removed_at is null and status = 'online')::int as online from devices`,
    );
    expect(fleetSummary.boxes.total).toBe(60);
    expect(fleetSummary.boxes.byFormat).toEqual([
      { format: 'NEW', total: 40 },
      { format: 'OLD', total: 20 },
    ]);
    expect(fleetSummary.devices).toMatchObject({ total: rows[0].listed, removed: rows[0].removed, online: rows[0].online });

    const { rows: flaky } = await gateway.sql.query(
      `select device_id, count(*)::int as n from status_events where device_id is not null group by 1 order by 2 desc, 1 limit 1`,
    );
    const id = Buffer.from(`Device:${flaky[0].device_id}`).toString('base64');
    const { device } = await query(gateway.url, History, { id });
    const events = device!.statusEvents.nodes;
    expect(events).toHaveLength(flaky[0].n);
    expect(events[0]!.fromStatus).toBeNull();
    expect(events.at(-1)!.toStatus).toBe(device!.removed ? 'REMOVED' : device!.status);
    expect(events.at(-1)!.at).toBe(device!.statusSince);
  });

  it('refuses a database that has a fleet unless told to reset, and freshens online boxes for a gateway', async () => {
    await expect(seedFleet(gateway.sql, OPTIONS)).rejects.toThrow(/already holds 60 boxes/);
    expect(await refreshOnlineBoxes(gateway.sql)).toBeGreaterThan(45);
  });
});

/** Device changes (first sightings aside) per device per day of history. */
async function changesPerDeviceDay(db: pg.Pool, days: number): Promise<number> {
  const { rows } = await db.query(
    `select count(*) filter (where device_id is not null and from_status is not null)::float8 / (select count(*) from devices) as n from status_events`,
  );
  return rows[0].n / days;
}

describe('npm run seed -- --days N', () => {
  const LONG = { boxes: 60, devicesPerBox: 12, days: 45, seed: 7, healthDays: 10 };
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let long: pg.Pool;
  beforeAll(async () => {
    database = await createTestDatabase();
    long = new pg.Pool({ connectionString: database.url, max: 2 });
    const steps: string[] = [];
    await seedFleet(long, LONG, (_done, _total, step) => steps.at(-1) !== step && steps.push(step));
    // Progress names each month it writes.
    expect(steps.filter((s) => s.startsWith('history of')).length).toBeGreaterThanOrEqual(2);
  });
  afterAll(async () => {
    await long?.end();
    await database?.drop();
  });

  it('writes history in proportion to its length: about 2.1 M events a month at 10,000 boxes x 16 devices', async () => {
    const short = await changesPerDeviceDay(gateway.sql, OPTIONS.days);
    const longer = await changesPerDeviceDay(long, LONG.days);
    // 2.1 M a month over 160,000 devices is 0.44 a device a day.
    expect(longer).toBeGreaterThan(0.3);
    expect(longer).toBeLessThan(0.6);
    expect(longer / short).toBeGreaterThan(0.7);
    expect(longer / short).toBeLessThan(1.4);
    const { rows } = await long.query(
      `select (select min(at) from status_events) < now() - interval '44 days' as old_enough,
              (select count(*) from status_events where device_id is null and from_status is not null)::int as box_changes`,
    );
    expect(rows[0]).toEqual({ old_enough: true, box_changes: expect.any(Number) });
    expect(rows[0].box_changes).toBeGreaterThan(0);
    expect(await hasFleet(long, LONG)).toBe(true);
    expect(await hasFleet(long, { ...LONG, days: 5 })).toBe(false);
  });

  it('makes a partition for every month of the history before writing it', async () => {
    const { rows } = await long.query(`select min(hour) as oldest from box_health`);
    const client = await long.connect();
    const partitions = await listPartitions(client, 'box_health').finally(() => client.release());
    for (let month = monthStart(rows[0].oldest); month <= new Date(); month = monthStart(month, 1)) {
      expect(partitions.some((p) => p.from <= month && p.to > month)).toBe(true);
    }
    const { rows: events } = await long.query(`select min(at) as oldest from status_events`);
    const { rows: kind } = await long.query(`select relkind::text as kind from pg_class where oid = 'status_events'::regclass`);
    if (kind[0].kind === 'p') {
      const other = await long.connect();
      const eventPartitions = await listPartitions(other, 'status_events').finally(() => other.release());
      expect(eventPartitions[0]!.from.getTime()).toBeLessThanOrEqual(monthStart(events[0].oldest).getTime());
    }
  });

  it('gives older boxes hourly health for the last --health-days days, with gaps and never while offline', async () => {
    const { rows } = await long.query(`
      select count(*)::int as n, count(distinct h.box_id)::int as boxes,
             (select count(*) from boxes where report_format = 'old' and last_report_at > now() - interval '10 days')::int as reporting,
             count(*) filter (where b.report_format <> 'old')::int as new_format,
             min(h.hour) >= now() - interval '10 days 1 hour' as within_health_days,
             count(*) filter (where h.temperature_count = 0)::int as temperature_gaps,
             count(*) filter (where h.cpu_count = 0)::int as cpu_gaps,
             count(*) filter (where (h.cpu_count = 0) <> (h.cpu_min is null) or (h.temperature_count = 0) <> (h.temperature_max is null))::int as zeros_for_gaps,
             count(*) filter (where h.cpu_count > 0 and not (h.cpu_min <= h.cpu_sum / h.cpu_count + 0.01 and h.cpu_sum / h.cpu_count <= h.cpu_max + 0.01
                                   and h.cpu_min >= 0 and h.cpu_max <= 100))::int as out_of_order,
             count(*) filter (where h.hour <> date_trunc('hour', h.hour))::int as not_on_the_hour
      from box_health h join boxes b on b.id = h.box_id`);
    // Every older box that reported in those days, and no other.
    expect(rows[0].boxes).toBe(rows[0].reporting);
    expect(rows[0]).toMatchObject({ new_format: 0, within_health_days: true, zeros_for_gaps: 0, out_of_order: 0, not_on_the_hour: 0 });
    expect(rows[0].temperature_gaps).toBeGreaterThan(0);
    expect(rows[0].cpu_gaps).toBeGreaterThan(0);
    // Fewer rows than hours online: the odd hour has no report at all.
    expect(rows[0].n).toBeLessThan(20 * 10 * 24);
    expect(rows[0].n).toBeGreaterThan(20 * 10 * 24 * 0.6);
    // A box reports (and so sends health) only while it is online.
    const { rows: offline } = await long.query(`
      select count(*)::int as n from box_health h
      cross join lateral (select to_status from status_events e where e.box_id = h.box_id and e.device_id is null
                            and e.at <= h.hour + interval '30 minutes' order by e.at desc, e.id desc limit 1) l
      where l.to_status <> 'online'`);
    expect(offline[0].n).toBe(0);
  });
});
