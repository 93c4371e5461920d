import { DELIVERY_OUTCOMES, NOTIFICATION_KINDS, NOTIFICATION_STATUSES, type DeliveryOutcome, type NotificationKind, type NotificationStatus } from '../../db/schema';
import { keysetCondition } from '../../models/query-parts';
import {
  attemptsPerNotification,
  countNotificationsPerParent,
  countNotificationsQuery,
  NOTIFICATION_ORDERING,
  notificationsByIds,
  notificationsPage,
  notificationsPagePerParent,
  type WebhookAttemptRow,
  type WebhookNotificationFilter as NotificationFilterShape,
  type WebhookNotificationRow,
} from '../../models/webhook-notifications';
import { redeliverNotification } from '../../alerts/webhooks/redeliver';
import { alertWrite, databaseIdOf, databaseIdsOf } from '../alert-requests';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { encodeCursor } from '../cursors';
import { parseDatabaseId } from '../global-id';
import { AlertRef } from './alert';
import { upperValues } from './alert-rule';
import { WebhookChannelRef } from './webhook-channel';
import { batchLoader, connectionArgs, connectionFromRows, countRows, groupBy, pageWindow, type CursorSpec, type PageArgs } from './pagination';

const WebhookNotificationKind = builder.enumType('WebhookNotificationKind', {
  description: 'What a notification tells: the alert fired, was acknowledged, resolved, or still fires (REPEAT, the rule’s repeat interval).',
  values: upperValues(NOTIFICATION_KINDS),
});

const WebhookNotificationStatus = builder.enumType('WebhookNotificationStatus', {
  description: 'PENDING: to be sent (again); DELIVERED: a receiver answered 2xx; DEAD: gave up after WEBHOOK_MAX_ATTEMPTS (redeliver sends it again).',
  values: upperValues(NOTIFICATION_STATUSES),
});

const WebhookAttemptOutcome = builder.enumType('WebhookAttemptOutcome', {
  description: 'How one attempt ended.',
  values: {
    DELIVERED: { value: 'delivered', description: 'Answered 2xx.' },
    HTTP_ERROR: { value: 'http_error', description: 'Answered another status (see `httpStatus`).' },
    REDIRECT: { value: 'redirect', description: 'Answered 3xx: redirects are never followed.' },
    TIMED_OUT: { value: 'timed_out', description: 'No whole answer within WEBHOOK_TIMEOUT_MS.' },
    UNREACHABLE: { value: 'unreachable', description: 'Name lookup or connection failed.' },
    REFUSED: { value: 'refused', description: 'The address is outside WEBHOOK_NETWORKS.' },
    TOO_LARGE: { value: 'too_large', description: 'The answer was larger than the gateway reads.' },
  } satisfies Record<Uppercase<DeliveryOutcome>, { value: DeliveryOutcome; description: string }>,
});

