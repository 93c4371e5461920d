import { run, sql, type SQL } from '../db/sql';
import { HEALTH_FIGURE_SOURCES, type HealthFigure } from '../models/health-figures';
import type pg from 'pg';

/**
 * The subjects due under each rule kind, as set-based SQL: one query per kind over every rule of the
 * kind at once, never one per subject. Each yields (rule_id, subject, box_id, device_id, since,
 * fires_at, value): the condition holds since `since` and has held for the rule's for_seconds
 * (`fires_at` = since + for_seconds <= now). `rules` is a CTE of the enabled rules being evaluated.
 *
 * - device_offline: device status 'offline' or gone from its box's list (removed_at), its box not
 *   removed; since = status_since (offline), removed_at (gone), the earlier when both; value = seconds
 *   held. A silent box's devices keep their last status: box_offline is the rule for that.
 * - box_offline: box status 'offline', not removed; since = status_since; value = seconds held.
 * - device_flapping: at least flap_changes status changes (device events with a from_status) in the
 *   trailing flap_window_seconds; since = the first counted, fires_at = the N-th; value = changes.
 * - box_health: the figure of the box's last report is above the threshold; since = when first seen
 *   above (alert_pending, kept by `keepHealthPending`); value = the figure.
 * Scope: box_ids (null = all) for every kind, device_types (null = all) for device kinds.
 */

const inBoxScope = (boxId: SQL) => sql`(r.box_ids is null or ${boxId} = any(r.box_ids))`;
const inTypeScope = (type: SQL) => sql`(r.device_types is null or ${type} = any(r.device_types))`;
const secondsSince = (now: Date, since: SQL) => sql`extract(epoch from (${now}::timestamptz - ${since}))::float8`;

/** The number a string starts with, as parseFloat reads it (a capture group: substring returns it). */
const LEADING_NUMBER = String.raw`^\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)`;

/**
 * A box's health figure as numeric, parsed like models/health-figures.ts `healthFigure`: a JSON
 * number, or the number a string starts with (parseFloat); outside the figure's range it is null.
 * numeric (not float8) so that a string like "1e999" is out of range, not an error that stops a round.
 */
function healthFigureSql(extData: SQL, figure: SQL): SQL {
  const cases = (pick: (f: HealthFigure) => SQL) =>
    sql.join(
      (Object.keys(HEALTH_FIGURE_SOURCES) as HealthFigure[]).map((f) => sql`when ${f} then ${pick(f)}`),
      sql` `,
    );
  const key = sql`case ${figure} ${cases((f) => sql`${HEALTH_FIGURE_SOURCES[f].key}::text`)} end`;
  const min = sql`case ${figure} ${cases((f) => sql`${HEALTH_FIGURE_SOURCES[f].min}::numeric`)} end`;
  const max = sql`case ${figure} ${cases((f) => sql`${HEALTH_FIGURE_SOURCES[f].max}::numeric`)} end`;
  const raw = sql`(${extData} -> ${key})`;
  const parsed = sql`(case jsonb_typeof(${raw})
      when 'number' then (${raw})::text::numeric
      when 'string' then substring(${raw} #>> '{}' from ${LEADING_NUMBER}::text)::numeric
    end)`;
  return sql`(select case when v between ${min} and ${max} then v::float8 end from (select ${parsed} as v) as figure)`;
}

/** Boxes whose figure is above their box_health rule's threshold now, with the report that shows it. */
function healthAbove(now: Date): SQL {
  return sql`select r.id as rule_id, 'box:' || b.id as subject, b.id as box_id, h.value,
      coalesce(b.last_report_at, ${now}::timestamptz) as reported_at
    from (select * from rules where kind = 'box_health') r
      join boxes b on b.removed_at is null and b.gateway_ext_data is not null and ${inBoxScope(sql`b.id`)}
      cross join lateral (select ${healthFigureSql(sql`b.gateway_ext_data`, sql`r.health_figure`)} as value) h
    where h.value > r.health_threshold`;
}

/** The union of every kind's due subjects, for the enabled rules in the CTE `rules`. */
export function dueSubjects(now: Date): SQL {
  const fires = (since: SQL) => sql`${since} + make_interval(secs => r.for_seconds)`;
  return sql`
    select r.id as rule_id, 'device:' || d.id as subject, d.box_id, d.id as device_id, c.since, ${fires(sql`c.since`)} as fires_at,
        ${secondsSince(now, sql`c.since`)} as value
      from (select * from rules where kind = 'device_offline') r
        join devices d on (d.status = 'offline' or d.removed_at is not null) and ${inBoxScope(sql`d.box_id`)} and ${inTypeScope(sql`d.type`)}
        join boxes b on b.id = d.box_id and b.removed_at is null
        cross join lateral (select least(case when d.status = 'offline' then d.status_since end, d.removed_at) as since) c
      where ${fires(sql`c.since`)} <= ${now}::timestamptz
    union all
    select r.id, 'box:' || b.id, b.id, null::integer, b.status_since, ${fires(sql`b.status_since`)}, ${secondsSince(now, sql`b.status_since`)}
      from (select * from rules where kind = 'box_offline') r
        join boxes b on b.status = 'offline' and b.removed_at is null and ${inBoxScope(sql`b.id`)}
      where ${fires(sql`b.status_since`)} <= ${now}::timestamptz
    union all
    select r.id, 'device:' || d.id, d.box_id, d.id, f.since, f.fires_at, f.changes::float8
      from (select * from rules where kind = 'device_flapping') r
        cross join lateral (
          -- bounded by at: only the window's partitions and index range are read
          select e.device_id, min(e.at) as since, (array_agg(e.at order by e.at, e.id))[r.flap_changes] as fires_at, count(*) as changes
          from status_events e
          where e.at > ${now}::timestamptz - make_interval(secs => r.flap_window_seconds) and e.at <= ${now}::timestamptz
            and e.device_id is not null and e.from_status is not null and ${inBoxScope(sql`e.box_id`)}
          group by e.device_id
          having count(*) >= r.flap_changes) f
        join devices d on d.id = f.device_id and d.removed_at is null and ${inTypeScope(sql`d.type`)}
        join boxes b on b.id = d.box_id and b.removed_at is null
    union all
    select r.id, h.subject, h.box_id, null::integer, p.since, ${fires(sql`p.since`)}, h.value
      from (${healthAbove(now)}) h
        join rules r on r.id = h.rule_id
        join alert_pending p on p.rule_id = h.rule_id and p.subject = h.subject
      where ${fires(sql`p.since`)} <= ${now}::timestamptz`;
}

/**
 * Keeps alert_pending for box_health rules matching `ruleFilter` (on alias `r`): a figure newly above
 * its threshold is remembered with the report that first showed it, one no longer above (or whose
 * rule is disabled, deleted or out of scope) is forgotten. Runs before the due subjects are read.
 */
export async function keepHealthPending(client: pg.ClientBase, now: Date, ruleFilter: SQL): Promise<void> {
  await run(
    client,
    sql`with rules as (select * from alert_rules r where r.enabled and r.deleted_at is null and ${ruleFilter}),
        above as (${healthAbove(now)}),
        forgotten as (
          delete from alert_pending p using alert_rules r
          where r.id = p.rule_id and ${ruleFilter}
            and not exists (select 1 from above a where a.rule_id = p.rule_id and a.subject = p.subject))
        insert into alert_pending (rule_id, subject, since)
        select rule_id, subject, reported_at from above
        on conflict (rule_id, subject) do nothing`,
  );
}
