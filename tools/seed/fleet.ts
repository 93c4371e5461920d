import type pg from 'pg';
import { ensurePartitions, isPartitioned } from '../../src/history/partitions';

/** What `npm run seed` makes: `boxes` boxes of `devicesPerBox` devices each, with `days` days of history. */
export interface SeedOptions {
  boxes: number;
  devicesPerBox: number;
  days: number;
  /** Varies the fleet; the same options and seed make the same fleet (but for `now`). */
  seed: number;
}

/** Progress of a seed: `done` of `total` units, and what is being done. */
export type SeedProgress = (done: number, total: number, step: string) => void;

export interface SeedResult {
  boxes: number;
  devices: number;
  statusEvents: number;
  ms: number;
}

/**
 * Indexes the read API's orderings and per-device/per-box histories use. They belong in a migration
 * (the lead's, see docs/graphql.md); until it lands, the seed and the query benchmark create them.
 */
// Every "random" choice is a hash of the row's number and a salt: parallel-safe, and the same seed
// gives the same fleet. rnd(n, salt) is uniform in [0, 1).
const RANDOM_FUNCTION = `
  create or replace function pg_temp.rnd(n bigint, salt int) returns float8
  language sql immutable parallel safe as
  $$ select (hashint8extended(n, salt::int8 + $SEED) & 2147483647)::float8 / 2147483648 $$`;

/**
 * The plan of each box: format, period, whether it is online now, and how many times it changed
 * status since its first report (`changes`: even when online now, odd when offline).
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

const PLAN_BOX_CHANGES = `
  alter table seed_box add column changes int;
  update seed_box set changes =
    2 * (case when pg_temp.rnd(g, 5) < 0.2 then 1 + floor(pg_temp.rnd(g, 6) * 3)::int else 0 end)
    + case when online then 0 else 1 end`;

/** The k-th change of a timeline of `changes` changes from `first_at` to `end_at`: one per stratum, in order. */
const changeAt = (first: string, end: string, changes: string, k: string, key: string) =>
  `${first} + (${end} - ${first}) * ((${k} + pg_temp.rnd(${key}, 7)) / (${changes} + 1))`;

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

const STAGE_EVENTS = `
  create temp table seed_event (box_id int, device_id int, from_status text, to_status text, at timestamptz) on commit drop`;