const WebhookAttemptRef = builder.objectRef<WebhookAttemptRow>('WebhookAttempt').implement({
  description: 'One attempt to send a notification.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: 'Its number, from 1 (numbers keep rising after a redelivery).' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    outcome: t.field({ type: WebhookAttemptOutcome, resolve: (attempt) => attempt.outcome as DeliveryOutcome }),
    httpStatus: t.exposeInt('httpStatus', { nullable: true }),
    latencyMs: t.exposeInt('latencyMs', { description: 'From the start of the attempt to its end (answer read, or failure).' }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

export const WebhookNotificationRef = builder.loadableNode('WebhookNotification', {
  description: 'One webhook to send to one channel, written with the alert change it tells of (the outbox). Needs the operator role.',
  authScopes: { operator: true },
  id: { resolve: (notification: WebhookNotificationRow) => notification.id, parse: (id) => parseDatabaseId(id, 'WebhookNotification') },
  load: (ids: number[], context: GraphQLContext) => notificationsByIds(context.pool, ids),
  toKey: (notification) => notification.id,
  sort: true,
  fields: (t) => ({
    alert: t.field({ type: AlertRef, resolve: (notification) => notification.alertId }),
    channel: t.field({ type: WebhookChannelRef, resolve: (notification) => notification.channelId }),
    kind: t.field({ type: WebhookNotificationKind, resolve: (notification) => notification.kind as NotificationKind }),
    status: t.field({ type: WebhookNotificationStatus, resolve: (notification) => notification.status as NotificationStatus }),
    idempotencyKey: t.exposeString('idempotencyKey', { description: 'Sent as `Idempotency-Key` and in the body, the same on every attempt.' }),
    attempts: t.exposeInt('attempts', { description: 'Attempts since it was queued or last redelivered.' }),
    nextAttemptAt: t.expose('nextAttemptAt', { type: 'DateTime', description: 'When it is next due (PENDING).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    attemptLog: t.field({
      type: [WebhookAttemptRef],
      description: `Every attempt, oldest first (at most WEBHOOK_MAX_ATTEMPTS per delivery round).`,
      resolve: (notification, _args, context) =>
        batchLoader(context, 'WebhookNotification.attemptLog', (ids) => attemptsPerNotification(context.pool, ids), [] as WebhookAttemptRow[]).load(notification.id),
    }),
  }),
});

// ---------------------------------------------------------------------------------------------
// Lists

const WebhookNotificationFilter = builder.inputType('WebhookNotificationFilter', {
  description: 'Conditions a notification must all meet. A list matches any of its values; omit a field to match all.',
  fields: (t) => ({
    channelIds: t.idList(),
    statuses: t.field({ type: [WebhookNotificationStatus] }),
    alertIds: t.idList(),
  }),
});

interface NotificationFilterInput {
  channelIds?: (string | number)[] | null;
  statuses?: NotificationStatus[] | null;
  alertIds?: (string | number)[] | null;
}

function filterOf(input: NotificationFilterInput | null | undefined): NotificationFilterShape {
  return {
    channelIds: databaseIdsOf(input?.channelIds?.map(String), 'WebhookChannel', 'filter.channelIds') ?? undefined,
    statuses: input?.statuses ?? undefined,
    alertIds: databaseIdsOf(input?.alertIds?.map(String), 'Alert', 'filter.alertIds') ?? undefined,
  };
}

const WebhookNotificationConnection = builder.connectionObject(
  { type: WebhookNotificationRef, name: 'WebhookNotificationConnection' },
  { name: 'WebhookNotificationEdge' },
);

const CURSOR: CursorSpec = { scope: 'WebhookNotification', types: ['int'], keyset: (values, side) => keysetCondition(NOTIFICATION_ORDERING, values, side) };
const cursorOf = (notification: WebhookNotificationRow) => encodeCursor('WebhookNotification', [notification.id]);

const listArgs = builder.args((t) => ({ ...connectionArgs, filter: t.field({ type: WebhookNotificationFilter }) }));

builder.queryField('webhookNotifications', (t) =>
  t.field({
    type: WebhookNotificationConnection,
    authScopes: { operator: true },
    description: 'The webhook outbox, newest first. Needs the operator role.',
    args: listArgs,
    resolve: async (_root, args, context) => {
      const filter = filterOf(args.filter);
      const window = pageWindow(args, CURSOR);
      const rows = await notificationsPage(context.pool, filter, window);
      return connectionFromRows(rows, window, cursorOf, () => countRows(context, countNotificationsQuery(filter)));
    },
  }),
);

function notificationsOf(parent: 'alert' | 'channel', description: string) {
  return {
    type: WebhookNotificationConnection,
    authScopes: { operator: true },
    description,
    args: listArgs,
    byPath: true as const,
    load: async (parentIds: number[], context: GraphQLContext, args: PageArgs & { filter?: NotificationFilterInput | null }) => {
      const filter = filterOf(args.filter);
      const window = pageWindow(args, CURSOR);
      const rows = await notificationsPagePerParent(context.pool, parent, parentIds, filter, window);
      const byParent = groupBy(rows, (n) => (parent === 'alert' ? n.alertId : n.channelId));
      const counts = batchLoader(context, `${parent}.notifications.totalCount:${JSON.stringify(filter)}`, (ids) => countNotificationsPerParent(context.pool, parent, ids, filter), 0);
      return parentIds.map((id) => connectionFromRows(byParent.get(id) ?? [], window, cursorOf, () => counts.load(id)));
    },
  };
}

builder.objectField(AlertRef, 'notifications', (t) =>
  t.loadable({ ...notificationsOf('alert', 'The webhooks sent (or to send) about it, newest first. Needs the operator role.'), resolve: (alert) => alert.id }),
);

builder.objectField(WebhookChannelRef, 'notifications', (t) =>
  t.loadable({ ...notificationsOf('channel', 'The webhooks sent (or to send) to it, newest first.'), resolve: (channel) => channel.id }),
);

builder.mutationField('redeliverWebhookNotification', (t) =>
  t.field({
    type: WebhookNotificationRef,
    authScopes: { operator: true },
    nullable: true,
    description: 'Sends a notification again, now, with the same body and Idempotency-Key (a DEAD or DELIVERED one is PENDING again, its attempts counted afresh).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, context) => alertWrite(async () => redeliverNotification(context.pool, databaseIdOf(String(id), 'WebhookNotification', 'id'))),
  }),
);
