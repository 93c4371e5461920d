import { decodeGlobalID } from '@pothos/plugin-relay';
import { readsCredentials, redactUrlCredentials } from '../../auth/url-credentials';
import { isIPv6 } from 'node:net';
import type { AddressRefusal } from '../../box-api/box-networks';
import { DEFAULT_BOX_API_PORT, type BadAnswerReason, type UnreachableReason } from '../../box-api/client';
import { MEDIA_DEVICE_MONITOR_URL, type ConfigFieldError } from '../../box-api/config-keys';
import { configureBox, readBoxConfig, type BoxConfigDeps, type ConfigureOutcome, type ReadBack } from '../../box-api/configure';
import type { ConfigOutcome } from '../../db/schema';
import {
  configChangeOrdering,
  configChangesByIds,
  configChangesPagePerBox,
  countConfigChangesPerBox,
  type ConfigChangeRow,
} from '../../models/box-config';
import type { BoxRow } from '../../models/boxes';
import { dropIngestToken, issueIngestToken, keepOnlyIngestToken } from '../../models/ingest-tokens';
import { keysetCondition } from '../../models/sql';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { encodeCursor } from '../cursors';
import { parseDatabaseId } from '../global-id';
import { BoxRef } from './box';
import { ErrorInterface, InputProblem, problemsMessage, resolveByClass } from './error';
import { batchLoader, connectionArgs, connectionFromRows, groupBy, pageWindow, type CursorSpec, type PageArgs } from './pagination';

