import type { ConfigFieldError } from '../../box-api/config-keys';
import { addMediaDeviceToBox, deleteMediaDeviceFromBox, MAX_MEDIA_TEXT_LENGTH, MAX_MEDIA_URL_LENGTH, type MediaDeviceOutcome } from '../../box-api/media-devices';
import type { MediaDeviceAction } from '../../db/schema';
import type { ConfigChangeRow } from '../../models/box-config';
import type { BoxRow } from '../../models/boxes';
import {
  mediaDeviceRequestsByIds,
  mediaDeviceRequestsPerBox,
  pendingDeletionsByDeviceIds,
  type MediaDeviceRequestRow,
  type MediaDeviceRequestState,
  type PendingWindow,
} from '../../models/media-device-requests';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { badUserInput } from '../errors';
import { parseDatabaseId } from '../global-id';
import { BoxRef } from './box';
import { BoxAddressRefused, BoxBadAnswer, BoxTimedOut, BoxUnreachable } from './box-call-results';
import { boxConfigDeps, boxIdFrom } from './box-config';
import { BoxConfigChangeRef } from './box-config-change';
import { DeviceRef } from './device';
import { ErrorInterface, InputProblem, problemsMessage, resolveByClass } from './error';
import { batchLoader, groupBy } from './pagination';

// addMediaDevice and deleteMediaDevice: capture devices added to or deleted from a box through its
// own REST API (src/box-api/media-devices.ts), each accepted one kept as a MediaDeviceRequest that
// shows PENDING until the box's reports reflect it; Box.mediaDeviceRequests and Device.pendingDeletion.

/** Report periods a request stays pending (at least MEDIA_DEVICE_PENDING_MIN_SECONDS). */
export const PENDING_REPORT_PERIODS = 3;

function pendingWindow(context: GraphQLContext): PendingWindow {
  return { periods: PENDING_REPORT_PERIODS, defaultPeriodSeconds: context.config.defaultReportPeriodSeconds, minSeconds: context.config.mediaDevicePendingMinSeconds };
}

// ---------------------------------------------------------------------------------------------
// Requests and their state

const MediaDeviceActionEnum = builder.enumType('MediaDeviceAction', {
  values: {
    ADD: { value: 'add', description: '`addmediadevice`' },
    DELETE: { value: 'delete', description: '`deletemediadevice`' },
  } satisfies Record<string, { value: MediaDeviceAction; description: string }>,
});

const STATE_DESCRIPTION =
  `CONFIRMED once a report the box sent after the request reflects it (an add: the box's current devices list it, by its id or, for older boxes, its URL; a delete: they no longer list it). ` +
  `Until then PENDING, for ${PENDING_REPORT_PERIODS} report periods of the box (its configured period, else its observed one, else DEFAULT_REPORT_PERIOD_SECONDS), at least MEDIA_DEVICE_PENDING_MIN_SECONDS (default 60); UNCONFIRMED after that. ` +
  'Computed when read, from the box’s current devices: an add whose device was later deleted reads UNCONFIRMED.';

const MediaDeviceRequestStateEnum = builder.enumType('MediaDeviceRequestState', {
  description: STATE_DESCRIPTION,
  values: {
    PENDING: { value: 'pending', description: 'The box accepted it; no report since shows it yet.' },
    CONFIRMED: { value: 'confirmed', description: 'A report after the request reflects it.' },
    UNCONFIRMED: { value: 'unconfirmed', description: 'The pending window passed and the box’s reports still do not reflect it: check the box (boxConfig, its devices).' },
  } satisfies Record<string, { value: MediaDeviceRequestState; description: string }>,
});

