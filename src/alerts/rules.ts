import type pg from 'pg';
import { alertRules, type AlertRule } from '../db/schema';
import { fieldsOf, inTransaction, run, sql } from '../db/sql';
import { recordAlertChanges } from './changes';
import { AlertRequestError } from './errors';
import { evaluateRules, lockEvaluation } from './evaluation';
import { checkDefinition, definitionOf, newRuleBase, type AlertRuleInput, type AlertRulePatch, type RuleDefinition } from './rule-input';

export type { AlertRuleInput, AlertRulePatch } from './rule-input';

/**
 * Rule writes. Each checks everything first (AlertRequestError, nothing written), then in one
 * transaction holding EVALUATION_LOCK writes the rule and re-evaluates it at once, ending with
 * recordAlertChanges:
 * - create / update / enable: newly due subjects fire now; open alerts no longer due under the new
 *   definition resolve `rule_changed`; those still due stay open (same alert) with the rule's severity.
 * - disable: every open alert of the rule resolves `rule_disabled`.
 * - delete: soft delete (deleted_at, the row stays for its alerts' history); open alerts resolve `rule_deleted`.
 */

const RULE_COLUMNS = fieldsOf(alertRules);

function notFound(id: number): AlertRequestError {
  return new AlertRequestError(`No alert rule with id ${id} (or it was deleted).`, 'id', 'NOT_FOUND');
}

/** Boxes in scope must exist and not be removed; channels must exist. */
async function checkReferences(client: pg.ClientBase, rule: RuleDefinition, channelIds: number[] | null | undefined, prefix: string): Promise<void> {
  if (rule.boxIds) {
    const { rows } = await run<{ id: number }>(
      client,
      sql`select u.id from unnest(${sql.param(rule.boxIds)}::int[]) as u(id)
          where not exists (select 1 from boxes b where b.id = u.id and b.removed_at is null) order by u.id`,
    );
    if (rows.length > 0) {
      const unknown = rows.map((r) => r.id);
      throw new AlertRequestError(`boxIds names boxes that do not exist or were removed: ${unknown.join(', ')}.`, `${prefix}.boxIds`, 'BAD_USER_INPUT', { boxIds: unknown });
    }
  }
  if (channelIds && channelIds.length > 0) {
    const ids = [...new Set(channelIds)];
    const bad = ids.filter((id) => !Number.isInteger(id) || id < 1 || id > 2_147_483_647);
    const { rows } = bad.length
      ? { rows: bad.map((id) => ({ id })) }
      : await run<{ id: number }>(
          client,
          sql`select u.id from unnest(${sql.param(ids)}::int[]) as u(id) where not exists (select 1 from webhook_channels w where w.id = u.id) order by u.id`,
        );
    if (rows.length > 0) {
      const unknown = rows.map((r) => r.id);
      throw new AlertRequestError(`channelIds names webhook channels that do not exist: ${unknown.join(', ')}.`, `${prefix}.channelIds`, 'BAD_USER_INPUT', { channelIds: unknown });
    }
  }
}

async function setChannels(client: pg.ClientBase, ruleId: number, channelIds: number[] | null): Promise<void> {
  await run(client, sql`delete from alert_rule_channels where rule_id = ${ruleId}`);
  if (channelIds && channelIds.length > 0) {
    await run(client, sql`insert into alert_rule_channels (rule_id, channel_id) select ${ruleId}, unnest(${sql.param([...new Set(channelIds)])}::int[]) on conflict do nothing`);
  }
}

/** Loads a live (not deleted) rule, locked for the write. */
async function liveRule(client: pg.ClientBase, id: number): Promise<AlertRule> {
  if (!Number.isInteger(id) || id < 1 || id > 2_147_483_647) throw notFound(id);
  const { rows } = await run<AlertRule>(client, sql`select ${RULE_COLUMNS} from alert_rules where id = ${id} and deleted_at is null for update`);
  if (!rows[0]) throw notFound(id);
  return rows[0];
}

/** Re-evaluates the rule and records what changed; the transaction's last statements. */
async function reevaluate(client: pg.ClientBase, ruleId: number, now: Date): Promise<void> {
  const changes = await evaluateRules(client, now, { ruleId, notDue: 'rule_changed' });
  await recordAlertChanges(client, changes, now);
}

export async function createAlertRule(pool: pg.Pool, input: AlertRuleInput, actor: string | null, now = new Date()): Promise<AlertRule> {
  const rule = checkDefinition(newRuleBase(input.kind, input.severity), input, 'input');
  return inTransaction(pool, async (client) => {
    await lockEvaluation(client);
    await checkReferences(client, rule, input.channelIds, 'input');
    const { rows } = await run<AlertRule>(
      client,
      sql`insert into alert_rules (name, description, kind, severity, enabled, for_seconds, flap_changes, flap_window_seconds,
            health_figure, health_threshold, box_ids, device_types, repeat_interval_seconds, created_at, created_by, updated_at, updated_by)
          values (${rule.name}, ${rule.description}, ${rule.kind}, ${rule.severity}, ${rule.enabled}, ${rule.forSeconds}, ${rule.flapChanges},
            ${rule.flapWindowSeconds}, ${rule.healthFigure}, ${rule.healthThreshold}, ${sql.param(rule.boxIds)}::int[], ${sql.param(rule.deviceTypes)}::text[],
            ${rule.repeatIntervalSeconds}, ${now}, ${actor}, ${now}, ${actor})
          returning ${RULE_COLUMNS}`,
    );
    const created = rows[0]!;
    await setChannels(client, created.id, input.channelIds ?? null);
    await reevaluate(client, created.id, now);
    return created;
  });
}

export async function updateAlertRule(pool: pg.Pool, id: number, patch: AlertRulePatch, actor: string | null, now = new Date()): Promise<AlertRule> {
  if ('kind' in patch) throw new AlertRequestError("A rule's kind cannot change; create a new rule instead.", 'patch.kind');
  return inTransaction(pool, async (client) => {
    await lockEvaluation(client);
    const current = await liveRule(client, id);
    const rule = checkDefinition(definitionOf(current), patch, 'patch');
    await checkReferences(client, rule, patch.channelIds, 'patch');
    const { rows } = await run<AlertRule>(
      client,
      sql`update alert_rules set name = ${rule.name}, description = ${rule.description}, severity = ${rule.severity}, enabled = ${rule.enabled},
            for_seconds = ${rule.forSeconds}, flap_changes = ${rule.flapChanges}, flap_window_seconds = ${rule.flapWindowSeconds},
            health_figure = ${rule.healthFigure}, health_threshold = ${rule.healthThreshold}, box_ids = ${sql.param(rule.boxIds)}::int[],
            device_types = ${sql.param(rule.deviceTypes)}::text[], repeat_interval_seconds = ${rule.repeatIntervalSeconds}, updated_at = ${now}, updated_by = ${actor}
          where id = ${id}
          returning ${RULE_COLUMNS}`,
    );
    if (patch.channelIds !== undefined) await setChannels(client, id, patch.channelIds);
    // Open alerts keep their next repeat; a changed interval applies from their next repeat on.
    await reevaluate(client, id, now);
    return rows[0]!;
  });
}

export async function deleteAlertRule(pool: pg.Pool, id: number, actor: string | null, now = new Date()): Promise<void> {
  await inTransaction(pool, async (client) => {
    await lockEvaluation(client);
    await liveRule(client, id);
    await run(client, sql`update alert_rules set deleted_at = ${now}, updated_at = ${now}, updated_by = ${actor} where id = ${id}`);
    await reevaluate(client, id, now);
  });
}