// configureBox, pointBoxAtGateway and boxConfig: a box's settings through its own REST API, with
// every attempt to change them kept as a BoxConfigChange. The work is in src/box-api/configure.ts.

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
    requestedAt: t.expose('requestedAt', { type: 'DateTime', description: 'When the box was called (or the input refused).' }),
    request: t.expose('request', {
      type: 'JSON',
      description: 'The `config_dict` sent, under the box’s key names; for an INVALID attempt, what was asked for.',
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
    durationMs: t.exposeInt('durationMs', { description: 'How long the setconfigs exchange took (0 when nothing was sent).' }),
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

// ---------------------------------------------------------------------------------------------
// Where a box's REST API is

builder.objectFields(BoxRef, (t) => ({
  apiAddress: t.string({
    nullable: true,
    description: 'Address the gateway calls for its REST API: `configuredApiAddress`, else the source address of its last report.',
    resolve: (box) => box.apiAddress ?? box.address,
  }),
  apiPort: t.int({
    description: `Port the gateway calls for its REST API: \`configuredApiPort\`, else ${DEFAULT_BOX_API_PORT}.`,
    resolve: (box) => box.apiPort ?? DEFAULT_BOX_API_PORT,
  }),
  configuredApiAddress: t.exposeString('apiAddress', { nullable: true, description: 'The API address an operator set (registerBox, updateBox).' }),
  configuredApiPort: t.exposeInt('apiPort', { nullable: true, description: 'The API port an operator set (registerBox, updateBox).' }),
  monitorUrl: t.string({
    nullable: true,
    description:
      'MEDIA_DEVICE_MONITOR_URL the box last took through this gateway (where it sends its reports), if any. Its credentials (an ingest secret, user-info, token-like parameters) are masked for roles below operator.',
    resolve: (box, _args, context) => (readsCredentials(context.principal) ? box.monitorUrl : redactUrlCredentials(box.monitorUrl)),
  }),
}));

// ---------------------------------------------------------------------------------------------
// Results

const UnreachableReasonEnum = builder.enumType('BoxUnreachableReason', {
  values: {
    REFUSED: { value: 'refused', description: 'Nothing listens on the port (connection refused).' },
    RESET: { value: 'reset', description: 'The box closed the connection before answering.' },
    NO_ROUTE: { value: 'no_route', description: 'No route to the address (host or network unreachable).' },
    DNS: { value: 'dns', description: 'The host name does not resolve.' },
    OTHER: { value: 'other', description: 'Another network error; see `message`.' },
  } satisfies Record<string, { value: UnreachableReason; description: string }>,
});

const AnswerDefectEnum = builder.enumType('BoxAnswerDefect', {
  description: 'What was wrong with a box’s answer.',
  values: {
    REDIRECT: { value: 'redirect', description: 'A 3xx; redirects are never followed.' },
    NOT_JSON: { value: 'not_json', description: 'A body that is not JSON.' },
    TOO_LARGE: { value: 'too_large', description: 'Longer than the gateway reads (64 KiB); reading stopped there.' },
    UNEXPECTED_STATUS: { value: 'unexpected_status', description: 'An HTTP status other than 2xx without the documented error object.' },
    UNEXPECTED_SHAPE: { value: 'unexpected_shape', description: 'JSON that is not a flat object of box settings (upper-case names, scalar values).' },
  } satisfies Record<string, { value: BadAnswerReason; description: string }>,
});

const AddressRefusalEnum = builder.enumType('BoxAddressRefusal', {
  description: 'Why the gateway does not call an address as a box.',
  values: {
    NOT_ALLOWED: { value: 'not_allowed', description: 'Outside the box networks (`BOX_NETWORKS`).' },
    UNSPECIFIED: { value: 'unspecified', description: '0.0.0.0/8 or `::`: never a box.' },
    LINK_LOCAL: { value: 'link_local', description: '169.254.0.0/16 or fe80::/10 (cloud metadata lives there): never a box.' },
    MULTICAST: { value: 'multicast', description: '224.0.0.0/4 or ff00::/8: never a box.' },
    BROADCAST: { value: 'broadcast', description: '240.0.0.0/4, with 255.255.255.255: never a box.' },
    GATEWAY_PORT: { value: 'gateway_port', description: 'This gateway’s own HTTP or database port on an address of its machine: never a box.' },
  } satisfies Record<string, { value: AddressRefusal; description: string }>,
});

const ConfigReadBack = builder.objectRef<ReadBack>('ConfigReadBack').implement({
  description:
    'The keys sent, read back with getconfigs after a call that did not succeed cleanly: the box applies key by key, so some may have taken effect. The box row keeps the monitor URL and period read back as applied.',
  fields: (t) => ({
    values: t.field({ type: 'JSON', nullable: true, description: 'What the box holds for the keys sent; null when it could not be read.', resolve: (r) => r.values }),
    appliedKeys: t.exposeStringList('appliedKeys', { description: 'Keys that now hold the value sent.' }),
    unappliedKeys: t.exposeStringList('unappliedKeys', { description: 'Keys that hold another value, or that the box does not list.' }),
    failure: t.exposeString('failure', { nullable: true, description: 'Why the values could not be read; null when they were.' }),
  }),
});

export class InvalidConfig extends Error {
  constructor(
    readonly problems: ConfigFieldError[],
    readonly change: ConfigChangeRow | null = null,
  ) {
    super(problemsMessage(problems));
  }
}

export class BoxRejectedConfig extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly httpStatus: number,
    readonly otherKeysMayHaveApplied: boolean,
    readonly readBack: ReadBack | null,
    readonly change: ConfigChangeRow | null,
  ) {
    super(message);
  }
}

export class BoxUnreachable extends Error {
  constructor(
    message: string,
    readonly reason: UnreachableReason,
    readonly requestSent: boolean,
    readonly target: string,
    readonly readBack: ReadBack | null,
    readonly change: ConfigChangeRow | null,
  ) {
    super(message);
  }
}

export class BoxTimedOut extends Error {
  constructor(
    message: string,
    readonly timeoutMs: number,
    readonly requestSent: boolean,
    readonly target: string,
    readonly change: ConfigChangeRow | null,
  ) {
    super(message);
  }
}

export class BoxBadAnswer extends Error {
  constructor(
    message: string,
    readonly reason: BadAnswerReason,
    readonly httpStatus: number,
    readonly contentType: string | null,
    readonly bodyBytes: number,
    readonly target: string,
    readonly readBack: ReadBack | null,
    readonly change: ConfigChangeRow | null,
  ) {
    super(message);
  }
}

export class BoxAddressRefused extends Error {
  constructor(
    message: string,
    readonly refusal: AddressRefusal,
    readonly address: string,
    readonly target: string,
    readonly change: ConfigChangeRow | null,
  ) {
    super(message);
  }
}

