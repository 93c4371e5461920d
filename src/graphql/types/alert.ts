import { ALERT_RESOLUTIONS, ALERT_STATES, type AlertResolution as AlertResolutionValue, type AlertSeverity as AlertSeverityValue, type AlertState as AlertStateValue } from '../../db/schema';
import {
  ALERT_ORDERING,
  alertsByIds,
  alertsPage,
  alertsPagePerParent,
  countAlertsPerParent,
  countAlertsQuery,
  type AlertFilter as AlertFilterShape,
  type AlertRow,
} from '../../models/alerts';
import { boxesByIds, type BoxRow } from '../../models/boxes';
import { devicesByIds, type DeviceRow } from '../../models/devices';
import { keysetCondition } from '../../models/query-parts';
import { acknowledgeAlert } from '../../alerts/acknowledge';
import { alertWrite, databaseIdOf, databaseIdsOf } from '../alert-requests';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { encodeCursor } from '../cursors';
import { parseDatabaseId } from '../global-id';
import { AlertRuleRef, AlertSeverity, upperValues } from './alert-rule';
import { BoxRef } from './box';
import { DeviceRef } from './device';
import { batchLoader, connectionArgs, connectionFromRows, countRows, groupBy, pageWindow, type CursorSpec, type PageArgs } from './pagination';

export const AlertState = builder.enumType('AlertState', {
  description: 'FIRING until the condition clears (RESOLVED); an operator may ACKNOWLEDGE it while it fires. FIRING and ACKNOWLEDGED are open.',
  values: upperValues(ALERT_STATES),
});

export const AlertResolution = builder.enumType('AlertResolution', {
  description: 'Why an alert was resolved.',
  values: {
    CLEARED: { value: 'cleared', description: 'Its condition no longer holds.' },
    RULE_CHANGED: { value: 'rule_changed', description: 'Its rule was changed and no longer holds for the subject.' },
    RULE_DISABLED: { value: 'rule_disabled', description: 'Its rule was disabled.' },
    RULE_DELETED: { value: 'rule_deleted', description: 'Its rule was deleted.' },
    SUBJECT_REMOVED: { value: 'subject_removed', description: 'Its box or device was removed, or left the rule’s scope.' },
  } satisfies Record<Uppercase<AlertResolutionValue>, { value: AlertResolutionValue; description: string }>,
});

/** A box or device of an alert by id, for all alerts of a response in one statement; null when removed. */
function loadBox(context: GraphQLContext, id: number): Promise<BoxRow | null> {
  return batchLoader<BoxRow | null>(context, 'Alert.box', async (ids) => new Map((await boxesByIds(context.pool, ids)).map((b) => [b.id, b])), null).load(id);
}
function loadDevice(context: GraphQLContext, id: number): Promise<DeviceRow | null> {
  return batchLoader<DeviceRow | null>(context, 'Alert.device', async (ids) => new Map((await devicesByIds(context.pool, ids)).map((d) => [d.id, d])), null).load(id);
}

export const AlertRef = builder.loadableNode('Alert', {
  description: 'A rule’s condition held for a box or device: at most one open alert per rule and subject.',
  id: { resolve: (alert: AlertRow) => alert.id, parse: (id) => parseDatabaseId(id, 'Alert') },
  load: (ids: number[], context: GraphQLContext) => alertsByIds(context.pool, ids),
  toKey: (alert) => alert.id,
  sort: true,
  fields: (t) => ({
    rule: t.field({ type: AlertRuleRef, description: 'The rule that fired it (also when deleted since: see `deletedAt`).', resolve: (alert) => alert.ruleId }),
    box: t.field({
      type: BoxRef,
      nullable: true,
      description: 'The box it is about (for a device alert: the device’s box). Null once the box was removed.',
      resolve: (alert, _args, context) => loadBox(context, alert.boxId),
    }),
    device: t.field({
      type: DeviceRef,
      nullable: true,
      description: 'The device it is about; null for box alerts (and once its box was removed).',
      resolve: (alert, _args, context) => (alert.deviceId === null ? null : loadDevice(context, alert.deviceId)),
    }),
    state: t.field({ type: AlertState, resolve: (alert) => alert.state as AlertStateValue }),
    severity: t.field({ type: AlertSeverity, description: 'Its rule’s severity when it fired.', resolve: (alert) => alert.severity as AlertSeverityValue }),
    value: t.exposeFloat('value', {
      nullable: true,
      description: 'The value that fired it: seconds offline (DEVICE_OFFLINE, BOX_OFFLINE), status changes in the window (DEVICE_FLAPPING), or the health figure (BOX_HEALTH).',
    }),
    conditionSince: t.expose('conditionSince', { type: 'DateTime', description: 'When the condition began to hold.' }),
    firesAt: t.expose('firesAt', { type: 'DateTime', description: 'When it became due: `conditionSince` + the rule’s `forSeconds`.' }),
    firedAt: t.expose('firedAt', { type: 'DateTime', description: 'When it was recorded as firing (`firesAt`, or later if the evaluator was late).' }),
    acknowledgedAt: t.expose('acknowledgedAt', { type: 'DateTime', nullable: true }),
    acknowledgedBy: t.exposeString('acknowledgedBy', { nullable: true, description: 'The token that acknowledged it (name and id).' }),
    acknowledgeComment: t.exposeString('acknowledgeComment', { nullable: true }),
    resolvedAt: t.expose('resolvedAt', { type: 'DateTime', nullable: true }),
    resolution: t.field({ type: AlertResolution, nullable: true, resolve: (alert) => alert.resolution as AlertResolutionValue | null }),
  }),
});

