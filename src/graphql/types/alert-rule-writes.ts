import { createAlertRule, deleteAlertRule, updateAlertRule, type AlertRuleInput as AlertRuleInputShape, type AlertRulePatch as AlertRulePatchShape } from '../../alerts/rules';
import type { AlertRuleKind as AlertRuleKindValue, AlertSeverity as AlertSeverityValue, DeviceType as DeviceTypeValue } from '../../db/schema';
import type { HealthFigure as HealthFigureValue } from '../../models/health-figures';
import { alertWrite, databaseIdOf, databaseIdsOf } from '../alert-requests';
import { builder } from '../builder';
import { AlertRuleKind, AlertRuleRef, AlertSeverity, HealthFigure } from './alert-rule';
import { DeviceType } from './device';

// Rule writes (operator+): lane A's functions in src/alerts/rules.ts check and re-evaluate; here
// only global ids become database ids and their errors client errors.

type RuleFieldsBuilder = PothosSchemaTypes.InputFieldBuilder<PothosSchemaTypes.ExtendDefaultTypes<import('../builder').SchemaTypes>, 'InputObject'>;

/** The fields a rule's input and patch share. */
const ruleFields = (t: RuleFieldsBuilder, required: boolean) => ({
  name: t.string({ required }),
  description: t.string(),
  severity: t.field({ type: AlertSeverity, required }),
  enabled: t.boolean({ description: 'Default true.' }),
  forSeconds: t.int({ description: 'How long the condition must hold before an alert fires; default 0. Not for DEVICE_FLAPPING.' }),
  flapChanges: t.int({ description: 'DEVICE_FLAPPING only: status changes within the window that make it fire.' }),
  flapWindowSeconds: t.int({ description: 'DEVICE_FLAPPING only.' }),
  healthFigure: t.field({ type: HealthFigure, description: 'BOX_HEALTH only.' }),
  healthThreshold: t.float({ description: 'BOX_HEALTH only: fires above this value.' }),
  boxIds: t.idList({ description: 'Watch only these boxes; null: every box.' }),
  deviceTypes: t.field({ type: [DeviceType], description: 'Watch only devices of these types; null: every type.' }),
  repeatIntervalSeconds: t.int({ description: 'Notify again this often while an alert fires unacknowledged; null: never.' }),
  channelIds: t.idList({ description: 'Webhook channels its alerts are sent to.' }),
});

const AlertRuleInput = builder.inputType('AlertRuleInput', {
  fields: (t) => ({ kind: t.field({ type: AlertRuleKind, required: true }), ...ruleFields(t, true) }),
});

const AlertRulePatch = builder.inputType('AlertRulePatch', {
  description: 'A change to a rule. A field left out stays; null clears description, boxIds (every box), deviceTypes (every type), repeatIntervalSeconds (no repeat) and channelIds (none). The kind never changes.',
  fields: (t) => ruleFields(t, false),
});

interface RuleFieldsInput {
  name?: string | null;
  description?: string | null;
  severity?: AlertSeverityValue | null;
  enabled?: boolean | null;
  forSeconds?: number | null;
  flapChanges?: number | null;
  flapWindowSeconds?: number | null;
  healthFigure?: HealthFigureValue | null;
  healthThreshold?: number | null;
  boxIds?: (string | number)[] | null;
  deviceTypes?: DeviceTypeValue[] | null;
  repeatIntervalSeconds?: number | null;
  channelIds?: (string | number)[] | null;
}

/** The fields given (absent ones stay absent: a patch leaves them as they are), with database ids. */
function ruleFieldsOf(input: RuleFieldsInput, prefix: 'input' | 'patch'): AlertRulePatchShape {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (key === 'boxIds') fields[key] = databaseIdsOf((value as (string | number)[] | null)?.map(String), 'Box', `${prefix}.boxIds`) ?? null;
    else if (key === 'channelIds') fields[key] = databaseIdsOf((value as (string | number)[] | null)?.map(String), 'WebhookChannel', `${prefix}.channelIds`) ?? null;
    else fields[key] = value;
  }
  return fields as AlertRulePatchShape;
}

const ruleId = (id: string | number) => databaseIdOf(String(id), 'AlertRule', 'id');

builder.mutationFields((t) => ({
  createAlertRule: t.field({
    type: AlertRuleRef,
    authScopes: { operator: true },
    nullable: true,
    description: 'Makes a rule; it is evaluated at once (subjects already due fire now).',
    args: { input: t.arg({ type: AlertRuleInput, required: true }) },
    resolve: (_root, { input }, context) =>
      alertWrite(async () => {
        const rule = { ...ruleFieldsOf(input, 'input'), kind: input.kind as AlertRuleKindValue } as AlertRuleInputShape;
        return createAlertRule(context.pool, rule, context.actor);
      }),
  }),
  updateAlertRule: t.field({
    type: AlertRuleRef,
    authScopes: { operator: true },
    nullable: true,
    description:
      'Changes a rule and re-evaluates it at once: open alerts no longer due under the new definition resolve (RULE_CHANGED), those still due stay open, newly due subjects fire; disabling resolves its open alerts (RULE_DISABLED).',
    args: { id: t.arg.id({ required: true }), patch: t.arg({ type: AlertRulePatch, required: true }) },
    resolve: (_root, { id, patch }, context) => alertWrite(async () => updateAlertRule(context.pool, ruleId(id), ruleFieldsOf(patch, 'patch'), context.actor)),
  }),
  deleteAlertRule: t.id({
    authScopes: { operator: true },
    nullable: true,
    description: 'Deletes a rule (its open alerts resolve: RULE_DELETED; its alerts stay as history); answers its ID.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, context) => {
      await alertWrite(async () => deleteAlertRule(context.pool, ruleId(id), context.actor));
      return String(id);
    },
  }),
}));