/** configureBox and pointBoxAtGateway succeeded: the box answered its echo; `unconfirmedKeys` it did not confirm. */
export class ConfigureBoxSuccess {
  constructor(
    readonly box: BoxRow,
    readonly applied: Record<string, unknown>,
    readonly monitorUrl: string | null,
    readonly reportPeriodSeconds: number | null,
    readonly unconfirmedKeys: string[],
    readonly readBack: ReadBack | null,
    readonly change: ConfigChangeRow,
  ) {}
}

/** boxConfig read the box's settings. */
export class BoxConfigValues {
  constructor(
    readonly boxId: number,
    readonly values: Record<string, unknown>,
    readonly missingKeys: string[],
  ) {}
}

const CHANGE_DESCRIPTION = 'The attempt as the audit trail keeps it; null when nothing was recorded (an unknown box, or a read).';

builder.objectType(InvalidConfig, {
  name: 'InvalidConfig',
  description:
    'The input cannot be used, and nothing was sent to the box: an unknown box or one without a known address, a period that is not a whole number of seconds from 1 to 3600, a monitor URL that is not http or https, a setting that is not a box setting.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidConfig,
  fields: (t) => ({
    problems: t.field({ type: [InputProblem], resolve: (error) => error.problems }),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: CHANGE_DESCRIPTION, resolve: (error) => error.change }),
  }),
});

builder.objectType(BoxRejectedConfig, {
  name: 'BoxRejectedConfig',
  description:
    'The box answered `{"error": {"code", "message"}}`. It applies key by key, so when several keys were sent the others may have taken effect: `readBack` says which.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof BoxRejectedConfig,
  fields: (t) => ({
    code: t.exposeString('code', {
      description: 'The box’s error code: UNSUPPORT_CONTENT_TYPE, INVALID_REQUEST_JSON, MISSING_ARGUMENTS, INVALID_ARGUMENTS, NAME_REPEAT_ERROR, or another it sends.',
    }),
    httpStatus: t.exposeInt('httpStatus'),
    otherKeysMayHaveApplied: t.exposeBoolean('otherKeysMayHaveApplied', { description: 'True when more than one key was sent.' }),
    readBack: t.field({ type: ConfigReadBack, nullable: true, description: 'Null for boxConfig (a read changes nothing).', resolve: (e) => e.readBack }),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: CHANGE_DESCRIPTION, resolve: (error) => error.change }),
  }),
});

builder.objectType(BoxUnreachable, {
  name: 'BoxUnreachable',
  description: 'No answer: the connection was refused, reset, or had no route. Only the box’s recorded address and API port are ever called.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof BoxUnreachable,
  fields: (t) => ({
    reason: t.expose('reason', { type: UnreachableReasonEnum }),
    requestSent: t.exposeBoolean('requestSent', { description: 'Whether the request went out before the connection broke: if so the box may have applied it.' }),
    target: t.exposeString('target', { description: '`address:port` called.' }),
    readBack: t.field({ type: ConfigReadBack, nullable: true, description: 'Read back only when the request was sent.', resolve: (e) => e.readBack }),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: CHANGE_DESCRIPTION, resolve: (error) => error.change }),
  }),
});

builder.objectType(BoxTimedOut, {
  name: 'BoxTimedOut',
  description: 'No complete answer before the deadline (`BOX_API_TIMEOUT_MS`, default 5 s). Not read back: a box this slow would keep the caller waiting as long again.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof BoxTimedOut,
  fields: (t) => ({
    timeoutMs: t.exposeInt('timeoutMs'),
    requestSent: t.exposeBoolean('requestSent', { description: 'Whether the request went out: if so the box may have applied it; check with boxConfig.' }),
    target: t.exposeString('target'),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: CHANGE_DESCRIPTION, resolve: (error) => error.change }),
  }),
});

