import { storableJson, storableText } from '../models/storable-text';
import { AddressRefusedError, type AddressRefusal } from './box-networks';
import { CONFIG_KEY_PATTERN } from './config-keys';

// What a box's answer means: every outcome of one call to its REST API, and how the bytes that came
// back (or the failure) are read into one. Anything that is not the box protocol is told by its
// status, type and size only: it may be another service's page.

/** Error codes the vendor documents; a box may answer others, which pass through as they are. */
export const BOX_ERROR_CODES = [
  'UNSUPPORT_CONTENT_TYPE',
  'INVALID_REQUEST_JSON',
  'MISSING_ARGUMENTS',
  'INVALID_ARGUMENTS',
  'NAME_REPEAT_ERROR',
  'DEVICE_RTMP_ADDRESS_DUPLICATE_ERROR',
  'DEVICE_MAX_NUM_ERROR',
  'DEVICE_ADDRESS_DUPLICATE_ERROR',
  'DEVICE_ID_NOT_FOUND',
] as const;
export type BoxErrorCode = (typeof BOX_ERROR_CODES)[number];

/** Characters of a content type kept in a bad answer's description. */
const CONTENT_TYPE_CHARS = 100;
/**
 * The box answered 2xx with a flat JSON object: for setConfigs the echo of the values it took, for
 * getConfigs the values read (only the keys asked for, when keys were given), for the media device
 * calls `{"media_device_id", "media_device_name"}`.
 */
export interface BoxApplied {
  kind: 'applied';
  values: Record<string, unknown>;
  httpStatus: number;
  durationMs: number;
}

/**
 * The box answered `{"error": {"code", "message"}}`, whatever the HTTP status. After a rejected
 * setConfigs some keys may still have taken effect (the box applies what it can): read them back.
 */
export interface BoxRejected {
  kind: 'rejected';
  code: BoxErrorCode | (string & {});
  message: string;
  httpStatus: number;
  /** The parsed answer. */
  body: unknown;
  durationMs: number;
}

export type UnreachableReason = 'refused' | 'reset' | 'no_route' | 'dns' | 'other';

/** No answer: the connection failed or broke. `requestSent` says whether the box may have read the request. */
export interface BoxUnreachable {
  kind: 'unreachable';
  reason: UnreachableReason;
  message: string;
  requestSent: boolean;
  durationMs: number;
}

/** The deadline passed before the whole answer arrived. `requestSent` as for `unreachable`. */
export interface BoxTimedOut {
  kind: 'timed_out';
  timeoutMs: number;
  requestSent: boolean;
  durationMs: number;
}

export type BadAnswerReason = 'redirect' | 'not_json' | 'too_large' | 'unexpected_status' | 'unexpected_shape';

/**
 * The box answered something no box should: not the box protocol (see `interpret`), so possibly
 * another service's page. Nothing in it is trusted or passed on: only its status, content type and size.
 */
export interface BoxBadAnswer {
  kind: 'bad_answer';
  reason: BadAnswerReason;
  httpStatus: number;
  message: string;
  /** The answer's Content-Type header, as sent (at most 100 characters); null without one. */
  contentType: string | null;
  /** Body bytes read (0 for a redirect, which is not read; for an answer cut at the limit, the limit). */
  bodyBytes: number;
  durationMs: number;
}

/** The address or port cannot be a box's; nothing was sent. */
export interface BoxInvalidTarget {
  kind: 'invalid_target';
  field: 'address' | 'port';
  message: string;
  durationMs: 0;
}

/** The address (as given, or as the name resolved) is not one a box may have; nothing was sent. */
export interface BoxAddressRefused {
  kind: 'address_refused';
  refusal: AddressRefusal;
  /** The address refused (for a name: the first it resolved to). */
  address: string;
  message: string;
  durationMs: number;
}

export type BoxCallOutcome = BoxApplied | BoxRejected | BoxUnreachable | BoxTimedOut | BoxBadAnswer | BoxInvalidTarget | BoxAddressRefused;
/** What one HTTP exchange with a box gave, before it is read (see `interpret`). */
export type Exchange =
  | { kind: 'answer'; status: number; contentType: string | undefined; body: Buffer }
  | { kind: 'redirect'; status: number; contentType: string | undefined }
  | { kind: 'too_large'; status: number; contentType: string | undefined; bytes: number; declared: number | undefined }
  | { kind: 'failed'; error: NodeJS.ErrnoException; requestSent: boolean }
  | { kind: 'timed_out'; requestSent: boolean };

/** Which unreachable reason a socket error code stands for. */
export function unreachableReason(code: string | undefined): UnreachableReason {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return 'reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
      return 'no_route';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
      return 'dns';
    default:
      return 'other';
  }
}

// ---------------------------------------------------------------------------------------------
// Reading an answer

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFlatObject(value: unknown): value is Record<string, unknown> {
  return isPlainObject(value) && Object.values(value).every((v) => v === null || typeof v !== 'object');
}