export const MediaDeviceRequestRef = builder.loadableNode('MediaDeviceRequest', {
  description:
    'A media device add or delete the box accepted through this gateway, shown as requested until the box’s reports reflect it. Needs the operator role, however it is reached: device URLs often hold credentials.',
  authScopes: { operator: true },
  id: { resolve: (request: MediaDeviceRequestRow) => request.id, parse: (id) => parseDatabaseId(id, 'MediaDeviceRequest') },
  load: (ids: number[], context: GraphQLContext) => {
    context.uncacheable = true; // the state changes with time alone
    return mediaDeviceRequestsByIds(context.pool, ids, pendingWindow(context));
  },
  toKey: (request) => request.id,
  sort: true,
  fields: (t) => ({
    box: t.field({ type: BoxRef, resolve: (request) => request.boxId }),
    action: t.expose('action', { type: MediaDeviceActionEnum }),
    mediaDeviceId: t.exposeString('mediaDeviceId', { description: 'The box’s `media_device_id`: as it answered, for an add (it makes one when none was given).' }),
    name: t.exposeString('name', { nullable: true, description: 'The device’s name: as the box answered it, else as asked (for a delete, as last reported).' }),
    type: t.exposeString('type', { nullable: true, description: '`rtsp`, `photo`, `file` or `gb28181`; for a delete, as last reported (null for a device never reported).' }),
    url: t.exposeString('url', { nullable: true, description: 'Its stream URL, address or path; for a delete, as last reported.' }),
    permissionId: t.exposeString('permissionId', { nullable: true }),
    requestedAt: t.expose('requestedAt', { type: 'DateTime', description: 'When the box was called.' }),
    requestedBy: t.exposeString('requestedBy', { nullable: true, description: 'The name and id of the API token used.' }),
    change: t.field({ type: BoxConfigChangeRef, description: 'The call as the audit trail keeps it.', resolve: (request) => request.changeId }),
    state: t.field({
      type: MediaDeviceRequestStateEnum,
      description: STATE_DESCRIPTION,
      resolve: (request, _args, context) => {
        context.uncacheable = true;
        return request.state;
      },
    }),
    device: t.field({
      type: DeviceRef,
      nullable: true,
      description: 'The device as the box reports it (an add: listed with the id, or the URL; a delete: with the id, removed once confirmed); null while never reported.',
      resolve: (request) => request.deviceId,
    }),
  }),
});

const MAX_REQUESTS = 100;

builder.objectField(BoxRef, 'mediaDeviceRequests', (t) =>
  t.field({
    type: [MediaDeviceRequestRef],
    description: `Media devices added or deleted through this gateway, newest first: the newest \`first\` (default 20, at most ${MAX_REQUESTS}) in the states asked for; the lists of all boxes in a response are read in one statement. Needs the operator role.`,
    authScopes: { operator: true },
    args: {
      state: t.arg({ type: [MediaDeviceRequestStateEnum], description: 'Only requests in these states; all when left out.' }),
      first: t.arg.int({ defaultValue: 20, description: `0 to ${MAX_REQUESTS}.` }),
    },
    resolve: (box, args, context) => {
      const limit = args.first ?? 20;
      if (limit < 0 || limit > MAX_REQUESTS) throw badUserInput(`\`first\` must be between 0 and ${MAX_REQUESTS}; it was ${limit}.`, { argument: 'first', max: MAX_REQUESTS });
      context.uncacheable = true; // states change with time alone
      const states = args.state ?? undefined;
      const key = `Box.mediaDeviceRequests:${limit}:${states?.join(',') ?? '*'}`;
      return batchLoader(
        context,
        key,
        async (boxIds) => {
          const rows = await mediaDeviceRequestsPerBox(context.pool, boxIds, pendingWindow(context), { states, limit });
          const loader = MediaDeviceRequestRef.getDataloader(context);
          for (const row of rows) loader.prime(row.id, row);
          return groupBy(rows, (row) => row.boxId);
        },
        [] as MediaDeviceRequestRow[],
      ).load(box.id);
    },
  }),
);

