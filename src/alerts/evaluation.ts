import type pg from 'pg';
import type { AlertResolution } from '../db/schema';
import { run, sql, type SQL } from '../db/sql';
import type { AlertChangeInput } from './changes';
import { conditionCtes, dueSubjects, keepHealthPending } from './conditions';

/**
 * Transaction advisory lock taken first by every evaluation round and every rule write: a rule
 * change and a round never interleave (nor deadlock), so "one open alert per rule and subject" and
 * the rule's current definition are always judged together.
 */
export const EVALUATION_LOCK = 0x666c_6772; // "flgr"

export async function lockEvaluation(client: pg.ClientBase): Promise<void> {
  await run(client, sql`select pg_advisory_xact_lock(${EVALUATION_LOCK})`);
}

export interface EvaluationScope {
  /** Evaluate this rule only (a rule write); all rules when absent (a round). */
  ruleId?: number;
  /** Why an open alert no longer due resolves: `cleared` in a round, `rule_changed` after a rule update. */
  notDue: Extract<AlertResolution, 'cleared' | 'rule_changed'>;
}

/**
 * Evaluates rules in the caller's transaction (which holds EVALUATION_LOCK) at `now`: due subjects
 * without an open alert fire; open alerts no longer due resolve (`subject_removed` when the box or
 * device was removed or deleted, else `scope.notDue`); open alerts of a disabled or deleted rule
 * resolve `rule_disabled` / `rule_deleted`; open alerts still due take the rule's severity. Returns
 * the changes for recordAlertChanges, which the caller runs last.
 */
export async function evaluateRules(client: pg.ClientBase, now: Date, scope: EvaluationScope): Promise<AlertChangeInput[]> {
  const ruleFilter: SQL = scope.ruleId === undefined ? sql`true` : sql`r.id = ${scope.ruleId}`;
  // The round matches every due subject against every open alert (hash joins of ~10^5 rows at
  // 10,000 boxes x 16 devices): enough memory that they do not spill to disk.
  await run(client, sql`set local work_mem = '32MB'`);
  await keepHealthPending(client, ruleFilter);
  const subjectGone = sql`(not exists (select 1 from boxes b where b.id = a.box_id and b.removed_at is null)
    or (a.device_id is not null and not exists (select 1 from devices d where d.id = a.device_id and d.removed_at is null)))`;
  const { rows } = await run<{ id: string; kind: 'fired' | 'resolved' }>(
    client,
    sql`with rules as materialized (select * from alert_rules r where r.enabled and r.deleted_at is null and ${ruleFilter}),
        ${conditionCtes(now)},
        due as (select *, coalesce(device_id, -box_id) as subject_key from (${dueSubjects(now)}) as d),
        -- subject_key: the subject as one integer (device id, or minus the box id), cheaper to match than its text
        open as (
          select a.id, a.rule_id, coalesce(a.device_id, -a.box_id) as subject_key, a.severity from alerts a join alert_rules r on r.id = a.rule_id
          where a.state <> 'resolved' and ${ruleFilter}),
        -- One match of due subjects with open alerts: due without open fires, open without due resolves.
        matched as materialized (
          select d.rule_id, d.box_id, d.device_id, d.since, d.fires_at, d.value, d.subject_key, o.id as open_id, o.rule_id as open_rule_id, o.severity as open_severity
          from due d full join open o on o.rule_id = d.rule_id and o.subject_key = d.subject_key),
        fired as (
          insert into alerts (rule_id, subject, box_id, device_id, state, severity, value, condition_since, fires_at, fired_at, next_repeat_at, updated_at)
          select m.rule_id, case when m.device_id is null then 'box:' || m.box_id else 'device:' || m.device_id end, m.box_id, m.device_id,
            'firing', r.severity, m.value, m.since, m.fires_at, ${now}, ${now}::timestamptz + make_interval(secs => r.repeat_interval_seconds), ${now}
          from matched m join rules r on r.id = m.rule_id
          where m.open_id is null
          order by m.fires_at, m.rule_id, m.subject_key
          on conflict (rule_id, subject) where state <> 'resolved' do nothing
          returning id),
        resolved as (
          update alerts a set state = 'resolved', resolved_at = ${now}, updated_at = ${now}, next_repeat_at = null,
            resolution = case when r.deleted_at is not null then 'rule_deleted' when not r.enabled then 'rule_disabled'
              when ${subjectGone} then 'subject_removed' else ${scope.notDue}::text end
          from matched m join alert_rules r on r.id = m.open_rule_id
          where a.id = m.open_id and m.rule_id is null
          returning a.id),
        reclassed as (
          update alerts a set severity = r.severity, updated_at = ${now}
          from matched m join rules r on r.id = m.rule_id
          where a.id = m.open_id and m.open_severity <> r.severity)
        select id::text, 'resolved' as kind from resolved
        union all
        select id::text, 'fired' from fired
        order by kind desc, id`,
  );
  return rows.map((r) => ({ alertId: Number(r.id), kind: r.kind }));
}
