import type pg from 'pg';
import { run, sql, type SQL } from '../db/sql';
import { HEALTH_FIGURE_SOURCES, type HealthFigure } from '../models/health-figures';

/**
 * The subjects due under each rule kind, as set-based SQL over every rule of a kind at once, never
 * one statement per subject or rule. Each row is (rule_id, box_id, device_id (null for box kinds),
 * since, fires_at, value): the condition holds since `since` and has held for the rule's for_seconds
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
 *
 * Each kind's subjects are read once (a materialized CTE) and then matched to its rules, so the cost
 * is the subjects plus the (rule, subject) pairs, not a subject read per rule.
 */

const inBoxScope = (boxId: SQL) => sql`(r.box_ids is null or ${boxId} = any(r.box_ids))`;
const inTypeScope = (type: SQL) => sql`(r.device_types is null or ${type} = any(r.device_types))`;
const secondsSince = (now: Date, since: SQL) => sql`extract(epoch from (${now}::timestamptz - ${since}))::float8`;
const fires = (since: SQL) => sql`${since} + make_interval(secs => r.for_seconds)`;

/** The number a string starts with, as parseFloat reads it (a capture group: substring returns it). */
const LEADING_NUMBER = String.raw`^\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)`;

/** Each figure's key in gateway_ext_data and its valid range, as a VALUES list. */
const FIGURE_SOURCES = sql.join(
  (Object.keys(HEALTH_FIGURE_SOURCES) as HealthFigure[]).map((f) => {
    const { key, min, max } = HEALTH_FIGURE_SOURCES[f];
    return sql`(${f}::text, ${key}::text, ${min}::numeric, ${max}::numeric)`;
  }),
  sql`, `,
);

/**
 * Each box's figures that box_health rules in `rules` watch, parsed like models/health-figures.ts
 * `healthFigure`: a JSON number, or the number a string starts with (parseFloat); outside the figure's
 * range it is no value. numeric, so that "1e999" is out of range rather than an error that stops a round.
 */
const BOX_FIGURES = sql`select b.id as box_id, f.figure, coalesce(b.last_report_at, now()) as reported_at, v.value
  from (values ${FIGURE_SOURCES}) as f(figure, key, min, max)
    join boxes b on b.removed_at is null and b.gateway_ext_data ? f.key
    cross join lateral (select case jsonb_typeof(b.gateway_ext_data -> f.key)
        when 'number' then (b.gateway_ext_data ->> f.key)::numeric
        when 'string' then substring(b.gateway_ext_data ->> f.key from ${LEADING_NUMBER}::text)::numeric
      end as raw) p
    cross join lateral (select case when p.raw between f.min and f.max then p.raw::float8 end as value) v
  where f.figure in (select health_figure from rules where kind = 'box_health') and v.value is not null`;

/** (rule, box) pairs whose figure is above the rule's threshold now, with the report that shows it. */
const HEALTH_ABOVE = sql`select r.id as rule_id, h.box_id, h.value, h.reported_at
  from rules r join box_figures h on h.figure = r.health_figure and ${inBoxScope(sql`h.box_id`)}
  where r.kind = 'box_health' and h.value > r.health_threshold`;

/** CTEs the due subjects read: each kind's subjects once. To follow `rules` in a WITH. */
export function conditionCtes(now: Date): SQL {
  return sql`offline_devices as materialized (
      select d.id, d.box_id, d.type, least(case when d.status = 'offline' then d.status_since end, d.removed_at) as since
      from devices d join boxes b on b.id = d.box_id and b.removed_at is null
      where (d.status = 'offline' or d.removed_at is not null) and exists (select 1 from rules where kind = 'device_offline')),
    flap_window as materialized (
      -- one read of the longest window, bounded by at (partition pruning, status_events_at_idx)
      select e.device_id, min(e.box_id) as box_id, array_agg(e.at order by e.at, e.id) as changes
      from status_events e
      where e.at > ${now}::timestamptz - make_interval(secs => (select max(flap_window_seconds) from rules where kind = 'device_flapping'))
        and e.at <= ${now}::timestamptz and e.device_id is not null and e.from_status is not null
      group by e.device_id
      having count(*) >= (select min(flap_changes) from rules where kind = 'device_flapping')),
    box_figures as materialized (${BOX_FIGURES})`;
}

/** The union of every kind's due subjects, for the enabled rules in `rules` (after conditionCtes). */
export function dueSubjects(now: Date): SQL {
  return sql`
    select r.id as rule_id, d.box_id, d.id as device_id, d.since, ${fires(sql`d.since`)} as fires_at, ${secondsSince(now, sql`d.since`)} as value
      from rules r join offline_devices d on ${inBoxScope(sql`d.box_id`)} and ${inTypeScope(sql`d.type`)}
      where r.kind = 'device_offline' and ${fires(sql`d.since`)} <= ${now}::timestamptz
    union all
    select r.id, b.id, null::integer, b.status_since, ${fires(sql`b.status_since`)}, ${secondsSince(now, sql`b.status_since`)}
      from rules r join boxes b on b.status = 'offline' and b.removed_at is null and ${inBoxScope(sql`b.id`)}
      where r.kind = 'box_offline' and ${fires(sql`b.status_since`)} <= ${now}::timestamptz
    union all
    select r.id, d.box_id, d.id, c.since, c.fires_at, c.changes::float8
      from rules r
        join flap_window w on ${inBoxScope(sql`w.box_id`)} and cardinality(w.changes) >= r.flap_changes
        cross join lateral (
          select count(*) as changes, min(t) as since, (array_agg(t order by t))[r.flap_changes] as fires_at
          from unnest(w.changes) as t where t > ${now}::timestamptz - make_interval(secs => r.flap_window_seconds)) c
        join devices d on d.id = w.device_id and d.removed_at is null and ${inTypeScope(sql`d.type`)}
        join boxes b on b.id = d.box_id and b.removed_at is null
      where r.kind = 'device_flapping' and c.changes >= r.flap_changes
    union all
    select r.id, h.box_id, null::integer, p.since, ${fires(sql`p.since`)}, h.value
      from (${HEALTH_ABOVE}) h
        join rules r on r.id = h.rule_id
        join alert_pending p on p.rule_id = h.rule_id and p.subject = 'box:' || h.box_id
      where ${fires(sql`p.since`)} <= ${now}::timestamptz`;
}

/**
 * Keeps alert_pending for box_health rules matching `ruleFilter` (on alias `r`): a figure newly above
 * its threshold is remembered with the report that first showed it, one no longer above (or whose
 * rule is disabled, deleted or out of scope) is forgotten. Runs before the due subjects are read.
 */
export async function keepHealthPending(client: pg.ClientBase, ruleFilter: SQL): Promise<void> {
  await run(
    client,
    sql`with rules as materialized (select * from alert_rules r where r.enabled and r.deleted_at is null and ${ruleFilter}),
        box_figures as materialized (${BOX_FIGURES}),
        above as (select rule_id, 'box:' || box_id as subject, reported_at from (${HEALTH_ABOVE}) h),
        forgotten as (
          delete from alert_pending p using alert_rules r
          where r.id = p.rule_id and ${ruleFilter}
            and not exists (select 1 from above a where a.rule_id = p.rule_id and a.subject = p.subject))
        insert into alert_pending (rule_id, subject, since)
        select rule_id, subject, reported_at from above
        on conflict (rule_id, subject) do nothing`,
  );
}
