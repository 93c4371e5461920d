import type { AddressRefusal } from '../../box-api/box-networks';
import type { BadAnswerReason, UnreachableReason } from '../../box-api/box-answer';
import type { ConfigFieldError } from '../../box-api/config-keys';
import type { ConfigureOutcome, ReadBack, ReadConfigOutcome } from '../../box-api/configure';
import type { ConfigChangeRow } from '../../models/box-config';
import type { BoxRow } from '../../models/boxes';
import { builder } from '../builder';
import { BoxRef } from './box';
import { BoxConfigChangeRef } from './box-config-change';
import { ErrorInterface, InputProblem, problemsMessage, resolveByClass } from './error';

// What a call to a box's REST API answered, as GraphQL result members: ConfigureBoxSuccess,
// BoxConfigValues and one type per way a call fails, in the ConfigureBox, PointBoxAtGateway and
// BoxConfig unions. configureResult turns src/box-api/configure.ts's outcome into one of them.

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
    UNEXPECTED_SHAPE: { value: 'unexpected_shape', description: 'JSON not shaped as the call answers: a flat object of box settings (upper-case names, scalar values); for the media device calls an object with `media_device_id`.' },
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

export const ConfigureBoxResult = builder.errorUnion('ConfigureBoxResult', {
  description: 'ConfigureBoxSuccess, or why the box does not (or may not) hold the settings.',
  types: [ConfigureBoxSuccess, ...BOX_CALL_FAILURES],
  resolveType,
});

export const PointBoxAtGatewayResult = builder.errorUnion('PointBoxAtGatewayResult', {
  description: 'ConfigureBoxSuccess, or why the box does not (or may not) report to this gateway.',
  types: [ConfigureBoxSuccess, ...BOX_CALL_FAILURES],
  resolveType,
});

export const BoxConfigResult = builder.errorUnion('BoxConfigResult', {
  description: 'BoxConfigValues, or why the box’s settings could not be read.',
  types: [BoxConfigValues, ...BOX_CALL_FAILURES],
  resolveType,
});

/** A configure outcome as a result union member: success is returned, failures thrown (the union catches them). */
export function configureResult(outcome: ConfigureOutcome): ConfigureBoxSuccess {
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

/** A boxConfig read's outcome as a result union member: values are returned, failures thrown. */
export function boxConfigResult(outcome: ReadConfigOutcome): BoxConfigValues {
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