// ---------------------------------------------------------------------------------------------
// Lists

export const AlertFilter = builder.inputType('AlertFilter', {
  description: 'Conditions an alert must all meet. A list matches any of its values; omit a field to match all.',
  fields: (t) => ({
    states: t.field({ type: [AlertState] }),
    severities: t.field({ type: [AlertSeverity] }),
    ruleIds: t.idList({ description: 'Alerts of these rules.' }),
    boxIds: t.idList({ description: 'Alerts about these boxes (their own and their devices’).' }),
    deviceIds: t.idList({ description: 'Alerts about these devices.' }),
    firedSince: t.field({ type: 'DateTime', description: 'Fired at or after this time.' }),
    firedUntil: t.field({ type: 'DateTime', description: 'Fired before this time.' }),
  }),
});

export interface AlertFilterInput {
  states?: AlertStateValue[] | null;
  severities?: AlertSeverityValue[] | null;
  ruleIds?: (string | number)[] | null;
  boxIds?: (string | number)[] | null;
  deviceIds?: (string | number)[] | null;
  firedSince?: Date | null;
  firedUntil?: Date | null;
}

/** The filter as the models take it; an id of the wrong type is BAD_USER_INPUT naming `filter.<field>`. */
export function alertFilterOf(input: AlertFilterInput | null | undefined): AlertFilterShape {
  const ids = (values: (string | number)[] | null | undefined, typename: string, field: string) => databaseIdsOf(values?.map(String), typename, `filter.${field}`) ?? undefined;
  return {
    states: input?.states ?? undefined,
    severities: input?.severities ?? undefined,
    ruleIds: ids(input?.ruleIds, 'AlertRule', 'ruleIds'),
    boxIds: ids(input?.boxIds, 'Box', 'boxIds'),
    deviceIds: ids(input?.deviceIds, 'Device', 'deviceIds'),
    firedSince: input?.firedSince ?? undefined,
    firedUntil: input?.firedUntil ?? undefined,
  };
}

export const AlertConnection = builder.connectionObject({ type: AlertRef, name: 'AlertConnection' }, { name: 'AlertEdge' });

const ALERT_CURSOR: CursorSpec = { scope: 'Alert', types: ['int'], keyset: (values, side) => keysetCondition(ALERT_ORDERING, values, side) };
const cursorOf = (alert: AlertRow) => encodeCursor('Alert', [alert.id]);

const alertListArgs = builder.args((t) => ({ ...connectionArgs, filter: t.field({ type: AlertFilter }) }));

builder.queryField('alerts', (t) =>
  t.field({
    type: AlertConnection,
    description: 'Alerts, open and resolved, newest first.',
    args: alertListArgs,
    resolve: async (_root, args, context) => {
      const filter = alertFilterOf(args.filter);
      const window = pageWindow(args, ALERT_CURSOR);
      const rows = await alertsPage(context.pool, filter, window);
      return connectionFromRows(rows, window, cursorOf, () => countRows(context, countAlertsQuery(filter)));
    },
  }),
);

function alertsOf(parent: 'box' | 'device', description: string) {
  return {
    type: AlertConnection,
    description,
    args: alertListArgs,
    byPath: true as const,
    load: async (parentIds: number[], context: GraphQLContext, args: PageArgs & { filter?: AlertFilterInput | null }) => {
      const filter = alertFilterOf(args.filter);
      const window = pageWindow(args, ALERT_CURSOR);
      const rows = await alertsPagePerParent(context.pool, parent, parentIds, filter, window);
      const byParent = groupBy(rows, (alert) => (parent === 'box' ? alert.boxId : alert.deviceId));
      const counts = batchLoader(context, `${parent}.alerts.totalCount:${JSON.stringify(filter)}`, (ids) => countAlertsPerParent(context.pool, parent, ids, filter), 0);
      return parentIds.map((id) => connectionFromRows(byParent.get(id) ?? [], window, cursorOf, () => counts.load(id)));
    },
  };
}

builder.objectField(BoxRef, 'alerts', (t) =>
  t.loadable({ ...alertsOf('box', 'Alerts about the box and its devices, newest first; the pages of all boxes in a response are read in one statement.'), resolve: (box) => box.id }),
);

builder.objectField(DeviceRef, 'alerts', (t) =>
  t.loadable({ ...alertsOf('device', 'Alerts about the device, newest first; the pages of all devices in a response are read in one statement.'), resolve: (device) => device.id }),
);

builder.mutationField('acknowledgeAlert', (t) =>
  t.field({
    type: AlertRef,
    authScopes: { operator: true },
    nullable: true,
    description: 'Acknowledges a firing alert (who, when, comment): repeats stop; it resolves when its condition clears. ALERT_NOT_OPEN once resolved.',
    args: { id: t.arg.id({ required: true }), comment: t.arg.string({ description: 'At most 1,000 characters.' }) },
    resolve: (_root, { id, comment }, context) =>
      alertWrite(async () => acknowledgeAlert(context.pool, databaseIdOf(String(id), 'Alert', 'id'), context.actor, comment ?? null)),
  }),
);
