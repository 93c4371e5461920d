import type { ConfigAction, ConfigOutcome } from '../../db/schema';
import { configChangeOrdering, configChangesByIds, configChangesPagePerBox, countConfigChangesPerBox, type ConfigChangeRow } from '../../models/box-config';
import { keysetCondition } from '../../models/query-parts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { encodeCursor } from '../cursors';
import { parseDatabaseId } from '../global-id';
import { BoxRef } from './box';
import { batchLoader, connectionArgs, connectionFromRows, groupBy, pageWindow, type CursorSpec, type PageArgs } from './pagination';

// BoxConfigChange: one attempt to change a box's settings through the gateway, as the audit trail
// keeps it, and Box.configChanges.

// ---------------------------------------------------------------------------------------------
// The audit trail

export const ConfigChangeOutcomeEnum = builder.enumType('ConfigChangeOutcome', {
  description: 'How an attempt to change a box’s settings ended.',
  values: {
    APPLIED: { value: 'applied', description: 'The box answered success; errorCode UNCONFIRMED when some keys were not confirmed.' },
    REJECTED: { value: 'rejected', description: 'The box answered an error; other keys of the call may have applied.' },
    UNREACHABLE: { value: 'unreachable', description: 'No connection, or it broke before an answer.' },
    TIMED_OUT: { value: 'timed_out', description: 'No complete answer before the deadline.' },
    BAD_ANSWER: { value: 'bad_answer', description: 'An answer no box gives: a redirect, not JSON, too large, another status or shape.' },
    INVALID: { value: 'invalid', description: 'The input was refused before anything was sent.' },
    REFUSED: { value: 'refused', description: 'The box’s address is not one the gateway calls (BOX_NETWORKS, or never a box); nothing was sent.' },
  } satisfies Record<string, { value: ConfigOutcome; description: string }>,
});

export const ConfigChangeActionEnum = builder.enumType('ConfigChangeAction', {
  description: 'What an audit row records: a call to the box’s REST API, or an operator’s change of its hardware binding.',
  values: {
    SETCONFIGS: { value: 'setconfigs', description: 'Settings sent with the box’s `setconfigs` (configureBox, pointBoxAtGateway, a rollout).' },
    ADD_MEDIA_DEVICE: { value: 'addmediadevice', description: 'A media device added through the box’s `addmediadevice` (addMediaDevice).' },
    DELETE_MEDIA_DEVICE: { value: 'deletemediadevice', description: 'A media device deleted through the box’s `deletemediadevice` (deleteMediaDevice).' },
    REBIND_HARDWARE: { value: 'rebind_hardware', description: 'rebindBoxHardware: the licence key bound to other hardware (nothing sent to the box; `request` is `{"hardwareSerial": {"from", "to"}}`).' },
  } satisfies Record<string, { value: ConfigAction; description: string }>,
});

export const BoxConfigChangeRef = builder.loadableNode('BoxConfigChange', {
  description:
    'One attempt to change a box’s settings through the gateway: who asked, when, what was sent, and what the box answered. Needs the operator role, however it is reached (`Box.configChanges`, `node`, `nodes`, a mutation’s `change`).',
  // The type, not the field that leads to it, decides: `node(id:)` reaches a change without passing
  // through Box.configChanges. Checked once per object (isTypeOf), so a viewer gets null and FORBIDDEN.
  authScopes: { operator: true },
  id: { resolve: (change: ConfigChangeRow) => change.id, parse: (id) => parseDatabaseId(id, 'BoxConfigChange') },
  load: (ids: number[], context: GraphQLContext) => configChangesByIds(context.pool, ids),
  toKey: (change) => change.id,
  sort: true,
  fields: (t) => ({
    box: t.field({ type: BoxRef, resolve: (change) => change.boxId }),
    requestedBy: t.exposeString('requestedBy', {
      nullable: true,
      description: 'Who asked: the name and id of the API token used, e.g. `ops-console (token #3)`; null for attempts made before tokens.',
    }),
    action: t.expose('action', { type: ConfigChangeActionEnum }),
    requestedAt: t.expose('requestedAt', { type: 'DateTime', description: 'When the box was called (or the input refused).' }),
    request: t.expose('request', {
      type: 'JSON',
      description: 'The `config_dict` sent, under the box’s key names (for a media device call, its body); for an INVALID attempt, what was asked for.',
    }),
    target: t.exposeString('target', { nullable: true, description: '`address:port` called; null when nothing was sent.' }),
    outcome: t.expose('outcome', { type: ConfigChangeOutcomeEnum }),
    httpStatus: t.exposeInt('httpStatus', { nullable: true, description: 'HTTP status of the box’s answer, when there was one.' }),
    response: t.expose('response', {
      type: 'JSON',
      nullable: true,
      description:
        'The box’s answer: its JSON (the echo, or `{"error": {"code", "message"}}`); null when there was none, or it was not the box protocol (its content is never kept: `errorMessage` gives its type and size). Text a box sends is kept whatever it holds: a NUL or an unpaired UTF-16 surrogate (which Postgres cannot store) is written as its escape, e.g. `\\u0000`.',
    }),
    errorCode: t.exposeString('errorCode', {
      nullable: true,
      description:
        'The box’s error code when it refused (e.g. INVALID_ARGUMENTS); UNCONFIRMED for an APPLIED attempt with keys the box did not confirm (`errorMessage` says which); else REFUSED, RESET, NO_ROUTE, DNS, OTHER (unreachable), TIMED_OUT, REDIRECT, NOT_JSON, TOO_LARGE, UNEXPECTED_STATUS, UNEXPECTED_SHAPE (bad answer), ADDRESS_NOT_ALLOWED, ADDRESS_UNSPECIFIED, ADDRESS_LINK_LOCAL, ADDRESS_MULTICAST, ADDRESS_BROADCAST, ADDRESS_GATEWAY_PORT (refused address) or INVALID_INPUT.',
    }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    durationMs: t.exposeInt('durationMs', { description: 'How long the exchange with the box took (0 when nothing was sent).' }),
  }),
});

const BoxConfigChangeConnection = builder.connectionObject(
  { type: BoxConfigChangeRef, name: 'BoxConfigChangeConnection' },
  { name: 'BoxConfigChangeEdge' },
);

const CHANGE_CURSOR_SCOPE = 'BoxConfigChange';

builder.objectField(BoxRef, 'configChanges', (t) =>
  t.loadable({
    type: BoxConfigChangeConnection,
    description: 'Every attempt to change its settings through this gateway, newest first. Needs the operator role.',
    authScopes: { operator: true },
    args: connectionArgs,
    byPath: true,
    load: async (boxIds: number[], context, args: PageArgs) => {
      const ordering = configChangeOrdering(true);
      const spec: CursorSpec = { scope: CHANGE_CURSOR_SCOPE, types: ['int'], keyset: (values, side) => keysetCondition(ordering, values, side) };
      const window = pageWindow(args, spec);
      const rows = await configChangesPagePerBox(context.pool, boxIds, ordering, window);
      const byBox = groupBy(rows, (change) => change.boxId);
      const counts = batchLoader(context, 'Box.configChanges.totalCount', (ids) => countConfigChangesPerBox(context.pool, ids), 0);
      return boxIds.map((boxId) =>
        connectionFromRows(byBox.get(boxId) ?? [], window, (change) => encodeCursor(CHANGE_CURSOR_SCOPE, [change.id]), () => counts.load(boxId)),
      );
    },
    resolve: (box) => box.id,
  }),
);