/** `{"error": {"code", "message"}}`, as the vendor documents every failure. */
function boxError(value: unknown): { code: string; message: string } | null {
  if (!isPlainObject(value) || !isPlainObject(value.error)) return null;
  const { code, message } = value.error;
  if (typeof code !== 'string' && typeof code !== 'number') return null;
  return { code: String(code), message: typeof message === 'string' ? message : '' };
}

/** What a call's success answer must look like; anything else is an `unexpected_shape` bad answer. */
export interface AnswerShape {
  accepts(value: unknown): value is Record<string, unknown>;
  /** What the answer was instead, for the bad answer's message: `JSON that is not ...`. */
  unlike: string;
}

/** setconfigs and getconfigs: the protocol's setting names; an object with other keys is not an answer from a box. */
export const SETTINGS_SHAPE: AnswerShape = {
  accepts: (value): value is Record<string, unknown> => isFlatObject(value) && Object.keys(value).every((key) => CONFIG_KEY_PATTERN.test(key)),
  // No box setting is named `error`, nor in lower case: such JSON is some other service's.
  unlike: 'JSON that is not a flat object of box settings.',
};

/** addmediadevice and deletemediadevice: `{"media_device_id", "media_device_name"}`; without the id it is not the box's answer. */
export const MEDIA_DEVICE_SHAPE: AnswerShape = {
  accepts: (value): value is Record<string, unknown> =>
    isFlatObject(value) && typeof value.media_device_id === 'string' && value.media_device_id !== '' && (value.media_device_name === undefined || value.media_device_name === null || typeof value.media_device_name === 'string'),
  unlike: 'JSON that is not a media device answer (an object with a `media_device_id`).',
};

/** `1234 bytes of text/html`, `no body`: what a bad answer is described by, never its content. */
function describeBody(bytes: number, contentType: string | undefined): string {
  const type = contentType ? ` of ${storableText(contentType.slice(0, CONTENT_TYPE_CHARS))}` : ' without a content type';
  return bytes === 0 ? `no body${contentType ? ` (${storableText(contentType.slice(0, CONTENT_TYPE_CHARS))})` : ''}` : `${bytes} bytes${type}`;
}

function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    // A box's text goes on to the caller and the audit trail: NUL and lone surrogates become escapes.
    return { ok: true, value: storableJson(JSON.parse(body.toString('utf8').replace(/^\uFEFF/, ''))) };
  } catch {
    return { ok: false };
  }
}

export function interpret(result: Exchange, timeoutMs: number, maxBytes: number, durationMs: number, shape: AnswerShape = SETTINGS_SHAPE): BoxCallOutcome {
  switch (result.kind) {
    case 'timed_out':
      return { kind: 'timed_out', timeoutMs, requestSent: result.requestSent, durationMs };
    case 'failed': {
      const { error } = result;
      if (error instanceof AddressRefusedError) {
        const { refusal, address, message } = error.refused;
        return { kind: 'address_refused', refusal, address, message, durationMs };
      }
      const reason = unreachableReason(error.code);
      const message = !error.code || error.message.includes(error.code) ? error.message : `${error.code}: ${error.message}`;
      return { kind: 'unreachable', reason, message, requestSent: result.requestSent, durationMs };
    }
    case 'redirect':
    case 'too_large':
    case 'answer': {
      const { status } = result;
      const contentType = result.contentType ? storableText(result.contentType.slice(0, CONTENT_TYPE_CHARS)) : null;
      const bytes = result.kind === 'answer' ? result.body.length : result.kind === 'too_large' ? result.bytes : 0;
      // Not the box protocol: possibly another service's page, so only its status, type and size are told.
      const bad = (reason: BadAnswerReason, what: string): BoxBadAnswer => ({
        kind: 'bad_answer',
        reason,
        httpStatus: status,
        message: `The box answered HTTP ${status} with ${describeBody(bytes, result.contentType)}: ${what} Its content is not shown.`,
        contentType,
        bodyBytes: bytes,
        durationMs,
      });
      if (result.kind === 'redirect') return bad('redirect', 'a redirect, never followed.');
      if (result.kind === 'too_large') {
        return result.declared !== undefined && result.declared > maxBytes
          ? { ...bad('too_large', `it announced ${result.declared} bytes; at most ${maxBytes} are read.`), bodyBytes: 0 }
          : bad('too_large', `longer than the ${maxBytes} bytes read; reading stopped there.`);
      }
      const parsed = parseJson(result.body);
      const error = parsed.ok ? boxError(parsed.value) : null;
      // Only the documented error object is passed on, not whatever else the JSON holds.
      if (error) return { kind: 'rejected', code: error.code, message: error.message, httpStatus: status, body: { error }, durationMs };
      if (status < 200 || status > 299) return bad('unexpected_status', 'not 2xx, and without the box’s error object.');
      if (!parsed.ok) return bad('not_json', 'not JSON.');
      if (!shape.accepts(parsed.value)) return bad('unexpected_shape', shape.unlike);
      return { kind: 'applied', values: parsed.value, httpStatus: status, durationMs };
    }
  }
}