/** Box history: first seen online, then outages (online -> offline -> online ...), ending at its status. */
const STAGE_BOX_EVENTS = `
  insert into seed_event (box_id, device_id, from_status, to_status, at)
  select b.id, null,
    case when k = 0 then null when k % 2 = 1 then 'online' else 'offline' end,
    case when k % 2 = 1 then 'offline' else 'online' end,
    case when k = 0 then s.first_at
      else ${changeAt('s.first_at', '$1::timestamptz', 's.changes', 'k', 's.g::int8 * 1000000 + k')} end
  from seed_box s join boxes b on b.license_key = s.license_key
  cross join generate_series(0, s.changes) k`;

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
 * Each device's timeline: `changes` status changes (most devices few, some daily, a few flapping),
 * then its removal if removed; the last status is the one the devices table holds.
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
      when pg_temp.rnd(d.id, 30) < 0.6 then floor(pg_temp.rnd(d.id, 31) * 3)::int
      when pg_temp.rnd(d.id, 30) < 0.95 then 1 + floor(pg_temp.rnd(d.id, 31) * $1::int)::int
      else 2 * $1::int + floor(pg_temp.rnd(d.id, 31) * 4 * $1::int)::int end as changes) p`;

const deviceStatusAt = (k: string) =>
  `case when ${k} > p.changes then 'removed' when (p.changes - ${k}) % 2 = 0 then p.status else p.other end`;

const STAGE_DEVICE_EVENTS = `
  insert into seed_event (box_id, device_id, from_status, to_status, at)
  select p.box_id, p.id,
    case when k = 0 then null else ${deviceStatusAt('k - 1')} end,
    ${deviceStatusAt('k')},
    case when k = 0 then p.first_seen_at
      else ${changeAt('p.first_seen_at', 'p.end_at', 'p.steps', 'k', 'p.id::int8 * 1000000 + k')} end
  from seed_device p cross join generate_series(0, p.steps) k
  where p.id between $1 and $2`;

const UPDATE_DEVICE_TIMES = `
  update devices d set
    status_since = l.at, updated_at = l.at, removed_at = case when p.removed then l.at end
  from seed_device p
  cross join lateral (select case when p.steps = 0 then p.first_seen_at
    else ${changeAt('p.first_seen_at', 'p.end_at', 'p.steps', 'p.steps', 'p.id::int8 * 1000000 + p.steps')} end as at) l
  where d.id = p.id`;

const COPY_DAY = `
  insert into status_events (box_id, device_id, from_status, to_status, at)
  select box_id, device_id, from_status, to_status, at from seed_event
  where at >= $1 and at < $2 order by at`;

/** Boxes, devices and history already in the database. */
export async function fleetSize(pool: pg.Pool | pg.ClientBase): Promise<{ boxes: number; devices: number; statusEvents: number; oldestEvent: Date | null }> {
  const { rows } = await pool.query(
    `select (select count(*) from boxes)::int as boxes, (select count(*) from devices)::int as devices,
            (select count(*) from status_events)::int as "statusEvents", (select min(at) from status_events) as "oldestEvent"`,
  );
  return rows[0];
}

/** Whether the database holds a fleet the size `options` asks for. */
export async function hasFleet(pool: pg.Pool, options: SeedOptions): Promise<boolean> {
  const size = await fleetSize(pool);
  const oldestWanted = Date.now() - (options.days - 1) * 86_400_000;
  return (
    size.boxes === options.boxes &&
    size.devices === options.boxes * options.devicesPerBox &&
    size.oldestEvent !== null &&
    size.oldestEvent.getTime() <= oldestWanted
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
 * with set-based statements: generate_series for rows, one staging table for the history, which is
 * then copied into status_events in time order a day at a time, so event ids follow time as they
 * would had the boxes reported live.
 */
export async function seedFleet(
  pool: pg.Pool,
  options: SeedOptions & { reset?: boolean },
  progress: SeedProgress = () => {},
): Promise<SeedResult> {
  const started = Date.now();
  const now = new Date();
  const client = await pool.connect();
  const chunks = Math.max(1, Math.ceil((options.boxes * options.devicesPerBox) / 20_000));
  const total = 10 + 10 + chunks * 2 + options.days + 2 + 4 + 4;
  let done = 0;
  const step = (units: number, label: string) => {
    done += units;
    progress(done, total, label);
  };
  try {
    if (options.reset) {
      progress(0, total, 'emptying the database');
      await client.query('truncate status_events, box_config_changes, devices, boxes restart identity cascade');
    } else {
      const size = await fleetSize(client);
      if (size.boxes > 0 || size.devices > 0 || size.statusEvents > 0) {
        throw new Error(`the database already holds ${size.boxes} boxes and ${size.devices} devices; pass --reset to replace them`);
      }
    }
    // The months of the history need their partitions (the gateway makes only the current ones).
    if (await isPartitioned(client, 'status_events')) {
      await ensurePartitions(client, 'status_events', new Date(now.getTime() - (options.days + 2) * 86_400_000), now);
    }
    await client.query('begin');
    // The data is consistent by construction; skipping foreign-key triggers halves the time (needs superuser).
    await client.query('savepoint fk');
    try {
      await client.query("set local session_replication_role = 'replica'");
      await client.query('release savepoint fk');
    } catch {
      await client.query('rollback to savepoint fk');
    }
    await client.query(RANDOM_FUNCTION.replace('$SEED', String(Math.trunc(options.seed) * 1_000)));
    progress(0, total, 'planning boxes');
    await client.query(PLAN_BOXES, [now, options.days, options.boxes]);
    await client.query(PLAN_BOX_CHANGES);
    await client.query(INSERT_BOXES, [now]);
    await client.query(STAGE_EVENTS);
    await client.query(STAGE_BOX_EVENTS, [now]);
    step(10, 'inserting devices');
    await client.query(INSERT_DEVICES, [options.devicesPerBox]);
    step(10, 'planning device histories');
    await client.query(PLAN_DEVICES, [options.days]);
    const { rows } = await client.query('select min(id)::int as min, max(id)::int as max from seed_device');
    const min = rows[0].min ?? 1;
    const max = rows[0].max ?? 0;
    const size = Math.ceil((max - min + 1) / chunks);
    for (let i = 0; i < chunks; i++) {
      await client.query(STAGE_DEVICE_EVENTS, [min + i * size, min + (i + 1) * size - 1]);
      step(2, `generating device histories (${i + 1}/${chunks})`);
    }
    await client.query(UPDATE_DEVICE_TIMES);
    await client.query('create index on seed_event (at)');
    step(2, 'copying history in time order');
    const { rows: range } = await client.query('select min(at) as min, max(at) as max from seed_event');
    const first = new Date(range[0].min ?? now);
    const dayMs = 86_400_000;
    const days = Math.max(1, Math.ceil(((range[0].max ?? now).getTime() - first.getTime() + 1) / dayMs));
    for (let day = 0; day < days; day++) {
      const from = new Date(first.getTime() + day * dayMs);
      const to = day === days - 1 ? 'infinity' : new Date(from.getTime() + dayMs);
      await client.query(COPY_DAY, [from, to]);
      step(options.days / days, `copying history in time order (day ${day + 1}/${days})`);
    }
    await client.query('commit');
    step(4, 'analyzing');
    await client.query('analyze boxes, devices, status_events');
    step(4, 'done');
    const result = await fleetSize(client);
    return { boxes: result.boxes, devices: result.devices, statusEvents: result.statusEvents, ms: Date.now() - started };
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
