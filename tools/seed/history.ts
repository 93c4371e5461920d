// The seeded history, written a day at a time in time order (so event ids follow time, as when boxes
// report live) from the plans in the temp tables seed_box and seed_device (see fleet.ts).
import { changeAt, changesBetween, changesDoneBy } from './timeline';

/** Random key of a box's k-th status change. */
const boxChangeKey = (k: string) => `s.g::int8 * 1000000 + ${k}`;

/** A device's status after its k-th step: alternating back to its current status, then removed if it was. */
const deviceStatusAt = (k: string) =>
  `case when ${k} > p.changes then 'removed' when (p.changes - ${k}) % 2 = 0 then p.status else p.other end`;

/**
 * Status events of [$1, $2): boxes first seen online, then outages (online -> offline -> online ...)
 * ending at their status; devices first seen, then changes ending at their status (and removal).
 * $3 is the seed's `now`, where every box timeline ends.
 */
export const INSERT_EVENTS_OF_DAY = `
  insert into status_events (box_id, device_id, from_status, to_status, at)
  select box_id, device_id, from_status, to_status, at from (
    select s.box_id, null::int as device_id,
      case when k = 0 then null when k % 2 = 1 then 'online' else 'offline' end as from_status,
      case when k % 2 = 1 then 'offline' else 'online' end as to_status,
      case when k = 0 then s.first_at else ${changeAt('s.first_at', '$3::timestamptz', 's.changes', 'k', boxChangeKey('k'))} end as at
    from seed_box s
    cross join lateral ${changesBetween('s.first_at', '$3::timestamptz', 's.changes', '$1::timestamptz', '$2::timestamptz')} k
    union all
    select p.box_id, p.id,
      case when k = 0 then null else ${deviceStatusAt('k - 1')} end,
      ${deviceStatusAt('k')},
      case when k = 0 then p.first_seen_at else ${changeAt('p.first_seen_at', 'p.end_at', 'p.steps', 'k', 'p.id::int8 * 1000000 + k')} end
    from seed_device p
    cross join lateral ${changesBetween('p.first_seen_at', 'p.end_at', 'p.steps', '$1::timestamptz', '$2::timestamptz')} k
  ) e
  where at >= $1 and at < $2
  order by at`;

/** Random key of a box's hour of health. */
const HOUR_KEY = `s.g::int8 * 1000000 + (extract(epoch from h.hour)::int8 / 3600)`;

/**
 * The i-th (0 to 19) uniform number in [0, 1) of a box's hour: 16 bits each of two hashes, one hash
 * per four numbers rather than one each (the hashes are most of the cost of a health row).
 */
const hourRandom = (i: number) => `((z.h${i >> 2} >> ${16 * (i & 3)}) & 65535)::float8 / 65536`;

/**
 * One figure's min/max/sum/count columns from the hour's average `avg`. `gap`: the figure was not
 * sent that hour, so count 0 and nulls, never zeros.
 */
function figure(avg: string, spread: number, bounds: [number, number] | undefined, gap: string, random: number): string {
  const clamp = (e: string) => (bounds ? `least(${bounds[1]}, greatest(${bounds[0]}, ${e}))` : e);
  return `
      case when ${gap} then null else ${clamp(`${avg} - ${spread} * ${hourRandom(random)}`)} end,
      case when ${gap} then null else ${clamp(`${avg} + ${spread} * ${hourRandom(random + 1)}`)} end,
      case when ${gap} then null else ${avg} * r.reports end,
      case when ${gap} then 0 else r.reports end`;
}

/**
 * Health of older boxes for the hours of [$1, $2) from $4 on: one row per box per hour it was online
 * (none while it was offline, and the odd hour with no report), figures around the box's own level
 * with a daily cycle; the odd figure missing for an hour, and on a few boxes the temperature sensor
 * quits for good. $3 is the seed's `now`.
 */
export const INSERT_HEALTH_OF_DAY = `
  insert into box_health (box_id, hour, reports,
    cpu_min, cpu_max, cpu_sum, cpu_count, memory_min, memory_max, memory_sum, memory_count,
    disk_min, disk_max, disk_sum, disk_count, temperature_min, temperature_max, temperature_sum, temperature_count)
  select s.box_id, h.hour, r.reports,
    ${figure('v.cpu', 15, [0, 100], `${hourRandom(0)} < 0.01`, 9)},
    ${figure('v.memory', 5, [0, 100], `${hourRandom(1)} < 0.01`, 11)},
    ${figure('v.disk', 0.5, [0, 100], `${hourRandom(2)} < 0.01`, 13)},
    ${figure('v.temperature', 3, undefined, `(${hourRandom(3)} < 0.01 or (pg_temp.rnd(s.g, 45) < 0.05
         and h.hour > s.first_at + ($3::timestamptz - s.first_at) * pg_temp.rnd(s.g, 46)))`, 15)}
  from seed_box s
  cross join lateral generate_series(date_trunc('hour', greatest($1::timestamptz, $4::timestamptz, s.first_at)),
                                     least($2::timestamptz - interval '1 hour', s.last_report_at), interval '1 hour') h(hour)
  cross join lateral (select ${[0, 1, 2, 3, 4].map((j) => `pg_temp.hash(${HOUR_KEY}, ${100 + j}) as h${j}`).join(', ')}) z
  cross join lateral (select floor(3600 / s.period * (0.97 + 0.03 * ${hourRandom(4)}))::int as reports,
                             extract(hour from h.hour at time zone 'UTC') as hod) r
  cross join lateral (select
      least(100, greatest(0, 5 + pg_temp.rnd(s.g, 10) * 80 + 10 * sin(pi() * (r.hod - 8) / 12) + 6 * (${hourRandom(5)} - 0.5))) as cpu,
      least(100, greatest(0, 20 + pg_temp.rnd(s.g, 11) * 60 + 4 * sin(pi() * (r.hod - 10) / 12) + 4 * (${hourRandom(6)} - 0.5))) as memory,
      least(100, greatest(1, 10 + pg_temp.rnd(s.g, 12) * 85 - extract(epoch from $3::timestamptz - h.hour) / 86400 * 0.02)) as disk,
      38 + pg_temp.rnd(s.g, 13) * 30 + 3 * sin(pi() * (r.hod - 14) / 12) + 2 * (${hourRandom(7)} - 0.5) as temperature) v
  where s.format = 'old'
    and ${changesDoneBy('s.first_at', '$3::timestamptz', 's.changes', "h.hour + interval '30 minutes'", boxChangeKey)} % 2 = 0
    and ${hourRandom(8)} >= 0.003
  order by h.hour, s.box_id`;