builder.objectType(BoxBadAnswer, {
  name: 'BoxBadAnswer',
  description:
    'The box answered something no box should: a redirect (never followed), a body that is not JSON, one too large, another status or shape. Such an answer may be another service’s, so only its status, content type and size are told, never its content.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof BoxBadAnswer,
  fields: (t) => ({
    // Not `reason`: fields of one name must have one type across a union's members (BoxUnreachable.reason).
    defect: t.expose('reason', { type: AnswerDefectEnum }),
    httpStatus: t.exposeInt('httpStatus'),
    contentType: t.exposeString('contentType', { nullable: true, description: 'The answer’s Content-Type header; null without one.' }),
    bodyBytes: t.exposeInt('bodyBytes', { description: 'Body bytes read (0 for a redirect, or an answer announced too large).' }),
    bodyPreview: t.string({
      description: 'Always empty: an answer that is not the box protocol may be another service’s page, so its content is never passed on.',
      deprecationReason: 'Never holds the answer; use contentType and bodyBytes.',
      resolve: () => '',
    }),
    target: t.exposeString('target'),
    readBack: t.field({ type: ConfigReadBack, nullable: true, description: 'Null for boxConfig.', resolve: (e) => e.readBack }),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: CHANGE_DESCRIPTION, resolve: (error) => error.change }),
  }),
});

builder.objectType(BoxAddressRefused, {
  name: 'BoxAddressRefused',
  description:
    'The box’s API address (as set, or as its name resolved when called) is not one the gateway calls: outside `BOX_NETWORKS`, or an address that is never a box (link-local, unspecified, multicast, broadcast, this gateway’s own ports). Nothing was sent; correct the address or port with updateBox, or add the box’s network to BOX_NETWORKS.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof BoxAddressRefused,
  fields: (t) => ({
    refusal: t.expose('refusal', { type: AddressRefusalEnum }),
    address: t.exposeString('address', { description: 'The address refused: the one set, or (for a host name) the first it resolved to; IPv4-mapped IPv6 as IPv4.' }),
    target: t.exposeString('target', { description: '`address:port` as set on the box.' }),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: CHANGE_DESCRIPTION, resolve: (error) => error.change }),
  }),
});

builder.objectType(ConfigureBoxSuccess, {
  name: 'ConfigureBoxSuccess',
  description:
    'The box answered success. A key counts as applied once the box confirms it holds the value sent: in its echo, or (for keys the echo leaves out or answers otherwise) read back with getconfigs. `unconfirmedKeys` lists the others. Its row keeps the monitor URL and period only when confirmed; offline detection uses that period from its next round.',
  isTypeOf: (value) => value instanceof ConfigureBoxSuccess,
  fields: (t) => ({
    box: t.field({ type: BoxRef, description: 'The box as it now is.', resolve: (result) => result.box }),
    applied: t.field({ type: 'JSON', description: 'The values the box echoed, under its key names.', resolve: (result) => result.applied }),
    monitorUrl: t.exposeString('monitorUrl', { nullable: true, description: 'MEDIA_DEVICE_MONITOR_URL now applied, when this call set it and the box confirmed it.' }),
    reportPeriodSeconds: t.exposeInt('reportPeriodSeconds', {
      nullable: true,
      description: 'MEDIA_DEVICE_MONITOR_REPORT_PEROID now applied, when this call set it and the box confirmed it.',
    }),
    unconfirmedKeys: t.exposeStringList('unconfirmedKeys', {
      description: 'Keys sent that the box did not confirm: left out of its echo (or echoed with another value) and not read back with the value sent. Empty when every key applied.',
    }),
    readBack: t.field({
      type: ConfigReadBack,
      nullable: true,
      description: 'The read-back of the keys the echo left out or answered otherwise; null when the echo confirmed every key.',
      resolve: (result) => result.readBack,
    }),
    // Nullable like the failures' `change`, so one selection can ask for it on every member.
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: 'The attempt as the audit trail keeps it (never null here).', resolve: (result) => result.change }),
  }),
});

builder.objectType(BoxConfigValues, {
  name: 'BoxConfigValues',
  description: 'Settings as the box’s getconfigs answered them.',
  isTypeOf: (value) => value instanceof BoxConfigValues,
  fields: (t) => ({
    box: t.field({ type: BoxRef, resolve: (result) => result.boxId }),
    values: t.field({ type: 'JSON', description: 'Key to value, as the box holds them.', resolve: (result) => result.values }),
    missingKeys: t.exposeStringList('missingKeys', { description: 'Keys asked for that the box does not list.' }),
  }),
});

