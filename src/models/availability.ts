import type pg from 'pg';
import { selectRows, sql, type SQL } from '../db/sql';

/**
 * How a device or box spent a time range, from its status history. States: online, offline, unknown
 * (devices only), removed, and "not there yet" (before it was first seen): the last two are not
 * observed. Times are seconds; `outages` are offline periods overlapping the range.
 */
export interface Availability {
  observedSeconds: number;
  onlineSeconds: number;
  offlineSeconds: number;
  unknownSeconds: number;
  outages: number;
  longestOutageSeconds: number;
}

/** A range as the models measure it: `until` no later than now, never before `since`. */
export interface MeasuredRange {
  since: Date;
  until: Date;
}

/** `until` cut at `now` (time to come is not observed), and never before `since`. */
export function measuredRange(range: { since: Date; until: Date }, now: Date): MeasuredRange {
  const until = Math.min(range.until.getTime(), now.getTime());
  return { since: range.since, until: new Date(Math.max(until, range.since.getTime())) };
}

export const NOTHING_OBSERVED: Availability = {
  observedSeconds: 0,
  onlineSeconds: 0,
  offlineSeconds: 0,
  unknownSeconds: 0,
  outages: 0,
  longestOutageSeconds: 0,
};

/** What differs between a device's history and a box's: who they are now, and which events are theirs. */
interface Subject {
  /** `id` and `now_state` (its state after its last event: null if it never came to be) of the ids asked for. */
  current: (ids: readonly number[]) => SQL;
  /** The subject's events, as a condition on `e` given its id. */
  eventsOf: (id: SQL) => SQL;
}

const DEVICE: Subject = {
  // Devices of removed boxes are hidden with their box, as the rest of the history is.
  current: (ids) => sql`select d.id, case when d.removed_at is not null then 'removed' else d.status end as now_state
    from devices d join boxes b on b.id = d.box_id
    where d.id = any(${sql.param(ids)}::int4[]) and b.removed_at is null`,
  eventsOf: (id) => sql`e.device_id = ${id}`,
};

const BOX: Subject = {
  // A registered box that never reported has no history yet (its first report is its first event).
  current: (ids) => sql`select b.id, case when b.last_report_at is null then null else b.status end as now_state
    from boxes b where b.id = any(${sql.param(ids)}::int4[]) and b.removed_at is null`,
  eventsOf: (id) => sql`e.box_id = ${id} and e.device_id is null`,
};

/**
 * Availability of each subject over `range`, in one statement. The state at `since` is the
 * `from_status` of the subject's first event at or after `since` (its current state when it has
 * none), so nothing before `since` is read: retention may have dropped it, and the cost stays that of
 * the range. Every read of `status_events` is bounded below by `at >= since`, so older partitions are
 * pruned. Durations are exact (numeric seconds), then returned as floats.
 */
function availabilityOf(pool: pg.Pool, subject: Subject, ids: readonly number[], range: MeasuredRange): Promise<Map<number, Availability>> {
  const since = sql`${range.since}::timestamptz`;
  const until = sql`${range.until}::timestamptz`;
  return selectRows<{ id: number } & Availability>(
    pool,
    sql`with subject as (${subject.current(ids)}),
        opening as (
          select s.id, case when first_event.at is null then s.now_state else first_event.from_status end as state
          from subject s left join lateral (
            select e.at, e.from_status from status_events e
            where ${subject.eventsOf(sql`s.id`)} and e.at >= ${since}
            order by e.at, e.id limit 1
          ) first_event on true),
        points as (
          select o.id, ${since} as at, 0::int8 as event_id, o.state from opening o
          union all
          select s.id, e.at, e.id, e.to_status from subject s
          join status_events e on ${subject.eventsOf(sql`s.id`)} and e.at >= ${since} and e.at < ${until}),
        spans as (
          select id, state, extract(epoch from coalesce(lead(at) over (partition by id order by at, event_id), ${until}) - at) as seconds
          from points)
        select id,
          coalesce(sum(seconds) filter (where state in ('online', 'offline', 'unknown')), 0)::float8 as "observedSeconds",
          coalesce(sum(seconds) filter (where state = 'online'), 0)::float8 as "onlineSeconds",
          coalesce(sum(seconds) filter (where state = 'offline'), 0)::float8 as "offlineSeconds",
          coalesce(sum(seconds) filter (where state = 'unknown'), 0)::float8 as "unknownSeconds",
          -- An outage that ended exactly at since (or began at until) does not overlap the range.
          (count(*) filter (where state = 'offline' and seconds > 0))::int as outages,
          coalesce(max(seconds) filter (where state = 'offline'), 0)::float8 as "longestOutageSeconds"
        from spans group by id`,
  ).then((rows) => new Map(rows.map(({ id, ...availability }) => [id, availability])));
}

/** Availability of each device in `deviceIds` (of listed boxes) over `range`, in one statement. */
export function deviceAvailability(pool: pg.Pool, deviceIds: readonly number[], range: MeasuredRange): Promise<Map<number, Availability>> {
  return availabilityOf(pool, DEVICE, deviceIds, range);
}

/** Availability of each listed box in `boxIds` over `range` (its own status, not its devices'), in one statement. */
export function boxAvailability(pool: pg.Pool, boxIds: readonly number[], range: MeasuredRange): Promise<Map<number, Availability>> {
  return availabilityOf(pool, BOX, boxIds, range);
}
