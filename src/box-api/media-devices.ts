import net from 'node:net';
import { boxApiLocation, recordConfigChange, type ConfigChangeRow, type NewConfigChange } from '../models/box-config';
import type { BoxRow } from '../models/boxes';
import { deviceByExternalId, listedDeviceWithUrl, recordMediaDeviceRequest, type NewMediaDeviceRequest } from '../models/media-device-requests';
import type { BadAnswerReason, BoxCallOutcome, UnreachableReason } from './box-answer';
import { failureRecord, type FailedCall } from './audit-fields';
import type { AddressRefusal } from './box-networks';
import { addMediaDevice, deleteMediaDevice, formatTarget, type AddMediaDeviceBody } from './client';
import type { ConfigFieldError } from './config-keys';
import { boxTarget, type BoxConfigDeps } from './configure';

// addMediaDevice and deleteMediaDevice without GraphQL: check the input, refuse a URL the box is
// known to have, call the box one call at a time per box (the queue configureBox uses), and keep
// every attempt in the audit trail; an accepted one also as a media_device_requests row, committed
// with its audit row. No read-back: the call is one action, and the box's reports will show it.

/** The four capture-device types the box documents. */
export const MEDIA_DEVICE_TYPES = ['rtsp', 'photo', 'file', 'gb28181'] as const;
export type MediaDeviceType = (typeof MEDIA_DEVICE_TYPES)[number];

/** Longest name, id and permission id accepted; longest URL or path. */
export const MAX_MEDIA_TEXT_LENGTH = 128;
export const MAX_MEDIA_URL_LENGTH = 1024;

export interface MediaDeviceInput {
  name: string;
  type: string;
  url: string;
  /** The box generates one when absent. */
  mediaDeviceId?: string | null;
  permissionId?: string | null;
  netRelay?: { ip: string; port: number; channel: number; delayTime: number } | null;
  doRtmpForward?: boolean | null;
  rtmpAddress?: string | null;
  roiArea?: number[] | null;
}

interface Attempted {
  /** The audit row of the attempt. */
  change: ConfigChangeRow;
}

export type MediaDeviceOutcome =
  | (Attempted & { kind: 'accepted'; box: BoxRow; requestId: number; mediaDeviceId: string; name: string | null; httpStatus: number })
  | (Attempted & { kind: 'rejected'; code: string; message: string; httpStatus: number })
  | (Attempted & { kind: 'unreachable'; reason: UnreachableReason; message: string; requestSent: boolean; target: string })
  | (Attempted & { kind: 'timed_out'; timeoutMs: number; requestSent: boolean; target: string })
  | (Attempted & { kind: 'bad_answer'; reason: BadAnswerReason; httpStatus: number; message: string; contentType: string | null; bodyBytes: number; target: string })
  | (Attempted & { kind: 'address_refused'; refusal: AddressRefusal; address: string; message: string; target: string })
  /** Nothing was sent. `code` is INVALID_INPUT, or DEVICE_ADDRESS_DUPLICATE_ERROR when the box is known to have the URL. */
  | { kind: 'invalid'; code: string; problems: ConfigFieldError[]; change: ConfigChangeRow | null };

export interface AddMediaDeviceRequest {
  boxId: number;
  device: MediaDeviceInput;
  /** Who asked: the API token's name and id; null when unknown. */
  requestedBy: string | null;
}

export interface DeleteMediaDeviceRequest {
  boxId: number;
  mediaDeviceId: string;
  requestedBy: string | null;
}

const UNKNOWN_BOX = (boxId: number): ConfigFieldError => ({
  field: 'boxId',
  message: `There is no box with this id (Box ${boxId}): it never reported, was never registered, or was removed.`,
});

// ---------------------------------------------------------------------------------------------
// Input

// C0 and C1 controls and DEL: never in a name, id or URL a box should store.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function checkText(problems: ConfigFieldError[], field: string, value: unknown, { required, max }: { required: boolean; max: number }): void {
  if (value === undefined || value === null) {
    if (required) problems.push({ field, message: `${field} is required.` });
    return;
  }
  if (typeof value !== 'string') return void problems.push({ field, message: `${field} must be a string.` });
  if (value.trim() === '') return void problems.push({ field, message: required ? `${field} is required and must not be empty.` : `${field} must not be empty; leave it out instead.` });
  if (value.length > max) problems.push({ field, message: `${field} is ${value.length} characters long; at most ${max} are accepted.` });
  if (CONTROL.test(value)) problems.push({ field, message: `${field} contains a control character (a line break, tab, NUL, ...); remove it.` });
}