const BOX_CALL_FAILURES = [BoxRejectedConfig, BoxUnreachable, BoxTimedOut, BoxBadAnswer, BoxAddressRefused, InvalidConfig];
const resolveType = resolveByClass([
  [ConfigureBoxSuccess, 'ConfigureBoxSuccess'],
  [BoxConfigValues, 'BoxConfigValues'],
  [BoxRejectedConfig, 'BoxRejectedConfig'],
  [BoxUnreachable, 'BoxUnreachable'],
  [BoxTimedOut, 'BoxTimedOut'],
  [BoxBadAnswer, 'BoxBadAnswer'],
  [BoxAddressRefused, 'BoxAddressRefused'],
  [InvalidConfig, 'InvalidConfig'],
]);

const ConfigureBoxResult = builder.errorUnion('ConfigureBoxResult', {
  description: 'ConfigureBoxSuccess, or why the box does not (or may not) hold the settings.',
  types: [ConfigureBoxSuccess, ...BOX_CALL_FAILURES],
  resolveType,
});

const PointBoxAtGatewayResult = builder.errorUnion('PointBoxAtGatewayResult', {
  description: 'ConfigureBoxSuccess, or why the box does not (or may not) report to this gateway.',
  types: [ConfigureBoxSuccess, ...BOX_CALL_FAILURES],
  resolveType,
});

const BoxConfigResult = builder.errorUnion('BoxConfigResult', {
  description: 'BoxConfigValues, or why the box’s settings could not be read.',
  types: [BoxConfigValues, ...BOX_CALL_FAILURES],
  resolveType,
});

// ---------------------------------------------------------------------------------------------
// Operations

/** The box id inside a global id, or the problem with it; never throws (an unknown box is an InvalidConfig). */
export function boxIdFrom(globalId: string, field = 'boxId'): number | ConfigFieldError {
  try {
    const { typename, id } = decodeGlobalID(globalId);
    const value = Number(id);
    if (typename === 'Box' && /^[1-9][0-9]{0,9}$/.test(id) && value <= 2_147_483_647) return value;
  } catch {
    // not base64 of "Type:id"
  }
  return { field, message: `${JSON.stringify(globalId)} is not a Box id; use the \`id\` of a Box this API returned.` };
}

export function boxConfigDeps(context: GraphQLContext): BoxConfigDeps {
  return { pool: context.pool, log: context.log, call: { timeoutMs: context.config.boxApiTimeoutMs, networks: context.boxNetworks }, queue: context.boxCalls };
}

/** A configure outcome as a result union member: success is returned, failures thrown (the union catches them). */
function configureResult(outcome: ConfigureOutcome): ConfigureBoxSuccess {
  switch (outcome.kind) {
    case 'applied': {
      const { box, values, monitor, unconfirmedKeys, readBack, change } = outcome;
      return new ConfigureBoxSuccess(box, values, monitor.monitorUrl ?? null, monitor.reportPeriodSeconds ?? null, unconfirmedKeys, readBack, change);
    }
    case 'rejected':
      throw new BoxRejectedConfig(
        outcome.message || `The box refused the settings with ${outcome.code}.`,
        outcome.code,
        outcome.httpStatus,
        outcome.keysSent > 1,
        outcome.readBack,
        outcome.change,
      );
    case 'unreachable':
      throw new BoxUnreachable(
        `Could not reach the box at ${outcome.target}: ${outcome.message}`,
        outcome.reason,
        outcome.requestSent,
        outcome.target,
        outcome.readBack,
        outcome.change,
      );
    case 'timed_out':
      throw new BoxTimedOut(timedOutMessage(outcome.target, outcome.timeoutMs, outcome.requestSent), outcome.timeoutMs, outcome.requestSent, outcome.target, outcome.change);
    case 'bad_answer':
      throw new BoxBadAnswer(outcome.message, outcome.reason, outcome.httpStatus, outcome.contentType, outcome.bodyBytes, outcome.target, outcome.readBack, outcome.change);
    case 'address_refused':
      throw new BoxAddressRefused(addressRefusedMessage(outcome), outcome.refusal, outcome.address, outcome.target, outcome.change);
    case 'invalid':
      throw new InvalidConfig(outcome.problems, outcome.change);
  }
}

