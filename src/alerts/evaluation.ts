import type pg from 'pg';
import type { AlertResolution } from '../db/schema';
import { run, sql, type SQL } from '../db/sql';
import type { AlertChangeInput } from './changes';
import { dueSubjects, keepHealthPending } from './conditions';

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
  await keepHealthPending(client, now, ruleFilter);
  const subjectGone = sql`(not exists (select 1 from boxes b where b.id = a.box_id and b.removed_at is null)
    or (a.device_id is not null and not exists (select 1 from devices d where d.id = a.device_id and d.removed_at is null)))`;
  const { rows } = await run<{ id: string; kind: 'fired' | 'resolved' }>(
    client,
    sql`with rules as materialized (select * from alert_rules r where r.enabled and r.deleted_at is null and ${ruleFilter}),
        due as materialized (${dueSubjects(now)}),
        open as materialized (
          select a.id, a.rule_id, a.subject, a.box_id, a.device_id, a.severity from alerts a join alert_rules r on r.id = a.rule_id
          where a.state <> 'resolved' and ${ruleFilter}),
        fired as (
          insert into alerts (rule_id, subject, box_id, device_id, state, severity, value, condition_since, fires_at, fired_at, next_repeat_at, updated_at)
          select d.rule_id, d.subject, d.box_id, d.device_id, 'firing', r.severity, d.value, d.since, d.fires_at, ${now},
            ${now}::timestamptz + make_interval(secs => r.repeat_interval_seconds), ${now}
          from due d join rules r on r.id = d.rule_id
          where not exists (select 1 from open o where o.rule_id = d.rule_id and o.subject = d.subject)
          order by d.fires_at, d.rule_id, d.subject
          on conflict (rule_id, subject) where state <> 'resolved' do nothing
          returning id),
        resolved as (
          update alerts a set state = 'resolved', resolved_at = ${now}, updated_at = ${now}, next_repeat_at = null,
            resolution = case when r.deleted_at is not null then 'rule_deleted' when not r.enabled then 'rule_disabled'
              when ${subjectGone} then 'subject_removed' else ${scope.notDue}::text end
          from open o join alert_rules r on r.id = o.rule_id
          where a.id = o.id and not exists (select 1 from due d where d.rule_id = o.rule_id and d.subject = o.subject)
          returning a.id),
        reclassed as (
          update alerts a set severity = r.severity, updated_at = ${now}
          from open o join rules r on r.id = o.rule_id
          where a.id = o.id and o.severity <> r.severity and exists (select 1 from due d where d.rule_id = o.rule_id and d.subject = o.subject))
        select id::text, 'resolved' as kind from resolved
        union all
        select id::text, 'fired' from fired
        order by kind desc, id`,
  );
  return rows.map((r) => ({ alertId: Number(r.id), kind: r.kind }));
}