const HOST = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** What `url` must look like for `type`, as far as it is cheap and certain; null when it fits. */
function urlProblem(type: MediaDeviceType, url: string): string | null {
  switch (type) {
    case 'rtsp': {
      if (!/^rtsps?:\/\//i.test(url) || !URL.canParse(url) || new URL(url).hostname === '') return 'an rtsp device needs an rtsp:// URL with a host, e.g. rtsp://192.168.1.100:554/main/av.';
      return null;
    }
    case 'gb28181':
      // The vendor's own example spells the scheme gb28281://: both reach the box, which decides.
      return /^gb28[12]81:\/\/\S+$/i.test(url) ? null : 'a gb28181 device needs a gb28181:// URL, e.g. gb28181://34020000001320000001.';
    case 'photo':
      return net.isIP(url) !== 0 || (HOST.test(url) && !/^[0-9.]+$/.test(url)) ? null : 'a photo device’s URL is the IP address or host name of the camera, e.g. 192.168.1.22 (no scheme, port or path).';
    case 'file':
      return url.startsWith('/') && !url.split('/').includes('..') ? null : 'a file device’s URL is an absolute path on the box without `..`, e.g. /data/test.mp4.';
  }
}

/** Every problem with `device`, under the input's field names (`device.url`, ...). Empty when it can be sent. */
export function validateMediaDeviceInput(device: MediaDeviceInput): ConfigFieldError[] {
  const problems: ConfigFieldError[] = [];
  checkText(problems, 'device.name', device.name, { required: true, max: MAX_MEDIA_TEXT_LENGTH });
  checkText(problems, 'device.url', device.url, { required: true, max: MAX_MEDIA_URL_LENGTH });
  checkText(problems, 'device.mediaDeviceId', device.mediaDeviceId, { required: false, max: MAX_MEDIA_TEXT_LENGTH });
  checkText(problems, 'device.permissionId', device.permissionId, { required: false, max: MAX_MEDIA_TEXT_LENGTH });
  checkText(problems, 'device.rtmpAddress', device.rtmpAddress, { required: false, max: MAX_MEDIA_URL_LENGTH });
  const type = device.type as MediaDeviceType;
  if (!MEDIA_DEVICE_TYPES.includes(type)) {
    problems.push({ field: 'device.type', message: `${JSON.stringify(device.type)} is not a media device type: use rtsp, photo, file or gb28181.` });
  } else if (typeof device.url === 'string' && !problems.some((p) => p.field === 'device.url')) {
    const problem = urlProblem(type, device.url);
    if (problem) problems.push({ field: 'device.url', message: `${JSON.stringify(device.url)} does not fit type ${type}: ${problem}` });
  }
  if (device.rtmpAddress != null && !problems.some((p) => p.field === 'device.rtmpAddress') && !/^rtmps?:\/\/\S+$/i.test(device.rtmpAddress)) {
    problems.push({ field: 'device.rtmpAddress', message: 'rtmpAddress must be an rtmp:// URL, e.g. rtmp://10.0.0.9/live/gate1.' });
  }
  if (device.doRtmpForward === true && device.rtmpAddress == null) {
    problems.push({ field: 'device.rtmpAddress', message: 'doRtmpForward needs rtmpAddress: where the box forwards the stream.' });
  }
  if (device.roiArea != null) {
    const roi = device.roiArea;
    if (roi.length !== 4 || roi.some((n) => !Number.isInteger(n) || n < 0 || n > 100_000)) {
      problems.push({ field: 'device.roiArea', message: 'roiArea is four whole pixel coordinates [x1, y1, x2, y2], each from 0 to 100000.' });
    } else if (roi[0]! >= roi[2]! || roi[1]! >= roi[3]!) {
      problems.push({ field: 'device.roiArea', message: 'roiArea [x1, y1, x2, y2] needs x1 < x2 and y1 < y2.' });
    }
  }
  if (device.netRelay != null) {
    const { ip, port, channel, delayTime } = device.netRelay;
    if (net.isIP(ip) === 0) problems.push({ field: 'device.netRelay.ip', message: `${JSON.stringify(ip)} is not an IP address.` });
    if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push({ field: 'device.netRelay.port', message: 'netRelay.port must be a whole number from 1 to 65535.' });
    if (!Number.isInteger(channel) || channel < 0 || channel > 255) problems.push({ field: 'device.netRelay.channel', message: 'netRelay.channel must be a whole number from 0 to 255.' });
    if (!Number.isInteger(delayTime) || delayTime < 0 || delayTime > 3_600_000) {
      problems.push({ field: 'device.netRelay.delayTime', message: 'netRelay.delayTime must be a whole number from 0 to 3600000.' });
    }
  }
  return problems;
}

function validateMediaDeviceId(mediaDeviceId: string): ConfigFieldError[] {
  const problems: ConfigFieldError[] = [];
  checkText(problems, 'mediaDeviceId', mediaDeviceId, { required: true, max: MAX_MEDIA_TEXT_LENGTH });
  return problems;
}

/** The body sent, under the box's names; optional fields only when given. */
export function toAddMediaDeviceBody(device: MediaDeviceInput): AddMediaDeviceBody {
  const body: AddMediaDeviceBody = { media_device_name: device.name, media_device_type: device.type, media_device_url: device.url };
  if (device.mediaDeviceId != null) body.media_device_id = device.mediaDeviceId;
  if (device.permissionId != null) body.permission_id = device.permissionId;
  if (device.netRelay != null) {
    const { ip, port, channel, delayTime } = device.netRelay;
    body.net_relay = { ip, port, channel, delay_time: delayTime };
  }
  if (device.doRtmpForward != null) body.do_rtmp_forward = device.doRtmpForward;
  if (device.rtmpAddress != null) body.rtmp_address = device.rtmpAddress;
  if (device.roiArea != null) body.roi_area = device.roiArea;
  return body;
}

// ---------------------------------------------------------------------------------------------
// The calls

/** Asks the box to add `device`. Never throws for what the box or the network does; runs after earlier calls to the box. */
export function addMediaDeviceToBox(deps: BoxConfigDeps, request: AddMediaDeviceRequest): Promise<MediaDeviceOutcome> {
  return deps.queue.run(request.boxId, async () => {
    const { boxId, device, requestedBy } = request;
    const box = await boxApiLocation(deps.pool, boxId);
    if (!box) return { kind: 'invalid', code: 'INVALID_INPUT', problems: [UNKNOWN_BOX(boxId)], change: null };
    const problems = validateMediaDeviceInput(device);
    const target = boxTarget(box);
    if (!('address' in target)) problems.push(target);
    const body = toAddMediaDeviceBody(device);
    let code = 'INVALID_INPUT';
    if (problems.length === 0) {
      // The box refuses a second device with one URL; known from its reports, it is refused without a call.
      const listed = await listedDeviceWithUrl(deps.pool, boxId, device.url);
      if (listed) {
        code = 'DEVICE_ADDRESS_DUPLICATE_ERROR';
        const which = `${JSON.stringify(listed.externalId)}${listed.name ? ` (${listed.name})` : ''}`;
        problems.push({ field: 'device.url', message: `The box already has a device with this URL: ${which}. Delete that one first, or give another URL.` });
      }
    }
    const payload = { ...body } as Record<string, unknown>;
    return call(deps, { boxId, requestedBy, action: 'addmediadevice', payload, problems, code, target }, (t) => addMediaDevice(t, body, deps.call), (answer) => ({
      action: 'add',
      mediaDeviceId: String(answer.media_device_id),
      name: typeof answer.media_device_name === 'string' ? answer.media_device_name : device.name,
      type: device.type,
      url: device.url,
      permissionId: device.permissionId ?? null,
    }));
  });
}

/** Asks the box to delete its device `mediaDeviceId`. Never throws for what the box or the network does. */
export function deleteMediaDeviceFromBox(deps: BoxConfigDeps, request: DeleteMediaDeviceRequest): Promise<MediaDeviceOutcome> {
  return deps.queue.run(request.boxId, async () => {
    const { boxId, mediaDeviceId, requestedBy } = request;
    const box = await boxApiLocation(deps.pool, boxId);
    if (!box) return { kind: 'invalid', code: 'INVALID_INPUT', problems: [UNKNOWN_BOX(boxId)], change: null };
    const problems = validateMediaDeviceId(mediaDeviceId);
    const target = boxTarget(box);
    if (!('address' in target)) problems.push(target);
    // Not refused when the gateway has not seen the id: the box may have added it since its last report.
    const known = problems.length === 0 ? await deviceByExternalId(deps.pool, boxId, mediaDeviceId) : undefined;
    return call(
      deps,
      { boxId, requestedBy, action: 'deletemediadevice', payload: { media_device_id: mediaDeviceId }, problems, code: 'INVALID_INPUT', target },
      (t) => deleteMediaDevice(t, mediaDeviceId, deps.call),
      (answer) => ({
        action: 'delete',
        mediaDeviceId,
        name: typeof answer.media_device_name === 'string' ? answer.media_device_name : (known?.name ?? null),
        type: known?.type ?? null,
        url: known?.url ?? null,
        permissionId: known?.permissionId ?? null,
      }),
    );
  });
}

type FailedOutcome = Exclude<MediaDeviceOutcome, { kind: 'accepted' | 'invalid' }>;
type WithoutChange<T> = T extends unknown ? Omit<T, 'change'> : never;

/** A failed call as the workflow answers it; the caller adds the audit row. */
function failedOutcome(outcome: FailedCall, target: string): WithoutChange<FailedOutcome> {
  switch (outcome.kind) {
    case 'rejected':
      return { kind: 'rejected', code: outcome.code, message: outcome.message, httpStatus: outcome.httpStatus };
    case 'unreachable':
      return { kind: 'unreachable', reason: outcome.reason, message: outcome.message, requestSent: outcome.requestSent, target };
    case 'timed_out':
      return { kind: 'timed_out', timeoutMs: outcome.timeoutMs, requestSent: outcome.requestSent, target };
    case 'bad_answer': {
      const { reason, httpStatus, message, contentType, bodyBytes } = outcome;
      return { kind: 'bad_answer', reason, httpStatus, message, contentType, bodyBytes, target };
    }
    case 'address_refused':
      return { kind: 'address_refused', refusal: outcome.refusal, address: outcome.address, message: outcome.message, target };
  }
}

interface Attempt {
  boxId: number;
  requestedBy: string | null;
  action: 'addmediadevice' | 'deletemediadevice';
  /** The body sent (or, when invalid, that would have been). */
  payload: Record<string, unknown>;
  problems: ConfigFieldError[];
  /** The audit error code when `problems` is not empty. */
  code: string;
  target: ReturnType<typeof boxTarget>;
}

async function call(
  deps: BoxConfigDeps,
  attempt: Attempt,
  send: (target: Extract<ReturnType<typeof boxTarget>, { address: string }>) => Promise<BoxCallOutcome>,
  requested: (answer: Record<string, unknown>) => NewMediaDeviceRequest,
): Promise<MediaDeviceOutcome> {
  const { boxId, requestedBy, action, payload, problems, target } = attempt;
  const audit = (fields: Omit<NewConfigChange, 'boxId' | 'requestedBy' | 'action'>) => recordConfigChange(deps.pool, { boxId, requestedBy, action, ...fields });
  const gone = (): MediaDeviceOutcome => ({ kind: 'invalid', code: 'INVALID_INPUT', problems: [{ field: 'boxId', message: 'The box was removed while it was being called.' }], change: null });

  if (problems.length > 0 || !('address' in target)) {
    const recorded = await audit({
      requestedAt: new Date(),
      request: payload,
      target: null,
      outcome: 'invalid',
      httpStatus: null,
      response: null,
      errorCode: attempt.code,
      errorMessage: problems.map((p) => `${p.field}: ${p.message}`).join(' '),
      durationMs: 0,
    });
    return { kind: 'invalid', code: attempt.code, problems, change: recorded?.change ?? null };
  }

  const where = formatTarget(target);
  const requestedAt = new Date();
  const outcome = await send(target);
  const base = { requestedAt, request: payload, target: where, durationMs: outcome.durationMs };
  switch (outcome.kind) {
    case 'applied': {
      const recorded = await recordMediaDeviceRequest(
        deps.pool,
        { ...base, boxId, requestedBy, action, outcome: 'applied', httpStatus: outcome.httpStatus, response: outcome.values, errorCode: null, errorMessage: null },
        requested(outcome.values),
      );
      if (!recorded) return gone();
      const { change, box, requestId } = recorded;
      const name = typeof outcome.values.media_device_name === 'string' ? outcome.values.media_device_name : null;
      return { kind: 'accepted', box, requestId, mediaDeviceId: String(outcome.values.media_device_id), name, httpStatus: outcome.httpStatus, change };
    }
    case 'rejected':
    case 'unreachable':
    case 'timed_out':
    case 'bad_answer':
    case 'address_refused': {
      // No read-back: the call is one action, and the box's next report shows whether it happened.
      const recorded = await audit({ ...base, ...failureRecord(outcome) });
      if (!recorded) return gone();
      return { ...failedOutcome(outcome, where), change: recorded.change };
    }
    case 'invalid_target':
      // boxTarget checked the address and port already.
      throw new Error(`unreachable: target ${where} refused after checking: ${outcome.message}`);
  }
}