builder.objectField(DeviceRef, 'pendingDeletion', (t) =>
  t.field({
    type: MediaDeviceRequestRef,
    nullable: true,
    authScopes: { operator: true },
    description: 'The deleteMediaDevice request the box accepted for it and its reports do not show yet (PENDING); null otherwise. Needs the operator role.',
    resolve: (device, _args, context) => {
      context.uncacheable = true;
      return batchLoader(context, 'Device.pendingDeletion', (ids) => pendingDeletionsByDeviceIds(context.pool, ids, pendingWindow(context)), null).load(device.id);
    },
  }),
);

// ---------------------------------------------------------------------------------------------
// Results

export class InvalidMediaDevice extends Error {
  constructor(
    readonly problems: ConfigFieldError[],
    readonly code: string,
    readonly change: ConfigChangeRow | null = null,
  ) {
    super(problemsMessage(problems));
  }
}

export class BoxRejectedMediaDevice extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly httpStatus: number,
    readonly change: ConfigChangeRow,
  ) {
    super(message);
  }
}

/** The box accepted the add or delete; `requestId` is its MediaDeviceRequest. */
export class MediaDeviceRequested {
  constructor(
    readonly box: BoxRow,
    readonly requestId: number,
    readonly change: ConfigChangeRow,
  ) {}
}

const CHANGE_DESCRIPTION = 'The attempt as the audit trail keeps it; null when nothing was recorded (an unknown box).';

builder.objectType(InvalidMediaDevice, {
  name: 'InvalidMediaDevice',
  description:
    `Nothing was sent to the box: an unknown box or one without a known address; a name, URL or id missing, empty, longer than ${MAX_MEDIA_TEXT_LENGTH} (URLs ${MAX_MEDIA_URL_LENGTH}) characters or with control characters; a type other than rtsp, photo, file, gb28181; a URL that does not fit its type; or a URL the box already has (by its reports).`,
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof InvalidMediaDevice,
  fields: (t) => ({
    code: t.exposeString('code', { description: 'INVALID_INPUT, or DEVICE_ADDRESS_DUPLICATE_ERROR (as the box would answer) when its reports list a device with this URL.' }),
    problems: t.field({ type: [InputProblem], resolve: (error) => error.problems }),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: CHANGE_DESCRIPTION, resolve: (error) => error.change }),
  }),
});

builder.objectType(BoxRejectedMediaDevice, {
  name: 'BoxRejectedMediaDevice',
  description: 'The box answered `{"error": {"code", "message"}}`: it did not add (or delete) the device.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof BoxRejectedMediaDevice,
  fields: (t) => ({
    code: t.exposeString('code', {
      description:
        'The box’s code: UNSUPPORT_CONTENT_TYPE, MISSING_ARGUMENTS, INVALID_ARGUMENTS, DEVICE_ADDRESS_DUPLICATE_ERROR (it has a device with this URL), DEVICE_RTMP_ADDRESS_DUPLICATE_ERROR, DEVICE_MAX_NUM_ERROR (it watches as many devices as it can), DEVICE_ID_NOT_FOUND (delete: no such device), or another it sends (a number as its digits).',
    }),
    httpStatus: t.exposeInt('httpStatus'),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: 'The attempt as the audit trail keeps it (never null here).', resolve: (error) => error.change }),
  }),
});

builder.objectType(MediaDeviceRequested, {
  name: 'MediaDeviceRequested',
  description: 'The box accepted the add or delete. Its reports show it later: `request.state` is PENDING until one does.',
  isTypeOf: (value) => value instanceof MediaDeviceRequested,
  fields: (t) => ({
    request: t.field({ type: MediaDeviceRequestRef, resolve: (result) => result.requestId }),
    box: t.field({ type: BoxRef, description: 'The box as it now is.', resolve: (result) => result.box }),
    change: t.field({ type: BoxConfigChangeRef, nullable: true, description: 'The attempt as the audit trail keeps it (never null here).', resolve: (result) => result.change }),
  }),
});

