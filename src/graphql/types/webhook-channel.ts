import { webhookChannelsByIds, webhookChannelsList, type WebhookChannelRow, channelsPerRule } from '../../models/alert-rules';
import { createWebhookChannel, deleteWebhookChannel, rotateWebhookChannelSecret, updateWebhookChannel } from '../../alerts/webhooks/channels';
import { alertWrite, databaseIdOf } from '../alert-requests';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { parseDatabaseId } from '../global-id';
import { AlertRuleRef } from './alert-rule';
import { batchLoader } from './pagination';

/** Channels `webhookChannels` lists at most: they are configured by hand, a handful per fleet. */
export const MAX_WEBHOOK_CHANNELS = 1_000;

export const WebhookChannelRef = builder.loadableNode('WebhookChannel', {
  description:
    'Where alerts are sent: signed JSON POSTs to `url`. Its secret is shown once, by createWebhookChannel and rotateWebhookChannelSecret, and never again. Needs the operator role.',
  authScopes: { operator: true },
  id: { resolve: (channel: WebhookChannelRow) => channel.id, parse: (id) => parseDatabaseId(id, 'WebhookChannel') },
  load: (ids: number[], context: GraphQLContext) => webhookChannelsByIds(context.pool, ids),
  toKey: (channel) => channel.id,
  sort: true,
  fields: (t) => ({
    name: t.exposeString('name'),
    url: t.exposeString('url', { description: 'Where notifications are POSTed (checked against WEBHOOK_NETWORKS; redirects are not followed).' }),
    enabled: t.exposeBoolean('enabled', { description: 'A disabled channel is sent nothing new.' }),
    notifyAcknowledged: t.exposeBoolean('notifyAcknowledged', { description: 'Also notify when an alert is acknowledged (firing and resolving always are).' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.exposeString('createdBy', { nullable: true, description: 'The token that made it (name and id).' }),
  }),
});

export const WebhookChannelSecret = builder.objectRef<{ channel: WebhookChannelRow; secret: string }>('WebhookChannelSecret').implement({
  description: 'A channel with its signing secret: answered once, by createWebhookChannel and rotateWebhookChannelSecret. Keep the secret; it cannot be read again.',
  fields: (t) => ({
    channel: t.field({ type: WebhookChannelRef, resolve: (answer) => answer.channel }),
    secret: t.exposeString('secret', {
      description: '`whsec_` + 32 random bytes (base64url). Receivers verify `Fleetgate-Signature` with it (HMAC-SHA256 over "<t>.<body>").',
    }),
  }),
});

builder.queryField('webhookChannels', (t) =>
  t.field({
    type: [WebhookChannelRef],
    authScopes: { operator: true },
    description: `Every webhook channel, oldest first (at most ${MAX_WEBHOOK_CHANNELS}). Needs the operator role.`,
    resolve: (_root, _args, context) => webhookChannelsList(context.pool, MAX_WEBHOOK_CHANNELS),
  }),
);

builder.objectField(AlertRuleRef, 'channels', (t) =>
  t.field({
    type: [WebhookChannelRef],
    authScopes: { operator: true },
    description: 'The channels its alerts are sent to. Needs the operator role.',
    resolve: async (rule, _args, context) =>
      batchLoader(context, 'AlertRule.channels', (ids) => channelsPerRule(context.pool, ids), [] as WebhookChannelRow[]).load(rule.id),
  }),
);

// ---------------------------------------------------------------------------------------------
// Writes (operator+)

const WebhookChannelInput = builder.inputType('WebhookChannelInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    url: t.string({ required: true, description: 'http(s) URL; its host must resolve inside WEBHOOK_NETWORKS.' }),
    enabled: t.boolean({ description: 'Default true.' }),
    notifyAcknowledged: t.boolean({ description: 'Default false.' }),
  }),
});

const WebhookChannelPatch = builder.inputType('WebhookChannelPatch', {
  description: 'Fields left out (or null) stay as they are.',
  fields: (t) => ({
    name: t.string(),
    url: t.string(),
    enabled: t.boolean(),
    notifyAcknowledged: t.boolean(),
  }),
});

const channelId = (id: string | number) => databaseIdOf(String(id), 'WebhookChannel', 'id');

builder.mutationFields((t) => ({
  createWebhookChannel: t.field({
    type: WebhookChannelSecret,
    authScopes: { operator: true },
    nullable: true,
    description: 'Makes a channel and answers its signing secret, the only time it is shown. Route rules to it with `channelIds`.',
    args: { input: t.arg({ type: WebhookChannelInput, required: true }) },
    resolve: (_root, { input }, context) => alertWrite(() => createWebhookChannel(context.pool, input, context.actor, context.webhookNetworks)),
  }),
  updateWebhookChannel: t.field({
    type: WebhookChannelRef,
    authScopes: { operator: true },
    nullable: true,
    description: 'Changes a channel. Notifications already queued keep going to it (to its URL as it is when each is sent).',
    args: { id: t.arg.id({ required: true }), patch: t.arg({ type: WebhookChannelPatch, required: true }) },
    resolve: (_root, { id, patch }, context) => alertWrite(async () => updateWebhookChannel(
          context.pool,
          channelId(id),
          { name: patch.name ?? undefined, url: patch.url ?? undefined, enabled: patch.enabled, notifyAcknowledged: patch.notifyAcknowledged },
          context.webhookNetworks,
        )),
  }),
  rotateWebhookChannelSecret: t.field({
    type: WebhookChannelSecret,
    authScopes: { operator: true },
    nullable: true,
    description: 'Gives a channel a new secret, answered once; every send from now on (retries too) is signed with it.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, context) => alertWrite(async () => rotateWebhookChannelSecret(context.pool, channelId(id))),
  }),
  deleteWebhookChannel: t.id({
    authScopes: { operator: true },
    nullable: true,
    description: 'Deletes a channel with its routes and its notifications; answers its ID.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, context) => {
      await alertWrite(async () => deleteWebhookChannel(context.pool, channelId(id)));
      return String(id);
    },
  }),
}));
