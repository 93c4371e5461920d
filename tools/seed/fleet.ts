import type pg from 'pg';
import { prepareHistory } from '../../src/history/maintainer';
import { ensurePartitions, isPartitioned, monthStart, MONTHS_AHEAD } from '../../src/history/partitions';
import { createLogger } from '../../src/log';
import { INSERT_EVENTS_OF_DAY, INSERT_HEALTH_OF_DAY } from './history';
import { changeAt, RANDOM_FUNCTION } from './timeline';

/** What `npm run seed` makes: `boxes` boxes of `devicesPerBox` devices each, with `days` days of history. */
export interface SeedOptions {
  boxes: number;
  devicesPerBox: number;
  days: number;
  /** Varies the fleet; the same options and seed make the same fleet (but for `now`). */
  seed: number;
  /** Days of box health (the last ones); default DEFAULT_HEALTH_DAYS, at most `days`. */
  healthDays?: number;
}

/**
 * Box health is seeded for the last 30 days unless asked for more: a year at 10,000 boxes is 29 M
 * rows and takes longer than the year's status history (see README, Seed).
 */
export const DEFAULT_HEALTH_DAYS = 30;

/** Progress of a seed: `done` of `total` units, and what is being done. */
export type SeedProgress = (done: number, total: number, step: string) => void;

export interface SeedResult {
  boxes: number;
  devices: number;
  statusEvents: number;
  boxHealthRows: number;
  /** Monthly partitions the seed made for its history. */
  partitionsCreated: string[];
  ms: number;
}

const DAY_MS = 86_400_000;

/**
 * The plan of each box: format, period, whether it is online now, and how many times it changed
 * status since its first report (`changes`: even when online now, odd when offline). One in five
 * boxes has outages, about one per 20 days (at least one to three), so history grows with its length.
 */
const PLAN_BOXES = `
  create temp table seed_box on commit drop as
  select g,
    'FGSEED' || lpad(g::text, 6, '0') || '202401010000' as license_key,
    case when g % 3 = 0 then 'old' else 'new' end as format,
    (array[30, 60, 60, 60, 120])[1 + floor(pg_temp.rnd(g, 1) * 5)::int] as period,
    pg_temp.rnd(g, 2) < 0.1 as configured,
    pg_temp.rnd(g, 3) < 0.95 as online,
    $1::timestamptz - make_interval(days => $2) - make_interval(secs => pg_temp.rnd(g, 4) * 3600) as first_at
  from generate_series(1, $3::int) g`;

const ADD_BOX_CHANGES = 'alter table seed_box add column changes int';

const PLAN_BOX_CHANGES = `
  update seed_box set changes =
    2 * (case when pg_temp.rnd(g, 5) < 0.2 then 1 + floor(pg_temp.rnd(g, 6) * greatest(3, $1::int / 10))::int else 0 end)
    + case when online then 0 else 1 end`;

/** What the history needs of each box besides its plan: its id and last report. */
const ADD_BOX_ROWS = 'alter table seed_box add column box_id int, add column last_report_at timestamptz';
const PLAN_BOX_ROWS = `
  update seed_box s set box_id = b.id, last_report_at = b.last_report_at from boxes b where b.license_key = s.license_key`;

