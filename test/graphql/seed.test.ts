import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasFleet, refreshOnlineBoxes, seedFleet } from '../../tools/seed/fleet';
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
