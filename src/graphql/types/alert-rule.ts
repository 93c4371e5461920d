import { ALERT_RULE_KINDS, ALERT_SEVERITIES, type AlertRuleKind as AlertRuleKindValue, type AlertSeverity as AlertSeverityValue } from '../../db/schema';
import { openAlertsPerRule } from '../../models/alerts';
import { ALERT_RULE_ORDERING, alertRulesByIds, alertRulesPage, countAlertRulesQuery, type AlertRuleRow } from '../../models/alert-rules';
import { boxesByIds, type BoxRow } from '../../models/boxes';
import { HEALTH_FIGURES, type HealthFigure as HealthFigureValue } from '../../models/health-figures';
import { keysetCondition } from '../../models/query-parts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { encodeCursor } from '../cursors';
import { parseDatabaseId } from '../global-id';
import { BoxRef } from './box';
import { DeviceType } from './device';
import { batchLoader, connectionArgs, connectionFromRows, countRows, pageWindow, type CursorSpec } from './pagination';

/** Enum values named as the database's lower-case values, upper-cased (`box_offline` is BOX_OFFLINE). */
export const upperValues = <T extends string>(values: readonly T[], descriptions: Partial<Record<T, string>> = {}) =>
  Object.fromEntries(values.map((value) => [value.toUpperCase(), { value, description: descriptions[value] }])) as unknown as Record<Uppercase<T>, { value: T }>;

export const AlertRuleKind = builder.enumType('AlertRuleKind', {
  description: 'What a rule watches.',
  values: upperValues(ALERT_RULE_KINDS, {
    device_offline: 'A device offline, or gone from its box’s list, for at least `forSeconds`.',
    box_offline: 'A box offline (silent) for at least `forSeconds`.',
    device_flapping: 'A device that changed status at least `flapChanges` times within `flapWindowSeconds`.',
    box_health: 'A box whose `healthFigure` is above `healthThreshold` for at least `forSeconds` (boxes that send it).',
  }),
});

export const AlertSeverity = builder.enumType('AlertSeverity', { description: 'How bad, most severe first.', values: upperValues(ALERT_SEVERITIES) });

export const HealthFigure = builder.enumType('HealthFigure', {
  description: 'A health figure a box sends: usage in percent, temperature in °C.',
  values: upperValues(HEALTH_FIGURES),
});

export const AlertRuleRef = builder.loadableNode('AlertRule', {
  description: 'A condition watched for every box or device in its scope; an alert fires for each subject it holds for. Deleted rules are listed no more, but their alerts keep them.',
  id: { resolve: (rule: AlertRuleRow) => rule.id, parse: (id) => parseDatabaseId(id, 'AlertRule') },
  load: (ids: number[], context: GraphQLContext) => alertRulesByIds(context.pool, ids),
  toKey: (rule) => rule.id,
  sort: true,
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    kind: t.field({ type: AlertRuleKind, resolve: (rule) => rule.kind as AlertRuleKindValue }),
    severity: t.field({ type: AlertSeverity, resolve: (rule) => rule.severity as AlertSeverityValue }),
    enabled: t.exposeBoolean('enabled', { description: 'A disabled rule fires nothing; disabling it resolves its open alerts (RULE_DISABLED).' }),
    forSeconds: t.exposeInt('forSeconds', { description: 'How long the condition must hold before an alert fires (not for DEVICE_FLAPPING).' }),
    flapChanges: t.exposeInt('flapChanges', { nullable: true, description: 'DEVICE_FLAPPING: status changes that make it fire.' }),
    flapWindowSeconds: t.exposeInt('flapWindowSeconds', { nullable: true, description: 'DEVICE_FLAPPING: the window they are counted in.' }),
    healthFigure: t.field({ type: HealthFigure, nullable: true, description: 'BOX_HEALTH: the figure watched.', resolve: (rule) => rule.healthFigure as HealthFigureValue | null }),
    healthThreshold: t.exposeFloat('healthThreshold', { nullable: true, description: 'BOX_HEALTH: it fires above this value.' }),
    boxes: t.field({
      type: [BoxRef],
      nullable: true,
      description: 'The boxes it watches; null: every box. Boxes removed since are left out.',
      resolve: async (rule, _args, context) => {
        if (!rule.boxIds) return null;
        const loader = batchLoader<BoxRow | null>(context, 'AlertRule.boxes', async (ids) => new Map((await boxesByIds(context.pool, ids)).map((b) => [b.id, b])), null);
        return (await loader.loadMany(rule.boxIds)).filter((box): box is BoxRow => box !== null && !(box instanceof Error));
      },
    }),
    deviceTypes: t.field({
      type: [DeviceType],
      nullable: true,
      description: 'The device types it watches; null: every type.',
      resolve: (rule) => rule.deviceTypes,
    }),
    repeatIntervalSeconds: t.exposeInt('repeatIntervalSeconds', {
      nullable: true,
      description: 'Notify again this often while an alert still fires unacknowledged; null: never.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.exposeString('createdBy', { nullable: true, description: 'The token that made it (name and id).' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    updatedBy: t.exposeString('updatedBy', { nullable: true }),
    deletedAt: t.expose('deletedAt', { type: 'DateTime', nullable: true, description: 'When it was deleted; null while it exists.' }),
    openAlerts: t.int({
      description: 'Its alerts now firing or acknowledged.',
      resolve: (rule, _args, context) => batchLoader(context, 'AlertRule.openAlerts', (ids) => openAlertsPerRule(context.pool, ids), 0).load(rule.id),
    }),
  }),
});

// ---------------------------------------------------------------------------------------------
// The list

export const AlertRuleConnection = builder.connectionObject({ type: AlertRuleRef, name: 'AlertRuleConnection' }, { name: 'AlertRuleEdge' });

const RULE_CURSOR: CursorSpec = { scope: 'AlertRule', types: ['int'], keyset: (values, side) => keysetCondition(ALERT_RULE_ORDERING, values, side) };

builder.queryField('alertRules', (t) =>
  t.field({
    type: AlertRuleConnection,
    description: 'The alert rules (deleted ones left out), newest first.',
    args: connectionArgs,
    resolve: async (_root, args, context) => {
      const window = pageWindow(args, RULE_CURSOR);
      const rows = await alertRulesPage(context.pool, window);
      return connectionFromRows(rows, window, (rule) => encodeCursor('AlertRule', [rule.id]), () => countRows(context, countAlertRulesQuery));
    },
  }),
);