const INSERT_BOXES = `
  insert into boxes (license_key, name, address, report_format, status, status_since, first_report_at, last_report_at,
                     report_count, observed_period_seconds, report_period_seconds, gateway, gateway_ext_data, created_at)
  select s.license_key,
    case when s.format = 'old' then 'SE5 ' || (array['north gate', 'east wing', 'depot', 'campus', 'plant'])[1 + s.g % 5] || ' ' || s.g end,
    addr.ip,
    s.format,
    case when s.online then 'online' else 'offline' end,
    last.at,
    s.first_at,
    case when s.online then $1::timestamptz - make_interval(secs => pg_temp.rnd(s.g, 8) * s.period)
         else last.at - make_interval(secs => 3 * s.period) end,
    floor(extract(epoch from $1::timestamptz - s.first_at) / s.period)::bigint,
    s.period * (0.95 + pg_temp.rnd(s.g, 9) * 0.1),
    case when s.configured then s.period end,
    case when s.format = 'old' then jsonb_build_object(
      'gateway_ip', addr.ip, 'gateway_name', 'SE5 ' || (array['north gate', 'east wing', 'depot', 'campus', 'plant'])[1 + s.g % 5] || ' ' || s.g,
      'gateway_status', 'online', 'gateway_sn', 'HQDZ' || upper(substr(md5(s.license_key), 1, 13)), 'gateway_port', 5555) end,
    case when s.format = 'old' then jsonb_build_object(
      'sw_version', (array['1.6.3', '1.7.0', '1.7.2'])[1 + s.g % 3], 'sdk_version', (array['2.5.0', '2.6.0', '2.7.0'])[1 + s.g % 3],
      'gateway_mac', regexp_replace(substr(md5(s.license_key || 'mac'), 1, 12), '(..)(?!$)', '\\1:', 'g'),
      'cpu_usage', round((5 + pg_temp.rnd(s.g, 10) * 80)::numeric, 1), 'memory_usage', round((20 + pg_temp.rnd(s.g, 11) * 60)::numeric, 1),
      'disk_usage', round((10 + pg_temp.rnd(s.g, 12) * 85)::numeric, 1), 'temperature', round((38 + pg_temp.rnd(s.g, 13) * 30)::numeric, 1)) end,
    s.first_at
  from seed_box s
  cross join lateral (select '10.' || (s.g / 62500) % 250 || '.' || (s.g / 250) % 250 || '.' || (s.g % 250 + 2) as ip) addr
  cross join lateral (select case when s.changes = 0 then s.first_at
    else ${changeAt('s.first_at', '$1::timestamptz', 's.changes', 's.changes', 's.g::int8 * 1000000 + s.changes')} end as at) last
  order by s.g`;

const INSERT_DEVICES = `
  insert into devices (box_id, external_id, name, ip, type, url, permission_id, status, status_since,
                       reported_status, reported_type, first_seen_at, updated_at, removed_at)
  select b.id,
    case when b.report_format = 'new' then md5(b.license_key || '/' || k)::uuid::text else b.license_key || '__' || a.ip end,
    (array['前门', '后门', '大厅', '电梯口', '停车场', '东侧通道', '西侧通道', '食堂', '仓库', '会议室'])[1 + (k - 1) % 10]
      || (case a.type when 'rtsp' then '摄像机' when 'photo' then '抓拍机' when 'file' then '录像' when 'gb28181' then '国标球机' else '设备' end)
      || ' ' || k,
    a.ip,
    a.type,
    case a.type when 'rtsp' then 'rtsp://' || a.ip || ':554/Streaming/Channels/101'
                when 'photo' then a.ip
                when 'file' then '/data/videos/cam' || k || '.mp4'
                when 'gb28181' then 'gb28181://34020000001320' || lpad(k::text, 6, '0')
                else 'thermal://' || a.ip end,
    md5(b.license_key || '/group/' || (k % 3))::uuid::text,
    a.status,
    a.first_seen,
    case when a.status = 'unknown' then 'error' end,
    case when a.type = 'unknown' then 'thermal' end,
    a.first_seen,
    a.first_seen,
    case when a.removed then a.first_seen end
  from boxes b
  cross join generate_series(1, $1::int) k
  cross join lateral (select
    '192.168.' || ((k - 1) / 150 + 1) || '.' || ((k - 1) % 150 + 100) as ip,
    case when r.t < 0.5 then 'rtsp' when r.t < 0.75 then 'photo' when r.t < 0.87 then 'file' when r.t < 0.995 then 'gb28181' else 'unknown' end as type,
    case when r.s < 0.86 then 'online' when r.s < 0.98 then 'offline' else 'unknown' end as status,
    r.r < 0.01 as removed,
    case when r.f < 0.9 then b.first_report_at
         else b.first_report_at + (b.last_report_at - b.first_report_at) * (r.f - 0.9) * 8 end as first_seen
    from (select pg_temp.rnd(b.id::int8 * 100000 + k, 21) as t, pg_temp.rnd(b.id::int8 * 100000 + k, 22) as s,
                 pg_temp.rnd(b.id::int8 * 100000 + k, 23) as r, pg_temp.rnd(b.id::int8 * 100000 + k, 24) as f) r) a
  order by b.id, k`;

