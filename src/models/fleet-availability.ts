import type pg from 'pg';
import { selectRows, sql, type SQL } from '../db/sql';
import type { MeasuredRange } from './availability';
import type { PageWindow } from './query-parts';

// The fleet's device-time over a range, without following any device's history in order: how many
// devices were in a state at an instant t is how many are in it now, less the net changes of the
// events after t. So the counts at `since`, and the integral of each count over a bucket, are sums
// over the events in [since, now) and one count of the devices table, read in one statement (one
// snapshot). The cost grows with the time from `since` to now, never with the history before it.

/** Device-seconds spent in each state during one bucket, clipped to the range. */
export interface FleetBucket {
  start: Date;
  end: Date;
  onlineSeconds: number;
  offlineSeconds: number;
  unknownSeconds: number;
  /** Online + offline + unknown: device-time of listed devices. */
  observedSeconds: number;
}

/** +1 when a change enters `state`, -1 when it leaves it (a first sighting leaves nothing). */
const delta = (state: string) => sql`(case when to_status = ${state} then 1 else 0 end - case when from_status = ${state} then 1 else 0 end)`;

/** Device events from `since` on (to now: the counts at `since` need every later one), of boxes not removed. */
const DEVICE_EVENTS_SINCE = (since: SQL) => sql`status_events e
  where e.at >= ${since} and e.device_id is not null
    and not exists (select from boxes b where b.id = e.box_id and b.removed_at is not null)`;

/**
 * Device-time of the fleet (devices of removed boxes left out) in each UTC-aligned bucket of
 * `bucketSeconds` overlapping `range`, in one statement. In a bucket [s, e), a state's count starts at
 * N(s) and each change at a inside adds Δ for (e − a) seconds: ∫ = N(s)·(e − s) + e·ΣΔ − Σ(Δ·a).
 * The events are first folded per bucket and kind of change (from, to), so the work per event is a
 * subtraction and a hash lookup; instants are seconds after `since` (float8: exact to well under a ms).
 */