function addressRefusedMessage(outcome: { refusal: AddressRefusal; message: string; target: string }): string {
  const fix =
    outcome.refusal === 'not_allowed'
      ? 'Correct the box’s address with updateBox, or add its network to BOX_NETWORKS.'
      : 'Correct the box’s address (or port) with updateBox.';
  return `The gateway does not call ${outcome.target}: ${outcome.message} Nothing was sent. ${fix}`;
}

function timedOutMessage(target: string, timeoutMs: number, requestSent: boolean): string {
  const may = requestSent ? ' The request was sent, so the box may have applied it; check with boxConfig.' : '';
  return `The box at ${target} did not answer within ${timeoutMs} ms.${may}`;
}

/**
 * The URL boxes reach this gateway's ingest at: PUBLIC_URL, else `http://<HOST>:<PORT>` as it
 * listens. With HOST 0.0.0.0 (or ::) the address is the interface this request came in on, and
 * with PORT 0 the port it came in on: right on a flat network, wrong behind NAT or a proxy, which is
 * why production sets PUBLIC_URL.
 */
export function gatewayIngestUrl(context: GraphQLContext): string | undefined {
  const { publicUrl, host, port } = context.config;
  if (publicUrl) return `${publicUrl}/DeviceStatus`;
  const socket = context.req?.socket;
  const wildcard = host === '' || host === '0.0.0.0' || host === '::';
  let address = wildcard ? socket?.localAddress : host;
  const listening = port === 0 ? socket?.localPort : port;
  if (address && listening) {
    if (address.startsWith('::ffff:')) address = address.slice(7);
    return `http://${isIPv6(address) ? `[${address}]` : address}:${listening}/DeviceStatus`;
  }
  const url = context.request?.url;
  return url && URL.canParse(url) ? `${new URL(url).origin}/DeviceStatus` : undefined;
}

export const ConfigureBoxInput = builder.inputType('ConfigureBoxInput', {
  description: 'Settings to set on a box; leave out (or null) what should stay as it is. At least one is required.',
  fields: (t) => ({
    boxId: t.id({ required: true, description: 'The Box to configure.' }),
    monitorUrl: t.string({ description: 'MEDIA_DEVICE_MONITOR_URL: where the box POSTs its device status reports. Absolute http or https.' }),
    reportPeriodSeconds: t.float({
      description:
        'MEDIA_DEVICE_MONITOR_REPORT_PEROID: seconds between reports, a whole number from 1 to 3600. A Float so that 2.5 is answered with InvalidConfig like any other bad period.',
    }),
    settings: t.field({
      type: 'JSON',
      description: 'Other box settings by their box names, e.g. `{"GATE_PASS_MODE": "allpass"}`; values are strings, numbers or booleans.',
    }),
  }),
});