/**
 * Each device's timeline: `changes` status changes, all in proportion to the days of history: most
 * devices one outage a month or so, a third every other day, one in twenty flapping four times a day:
 * 10,000 boxes x 16 devices make about 2.1 M events a month. Then its removal if removed; the last
 * status is the one the devices table holds.
 */
const PLAN_DEVICES = `
  create temp table seed_device on commit drop as
  select d.id, d.box_id, d.status, d.first_seen_at, b.last_report_at as end_at,
    case when d.status = 'online' then 'offline' else 'online' end as other,
    p.changes,
    p.changes + case when d.removed_at is null then 0 else 1 end as steps,
    d.removed_at is not null as removed
  from devices d join boxes b on b.id = d.box_id
  cross join lateral (select case
      when pg_temp.rnd(d.id, 30) < 0.6 then floor(pg_temp.rnd(d.id, 31) * greatest(3, $1::int / 10))::int
      when pg_temp.rnd(d.id, 30) < 0.95 then 1 + floor(pg_temp.rnd(d.id, 31) * $1::int)::int
      else 2 * $1::int + floor(pg_temp.rnd(d.id, 31) * 4 * $1::int)::int end as changes) p`;

const UPDATE_DEVICE_TIMES = `
  update devices d set
    status_since = l.at, updated_at = l.at, removed_at = case when p.removed then l.at end
  from seed_device p
  cross join lateral (select case when p.steps = 0 then p.first_seen_at
    else ${changeAt('p.first_seen_at', 'p.end_at', 'p.steps', 'p.steps', 'p.id::int8 * 1000000 + p.steps')} end as at) l
  where d.id = p.id`;

/** Boxes, devices and history already in the database. */
export async function fleetSize(
  pool: pg.Pool | pg.ClientBase,
): Promise<{ boxes: number; devices: number; statusEvents: number; boxHealthRows: number; oldestEvent: Date | null }> {
  const { rows } = await pool.query(
    `select (select count(*) from boxes)::int as boxes, (select count(*) from devices)::int as devices,
            (select count(*) from status_events)::int as "statusEvents", (select count(*) from box_health)::int as "boxHealthRows",
            (select min(at) from status_events) as "oldestEvent"`,
  );
  return rows[0];
}

/** Whether the database holds a fleet the size `options` asks for, with that many days of history (a day either way). */
export async function hasFleet(pool: pg.Pool, options: SeedOptions): Promise<boolean> {
  const size = await fleetSize(pool);
  const age = size.oldestEvent === null ? 0 : (Date.now() - size.oldestEvent.getTime()) / DAY_MS;
  return (
    size.boxes === options.boxes &&
    size.devices === options.boxes * options.devicesPerBox &&
    age >= options.days - 1 &&
    age <= options.days + 2
  );
}

/**
 * Boxes of a seeded fleet do not report. Before a gateway serves it, their last report is moved to
 * "just now" (within one period), so its offline sweep does not take every online box offline.
 */
export async function refreshOnlineBoxes(pool: pg.Pool): Promise<number> {
  const { rowCount } = await pool.query(
    `update boxes set last_report_at = now() - make_interval(secs => random() * coalesce(report_period_seconds, observed_period_seconds, 60))
     where status = 'online' and removed_at is null`,
  );
  return rowCount ?? 0;
}

/**
 * Fills an empty database (or, with `reset`, empties it first) with a fleet and its history, all
 * with set-based statements: generate_series for rows, and a plan per box and device from which the
 * history is written a day at a time in time order (event ids follow time, as had the boxes reported
 * live), into monthly partitions made first. One transaction: a failed seed leaves nothing behind but
 * empty partitions.
 */