export async function fleetAvailabilityBuckets(pool: pg.Pool, range: MeasuredRange, bucketSeconds: number): Promise<FleetBucket[]> {
  const size = bucketSeconds * 1000;
  const origin = new Date(Math.floor(range.since.getTime() / size) * size);
  const buckets = Math.max(1, Math.ceil((range.until.getTime() - origin.getTime()) / size));
  const since = sql`${range.since}::timestamptz`;
  const step = sql`${bucketSeconds}::float8`;
  // Seconds from `since` to the range's end and to the first bucket's start (zero or less).
  const span = sql`${(range.until.getTime() - range.since.getTime()) / 1000}::float8`;
  const offset = sql`${(origin.getTime() - range.since.getTime()) / 1000}::float8`;
  const rows = await selectRows<{ bucket: number; online: number; offline: number; unknown: number }>(
    pool,
    sql`with fleet_now as (
          select count(*) filter (where d.removed_at is null and d.status = 'online') as online,
                 count(*) filter (where d.removed_at is null and d.status = 'offline') as offline,
                 count(*) filter (where d.removed_at is null and d.status = 'unknown') as unknown
          from devices d join boxes b on b.id = d.box_id where b.removed_at is null),
        changes as (
          select case when t < ${span} then floor((t - ${offset}) / ${step})::int end as bucket, from_status, to_status,
                 count(*) as n, sum(t) as t
          from (select date_part('epoch', e.at - ${since}) as t, e.from_status, e.to_status from ${DEVICE_EVENTS_SINCE(since)}) e
          group by 1, 2, 3),
        per_bucket as (
          select bucket, sum(n * ${delta('online')}) as online, sum(n * ${delta('offline')}) as offline, sum(n * ${delta('unknown')}) as unknown,
                 sum(t * ${delta('online')}) as online_t, sum(t * ${delta('offline')}) as offline_t, sum(t * ${delta('unknown')}) as unknown_t
          from changes group by bucket),
        at_since as (
          select f.online - coalesce(sum(p.online), 0) as online, f.offline - coalesce(sum(p.offline), 0) as offline,
                 f.unknown - coalesce(sum(p.unknown), 0) as unknown
          from fleet_now f left join per_bucket p on true group by f.online, f.offline, f.unknown),
        series as (
          select i, greatest(i * ${step} + ${offset}, 0) as s, least((i + 1) * ${step} + ${offset}, ${span}) as e,
                 coalesce(p.online, 0) as online, coalesce(p.offline, 0) as offline, coalesce(p.unknown, 0) as unknown,
                 coalesce(p.online_t, 0) as online_t, coalesce(p.offline_t, 0) as offline_t, coalesce(p.unknown_t, 0) as unknown_t,
                 -- Net changes in the buckets before this one: the counts at its start are at_since plus these.
                 coalesce(sum(p.online) over earlier, 0) as online_before, coalesce(sum(p.offline) over earlier, 0) as offline_before,
                 coalesce(sum(p.unknown) over earlier, 0) as unknown_before
          from generate_series(0, ${buckets - 1}) as i left join per_bucket p on p.bucket = i
          window earlier as (order by i rows between unbounded preceding and 1 preceding))
        select x.i as bucket,
          ((a.online + x.online_before) * (x.e - x.s) + x.e * x.online - x.online_t)::float8 as online,
          ((a.offline + x.offline_before) * (x.e - x.s) + x.e * x.offline - x.offline_t)::float8 as offline,
          ((a.unknown + x.unknown_before) * (x.e - x.s) + x.e * x.unknown - x.unknown_t)::float8 as unknown
        from series x, at_since a order by x.i`,
  );
  return rows.map((row) => {
    const start = Math.max(origin.getTime() + row.bucket * size, range.since.getTime());
    const end = Math.min(origin.getTime() + (row.bucket + 1) * size, range.until.getTime());
    return {
      start: new Date(start),
      end: new Date(Math.max(start, end)),
      onlineSeconds: row.online,
      offlineSeconds: row.offline,
      unknownSeconds: row.unknown,
      observedSeconds: row.online + row.offline + row.unknown,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// The devices with the most time offline: a device's offline time over [since, until) is, in the
// same way, [offline at since]·(until − since) + Σ Δ·(until − a) over its events in the range, and
// whether it was offline at since is its status now less the net changes of its events since then.
// Only devices with an event since `since` or offline now can have any: one aggregate per device.
// Times are whole microseconds (int8), so the order, and the cursors that resume it, are exact.

export interface OfflineRank {
  deviceId: number;
  offlineMicroseconds: number;
}

function offlineRanking(range: MeasuredRange): SQL {
  const since = sql`${range.since}::timestamptz`;
  const until = sql`${range.until}::timestamptz`;
  const spanMicroseconds = (range.until.getTime() - range.since.getTime()) * 1000;
  return sql`with changes as (
      select device_id as id, sum(${delta('offline')}) as net_since,
             sum(${delta('offline')} * round(date_part('epoch', ${until} - at) * 1e6)::int8) filter (where at < ${until}) as weighted
      from (select e.device_id, e.from_status, e.to_status, e.at from status_events e where e.at >= ${since} and e.device_id is not null) e
      group by device_id),
    ranked as (
      select d.id, ((case when d.status = 'offline' and d.removed_at is null then 1 else 0 end - coalesce(c.net_since, 0))
                   * ${spanMicroseconds}::int8 + coalesce(c.weighted, 0))::int8 as offline
      from devices d join boxes b on b.id = d.box_id left join changes c on c.id = d.id
      where b.removed_at is null and (c.id is not null or (d.status = 'offline' and d.removed_at is null)))
    select id, offline from ranked where offline > 0`;
}

/** Rows after the position (microseconds, device id): descending time then ascending id is ascending (−time, id). */
export function offlineRankAfter(offlineMicroseconds: number, deviceId: number): SQL {
  return sql`(-r.offline, r.id) > (-(${offlineMicroseconds}::int8), ${deviceId}::int4)`;
}

/** A page of devices with time offline in `range`, most first (ties by device id): one statement. */
export async function devicesByTimeOffline(pool: pg.Pool, range: MeasuredRange, window: PageWindow): Promise<OfflineRank[]> {
  const rows = await selectRows<{ deviceId: number; offline: string }>(
    pool,
    sql`select r.id as "deviceId", r.offline from (${offlineRanking(range)}) r
        where ${window.after ?? sql`true`} order by r.offline desc, r.id limit ${window.size + 1}`,
  );
  return rows.map((row) => ({ deviceId: row.deviceId, offlineMicroseconds: Number(row.offline) }));
}

/** How many devices had any time offline in `range`. */
export function countDevicesWithTimeOfflineQuery(range: MeasuredRange): SQL {
  return sql`select count(*)::int as count from (${offlineRanking(range)}) r`;
}