builder.mutationFields((t) => ({
  configureBox: t.field({
    authScopes: { operator: true },
    type: ConfigureBoxResult,
    description:
      'Sets settings on a box through `POST /sophon/v2/face/setconfigs` on its recorded address and API port, and answers what the box said. Calls to one box run one at a time. Every attempt is kept in `Box.configChanges`.',
    args: { input: t.arg({ type: ConfigureBoxInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      const boxId = boxIdFrom(input.boxId);
      if (typeof boxId !== 'number') throw new InvalidConfig([boxId]);
      const outcome = await configureBox(boxConfigDeps(context), {
        boxId,
        input: { monitorUrl: input.monitorUrl, reportPeriodSeconds: input.reportPeriodSeconds, settings: input.settings as Record<string, unknown> | null | undefined },
        requestedBy: context.actor,
      });
      return configureResult(outcome);
    },
  }),
  pointBoxAtGateway: t.field({
    authScopes: { operator: true },
    type: PointBoxAtGatewayResult,
    description:
      'configureBox with `monitorUrl` set to this gateway’s own ingest URL: `PUBLIC_URL` + `/DeviceStatus` (see docs/graphql.md for the default). With INGEST_POLICY=token the URL ends in a new secret of this box’s (`/DeviceStatus/<secret>`); the box’s previous secret stops working once the box holds the new one. Needs the operator role.',
    args: { boxId: t.arg.id({ required: true }) },
    resolve: async (_root, args, context) => {
      const boxId = boxIdFrom(args.boxId);
      if (typeof boxId !== 'number') throw new InvalidConfig([boxId]);
      const ingestUrl = gatewayIngestUrl(context);
      if (!ingestUrl) throw new InvalidConfig([{ field: 'monitorUrl', message: 'The gateway cannot tell its own URL here; set PUBLIC_URL.' }]);
      if (context.config.ingestPolicy !== 'token') {
        return configureResult(await configureBox(boxConfigDeps(context), { boxId, input: { monitorUrl: ingestUrl }, requestedBy: context.actor }));
      }
      // INGEST_POLICY=token: the URL carries a new secret of this box's. Until the box is known to hold
      // it, the secret it had keeps working too; a box that did not take the new one keeps the old.
      const secret = await issueIngestToken(context.pool, boxId).catch((error: unknown) => {
        if ((error as { code?: string }).code === '23503') throw new InvalidConfig([{ field: 'boxId', message: 'There is no box with this id.' }]);
        throw error;
      });
      const outcome = await configureBox(boxConfigDeps(context), { boxId, input: { monitorUrl: `${ingestUrl}/${secret}` }, requestedBy: context.actor });
      const took =
        (outcome.kind === 'applied' && !outcome.unconfirmedKeys.includes(MEDIA_DEVICE_MONITOR_URL)) ||
        ('readBack' in outcome && outcome.readBack?.appliedKeys.includes(MEDIA_DEVICE_MONITOR_URL) === true);
      const mayHave =
        outcome.kind === 'timed_out' ||
        (outcome.kind === 'unreachable' && outcome.requestSent && !outcome.readBack?.values) ||
        (outcome.kind === 'applied' && !took && !outcome.readBack?.values);
      if (took) await keepOnlyIngestToken(context.pool, boxId, secret);
      else if (!mayHave) await dropIngestToken(context.pool, secret);
      context.ingestTrust.forget();
      return configureResult(outcome);
    },
  }),
}));

builder.queryField('boxConfig', (t) =>
  t.field({
    type: BoxConfigResult,
    // It calls the box: an operator's tool, and its answer shows the box's settings.
    authScopes: { operator: true },
    description:
      'Reads settings from the box itself through `POST /sophon/v2/face/getconfigs` (never from a cache): `keys`, or every setting it lists when left out. Needs the operator role.',
    args: {
      boxId: t.arg.id({ required: true }),
      keys: t.arg.stringList({ description: 'Box setting names, e.g. ["MEDIA_DEVICE_MONITOR_URL", "MEDIA_DEVICE_MONITOR_REPORT_PEROID"].' }),
    },
    resolve: async (_root, args, context) => {
      // The answer comes from the box, not the database: the snapshot response cache must not keep it.
      context.uncacheable = true;
      const boxId = boxIdFrom(args.boxId);
      if (typeof boxId !== 'number') throw new InvalidConfig([boxId]);
      const outcome = await readBoxConfig(boxConfigDeps(context), boxId, args.keys ?? undefined);
      switch (outcome.kind) {
        case 'read':
          return new BoxConfigValues(outcome.box.id, outcome.values, outcome.missingKeys);
        case 'rejected':
          throw new BoxRejectedConfig(outcome.message || `The box refused with ${outcome.code}.`, outcome.code, outcome.httpStatus, false, null, null);
        case 'unreachable':
          throw new BoxUnreachable(`Could not reach the box at ${outcome.target}: ${outcome.message}`, outcome.reason, outcome.requestSent, outcome.target, null, null);
        case 'timed_out':
          throw new BoxTimedOut(timedOutMessage(outcome.target, outcome.timeoutMs, false), outcome.timeoutMs, outcome.requestSent, outcome.target, null);
        case 'bad_answer':
          throw new BoxBadAnswer(outcome.message, outcome.reason, outcome.httpStatus, outcome.contentType, outcome.bodyBytes, outcome.target, null, null);
        case 'address_refused':
          throw new BoxAddressRefused(addressRefusedMessage(outcome), outcome.refusal, outcome.address, outcome.target, null);
        case 'invalid':
          throw new InvalidConfig(outcome.problems);
      }
    },
  }),
);