export async function seedFleet(
  pool: pg.Pool,
  options: SeedOptions & { reset?: boolean },
  progress: SeedProgress = () => {},
): Promise<SeedResult> {
  const started = Date.now();
  const now = new Date();
  const client = await pool.connect();
  const healthDays = Math.min(options.days, options.healthDays ?? DEFAULT_HEALTH_DAYS);
  // A day of history is the unit of progress; planning weighs as much as a tenth of it.
  const historyStart = new Date(Math.floor((now.getTime() - (options.days + 1) * DAY_MS) / DAY_MS) * DAY_MS);
  const windows = Math.ceil((now.getTime() + 1 - historyStart.getTime()) / DAY_MS);
  const planning = Math.max(4, Math.ceil(windows / 10));
  const total = planning + windows + 2;
  let done = 0;
  const step = (units: number, label: string) => {
    done += units;
    progress(done, total, label);
  };
  try {
    if (options.reset) {
      progress(0, total, 'emptying the database');
      // The horizon of dropped history goes too: ids start again from 1.
      await client.query('truncate status_events, box_health, history_horizon, box_config_changes, devices, boxes restart identity cascade');
    } else {
      const size = await fleetSize(client);
      if (size.boxes > 0 || size.devices > 0 || size.statusEvents > 0) {
        throw new Error(`the database already holds ${size.boxes} boxes and ${size.devices} devices; pass --reset to replace them`);
      }
    }
    // A database from before the history was partitioned: partition it now, while it is empty (at once),
    // rather than have the gateway copy the whole seeded history at its start.
    if (!(await isPartitioned(client, 'status_events'))) await prepareHistory(pool, createLogger('warn'));
    // Before the seed's transaction: each partition is made in a short transaction of its own.
    progress(0, total, 'making monthly partitions');
    const partitionsUntil = monthStart(now, MONTHS_AHEAD);
    const partitions = [...(await ensurePartitions(client, 'box_health', historyStart, partitionsUntil))];
    if (await isPartitioned(client, 'status_events')) partitions.push(...(await ensurePartitions(client, 'status_events', historyStart, partitionsUntil)));
    await client.query('begin');
    // The data is consistent by construction; skipping foreign-key triggers halves the time (needs superuser).
    await client.query('savepoint fk');
    try {
      await client.query("set local session_replication_role = 'replica'");
      await client.query('release savepoint fk');
    } catch {
      await client.query('rollback to savepoint fk');
    }
    // Room for each day's sort in memory.
    await client.query("set local work_mem = '64MB'");
    await client.query(RANDOM_FUNCTION.replaceAll('$SEED', String(Math.trunc(options.seed) * 1_000)));
    progress(0, total, 'planning boxes');
    await client.query(PLAN_BOXES, [now, options.days, options.boxes]);
    await client.query(ADD_BOX_CHANGES);
    await client.query(PLAN_BOX_CHANGES, [options.days]);
    await client.query(INSERT_BOXES, [now]);
    await client.query(ADD_BOX_ROWS);
    await client.query(PLAN_BOX_ROWS);
    step(planning / 4, 'inserting devices');
    await client.query(INSERT_DEVICES, [options.devicesPerBox]);
    step(planning / 4, 'planning device histories');
    await client.query(PLAN_DEVICES, [options.days]);
    await client.query(UPDATE_DEVICE_TIMES);
    await client.query('analyze seed_box');
    await client.query('analyze seed_device');
    step(planning / 2, 'writing history');
    const healthFrom = new Date(now.getTime() - healthDays * DAY_MS);
    const months = new Set<string>();
    for (let day = 0; day < windows; day++) months.add(new Date(historyStart.getTime() + day * DAY_MS).toISOString().slice(0, 7));
    const monthList = [...months];
    for (let day = 0; day < windows; day++) {
      const from = new Date(historyStart.getTime() + day * DAY_MS);
      const to = new Date(from.getTime() + DAY_MS);
      await client.query(INSERT_EVENTS_OF_DAY, [from, to, now]);
      if (to > healthFrom && healthDays > 0) await client.query(INSERT_HEALTH_OF_DAY, [from, to, now, healthFrom]);
      const month = from.toISOString().slice(0, 7);
      step(1, `history of ${month} (month ${monthList.indexOf(month) + 1}/${monthList.length}${to > healthFrom && healthDays > 0 ? ', with box health' : ''})`);
    }
    await client.query('commit');
    step(1, 'analyzing');
    await client.query('analyze boxes, devices, status_events, box_health');
    step(1, 'done');
    const result = await fleetSize(client);
    return {
      boxes: result.boxes,
      devices: result.devices,
      statusEvents: result.statusEvents,
      boxHealthRows: result.boxHealthRows,
      partitionsCreated: partitions,
      ms: Date.now() - started,
    };
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