const resolveType = resolveByClass([
  [MediaDeviceRequested, 'MediaDeviceRequested'],
  [BoxRejectedMediaDevice, 'BoxRejectedMediaDevice'],
  [BoxUnreachable, 'BoxUnreachable'],
  [BoxTimedOut, 'BoxTimedOut'],
  [BoxBadAnswer, 'BoxBadAnswer'],
  [BoxAddressRefused, 'BoxAddressRefused'],
  [InvalidMediaDevice, 'InvalidMediaDevice'],
]);
const MEDIA_CALL_TYPES = [MediaDeviceRequested, BoxRejectedMediaDevice, BoxUnreachable, BoxTimedOut, BoxBadAnswer, BoxAddressRefused, InvalidMediaDevice];

const AddMediaDeviceResult = builder.errorUnion('AddMediaDeviceResult', {
  description: 'MediaDeviceRequested, or why the box did not (or may not have) take the device.',
  types: MEDIA_CALL_TYPES,
  resolveType,
});

const DeleteMediaDeviceResult = builder.errorUnion('DeleteMediaDeviceResult', {
  description: 'MediaDeviceRequested, or why the box did not (or may not have) delete the device.',
  types: MEDIA_CALL_TYPES,
  resolveType,
});

/** What `requestSent` means for a media device call that got no answer. */
function mayHaveHappened(action: 'add' | 'delete', requestSent: boolean): string {
  if (!requestSent) return ' Nothing was sent.';
  const done = action === 'add' ? 'added' : 'deleted';
  return ` The request was sent, so the box may have ${done} the device; its next report shows whether it did (Box.devices). No MediaDeviceRequest was kept.`;
}

/** A media device outcome as a result union member: success is returned, failures thrown (the union catches them). */
function mediaDeviceResult(action: 'add' | 'delete', outcome: MediaDeviceOutcome): MediaDeviceRequested {
  switch (outcome.kind) {
    case 'accepted':
      return new MediaDeviceRequested(outcome.box, outcome.requestId, outcome.change);
    case 'rejected':
      throw new BoxRejectedMediaDevice(outcome.message || `The box refused with ${outcome.code}.`, outcome.code, outcome.httpStatus, outcome.change);
    case 'unreachable':
      throw new BoxUnreachable(
        `Could not reach the box at ${outcome.target}: ${outcome.message}.${mayHaveHappened(action, outcome.requestSent)}`,
        outcome.reason,
        outcome.requestSent,
        outcome.target,
        null,
        outcome.change,
      );
    case 'timed_out':
      throw new BoxTimedOut(
        `The box at ${outcome.target} did not answer within ${outcome.timeoutMs} ms.${mayHaveHappened(action, outcome.requestSent)}`,
        outcome.timeoutMs,
        outcome.requestSent,
        outcome.target,
        outcome.change,
      );
    case 'bad_answer':
      throw new BoxBadAnswer(
        `${outcome.message} The box may have ${action === 'add' ? 'added' : 'deleted'} the device; its next report shows whether it did. No MediaDeviceRequest was kept.`,
        outcome.reason,
        outcome.httpStatus,
        outcome.contentType,
        outcome.bodyBytes,
        outcome.target,
        null,
        outcome.change,
      );
    case 'address_refused': {
      const fix = outcome.refusal === 'not_allowed' ? 'Correct the box’s address with updateBox, or add its network to BOX_NETWORKS.' : 'Correct the box’s address (or port) with updateBox.';
      throw new BoxAddressRefused(`The gateway does not call ${outcome.target}: ${outcome.message} Nothing was sent. ${fix}`, outcome.refusal, outcome.address, outcome.target, outcome.change);
    }
    case 'invalid':
      throw new InvalidMediaDevice(outcome.problems, outcome.code, outcome.change);
  }
}

// ---------------------------------------------------------------------------------------------
// Operations

const MediaDeviceNetRelayInput = builder.inputType('MediaDeviceNetRelayInput', {
  description: '`net_relay`: a network relay the box switches for the device.',
  fields: (t) => ({
    ip: t.string({ required: true }),
    port: t.int({ required: true }),
    channel: t.int({ required: true }),
    delayTime: t.int({ required: true, description: '`delay_time`' }),
  }),
});

const MediaDeviceInput = builder.inputType('MediaDeviceInput', {
  description: 'A capture device for the box to watch, as its `addmediadevice` takes it. Optional fields are sent only when given.',
  fields: (t) => ({
    name: t.string({ required: true, description: `\`media_device_name\`, 1 to ${MAX_MEDIA_TEXT_LENGTH} characters.` }),
    type: t.string({ required: true, description: '`media_device_type`: `rtsp` (video stream), `photo` (picture stream), `file` (a video file on the box) or `gb28181` (national-standard stream).' }),
    url: t.string({
      required: true,
      description: `\`media_device_url\`, fitting the type: rtsp \`rtsp://…\`, photo the camera's IP or host name, file an absolute path, gb28181 \`gb28181://…\`; at most ${MAX_MEDIA_URL_LENGTH} characters. The box refuses a URL it already has.`,
    }),
    mediaDeviceId: t.string({ description: '`media_device_id`; the box makes one when left out.' }),
    permissionId: t.string({ description: '`permission_id`: the permission group the device is bound to.' }),
    netRelay: t.field({ type: MediaDeviceNetRelayInput }),
    doRtmpForward: t.boolean({ description: '`do_rtmp_forward`: forward the stream to `rtmpAddress`.' }),
    rtmpAddress: t.string({ description: '`rtmp_address`, an `rtmp://` URL.' }),
    roiArea: t.intList({ description: '`roi_area`: the region watched, [x1, y1, x2, y2] in pixels.' }),
  }),
});

builder.mutationFields((t) => ({
  addMediaDevice: t.field({
    authScopes: { operator: true },
    type: AddMediaDeviceResult,
    description:
      'Asks the box to watch a capture device, through `POST /sophon/v2/face/addmediadevice` on its recorded address and API port. Calls to one box run one at a time; every attempt is kept in `Box.configChanges`. An accepted one is a MediaDeviceRequest, PENDING until the box’s reports list the device. Needs the operator role.',
    args: { boxId: t.arg.id({ required: true }), device: t.arg({ type: MediaDeviceInput, required: true }) },
    resolve: async (_root, args, context) => {
      const boxId = boxIdFrom(args.boxId);
      if (typeof boxId !== 'number') throw new InvalidMediaDevice([boxId], 'INVALID_INPUT');
      const outcome = await addMediaDeviceToBox(boxConfigDeps(context), { boxId, device: args.device, requestedBy: context.actor });
      return mediaDeviceResult('add', outcome);
    },
  }),
  deleteMediaDevice: t.field({
    authScopes: { operator: true },
    type: DeleteMediaDeviceResult,
    description:
      'Asks the box to stop watching a capture device, through `POST /sophon/v2/face/deletemediadevice` with its `media_device_id` (a Device’s `externalId`). As addMediaDevice: one call per box at a time, audited, and PENDING until the box’s reports no longer list it. Needs the operator role.',
    args: { boxId: t.arg.id({ required: true }), mediaDeviceId: t.arg.string({ required: true }) },
    resolve: async (_root, args, context) => {
      const boxId = boxIdFrom(args.boxId);
      if (typeof boxId !== 'number') throw new InvalidMediaDevice([boxId], 'INVALID_INPUT');
      const outcome = await deleteMediaDeviceFromBox(boxConfigDeps(context), { boxId, mediaDeviceId: args.mediaDeviceId, requestedBy: context.actor });
      return mediaDeviceResult('delete', outcome);
    },
  }),
}));
