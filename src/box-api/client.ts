import dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { storableJson, storableText } from '../models/storable-text';
import { BoxNetworks, type AddressRefusal, type RefusedAddress } from './box-networks';
import { CONFIG_KEY_PATTERN, type ConfigDict } from './config-keys';

/** The port of a box's REST API when an operator set none. */
export const DEFAULT_BOX_API_PORT = 5555;
export const SETCONFIGS_PATH = '/sophon/v2/face/setconfigs';
export const GETCONFIGS_PATH = '/sophon/v2/face/getconfigs';

/** Error codes the vendor documents; a box may answer others, which pass through as they are. */
export const BOX_ERROR_CODES = [
  'UNSUPPORT_CONTENT_TYPE',
  'INVALID_REQUEST_JSON',
  'MISSING_ARGUMENTS',
  'INVALID_ARGUMENTS',
  'NAME_REPEAT_ERROR',
] as const;
export type BoxErrorCode = (typeof BOX_ERROR_CODES)[number];

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
/** Characters of a content type kept in a bad answer's description. */
const CONTENT_TYPE_CHARS = 100;

/** Where a box's REST API listens: an IPv4 address, an IPv6 literal (brackets optional) or a host name. */
export interface BoxTarget {
  address: string;
  port: number;
}

export interface BoxCallOptions {
  /**
   * Deadline of one HTTP exchange with the box, in ms: name lookup, connect, request, answer headers
   * and body all count. When it passes the socket is destroyed and the outcome is `timed_out`.
   * Default 5000.
   */
  timeoutMs?: number;
  /**
   * Most bytes of an answer body read. A longer answer is cut there (the socket is destroyed, the
   * rest is never read) and is a `too_large` bad answer. Default 64 KiB.
   */
  maxResponseBytes?: number;
  /**
   * Which addresses may be connected to. Checked on the address actually connected to: an IP
   * literal before connecting, a host name on each address its lookup answers (so a name cannot
   * point elsewhere after the check). A refused address is an `address_refused` outcome, nothing
   * sent. Default: `new BoxNetworks()` (loopback and private ranges; never link-local and the like).
   */
  networks?: BoxNetworks;
}

/**
 * The box answered 2xx with a flat JSON object: for setConfigs the echo of the values it took, for
 * getConfigs the values read (only the keys asked for, when keys were given).
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

// ---------------------------------------------------------------------------------------------
// Targets

const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** The host to connect to, or why `target` cannot be a box. */
export function checkTarget(target: BoxTarget): { host: string } | BoxInvalidTarget {
  const invalid = (field: 'address' | 'port', message: string): BoxInvalidTarget => ({ kind: 'invalid_target', field, message, durationMs: 0 });
  const { address, port } = target;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return invalid('port', `Port ${String(port)} is not a whole number from 1 to 65535.`);
  }
  if (typeof address !== 'string' || address.length === 0) return invalid('address', 'The box address is empty.');
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (net.isIPv4(bare) || net.isIPv6(bare)) return { host: bare };
  // `127.1` and friends would reach getaddrinfo, which reads them as shorthand IPv4 addresses.
  if (/^[0-9.]+$/.test(bare) || !HOSTNAME.test(bare)) {
    return invalid('address', `${JSON.stringify(address)} is not an IP address or host name; give it without scheme, port or path.`);
  }
  return { host: bare };
}

/** `address:port` as called, `[v6]:port` for IPv6: the audit trail's `target`. */
export function formatTarget(target: BoxTarget): string {
  const bare = target.address.replace(/^\[(.*)\]$/, '$1');
  return `${net.isIPv6(bare) ? `[${bare}]` : bare}:${target.port}`;
}

// ---------------------------------------------------------------------------------------------
// One exchange

type Exchange =
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

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

/**
 * POSTs `payload` as JSON and reads the answer, on a connection of its own (`agent: false`, so
 * `Connection: close`). node:http follows no redirects, exposes the socket to destroy, and lets us
 * count body bytes as they come; one timer is the whole deadline.
 */
/** What a connection's lookup reports when every address a name resolved to is refused. */
class AddressRefusedError extends Error {
  readonly code = 'EADDRESSREFUSED';
  constructor(readonly refused: RefusedAddress) {
    super(refused.message);
  }
}

/**
 * `dns.lookup` for one connection, keeping only the addresses `networks` allows on `port`: the
 * socket connects to what this answers, so the address checked is the address called.
 */
function checkedLookup(networks: BoxNetworks, port: number): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const allowed = addresses.filter((entry) => networks.check(entry.address, port) === null);
      if (allowed.length === 0) {
        const refused = addresses.length > 0 ? networks.check(addresses[0]!.address, port)! : null;
        const failure = refused ? new AddressRefusedError(refused) : Object.assign(new Error(`${hostname} resolved to no address.`), { code: 'ENOTFOUND' });
        return callback(failure, '', 0);
      }
      if (options.all) return callback(null, allowed);
      return callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

function exchange(
  host: string,
  port: number,
  path: string,
  payload: unknown,
  timeoutMs: number,
  maxBytes: number,
  started: number,
  networks: BoxNetworks,
): Promise<Exchange> {
  const body = Buffer.from(JSON.stringify(payload));
  return new Promise((resolve) => {
    let settled = false;
    let requestSent = false;
    let timer: NodeJS.Timeout | undefined;

    const req = http.request({
      host,
      port,
      path,
      method: 'POST',
      agent: false,
      lookup: checkedLookup(networks, port),
      headers: { 'content-type': 'application/json', 'content-length': body.length, accept: 'application/json' },
    });
    const finish = (result: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Destroys the socket too: nothing left open, nothing more read.
      req.destroy();
      resolve(result);
    };
    // Timers may fire a little early by the monotonic clock; re-arm so durationMs never undercuts the deadline.
    const arm = (ms: number) => {
      timer = setTimeout(() => {
        const left = timeoutMs - (performance.now() - started);
        if (left > 0) arm(Math.ceil(left));
        else finish({ kind: 'timed_out', requestSent });
      }, ms);
    };
    arm(timeoutMs);

    req.on('finish', () => {
      requestSent = true;
    });
    req.on('error', (error: NodeJS.ErrnoException) => finish({ kind: 'failed', error, requestSent }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const contentType = res.headers['content-type'];
      // Not followed, and its Location not passed on: it may point into another service.
      if (status >= 300 && status < 400) return finish({ kind: 'redirect', status, contentType });
      const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
      if (declared !== undefined && declared > maxBytes) return finish({ kind: 'too_large', status, contentType, bytes: 0, declared });

      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size + chunk.length > maxBytes) return finish({ kind: 'too_large', status, contentType, bytes: maxBytes, declared });
        size += chunk.length;
        chunks.push(chunk);
      });
      res.on('end', () => finish({ kind: 'answer', status, contentType, body: Buffer.concat(chunks) }));
      res.on('error', (error: NodeJS.ErrnoException) => finish({ kind: 'failed', error, requestSent: true }));
      res.on('close', () => {
        if (!res.complete) {
          const error: NodeJS.ErrnoException = new Error('The box closed the connection in the middle of its answer.');
          error.code = 'ECONNRESET';
          finish({ kind: 'failed', error, requestSent: true });
        }
      });
    });
    req.end(body);
  });
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

/** The protocol's setting names: an object with other keys is not an answer from a box. */
function isSettingsObject(value: unknown): value is Record<string, unknown> {
  return isFlatObject(value) && Object.keys(value).every((key) => CONFIG_KEY_PATTERN.test(key));
}

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

function interpret(result: Exchange, timeoutMs: number, maxBytes: number, durationMs: number): BoxCallOutcome {
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
      // No box setting is named `error`, nor in lower case: such JSON is some other service's.
      if (!isSettingsObject(parsed.value)) return bad('unexpected_shape', 'JSON that is not a flat object of box settings.');
      return { kind: 'applied', values: parsed.value, httpStatus: status, durationMs };
    }
  }
}

const DEFAULT_NETWORKS = new BoxNetworks();

async function call(target: BoxTarget, path: string, payload: unknown, options: BoxCallOptions): Promise<BoxCallOutcome> {
  const checked = checkTarget(target);
  if ('kind' in checked) return checked;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}.`);
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxResponseBytes must be a positive whole number, got ${maxBytes}.`);
  const networks = options.networks ?? DEFAULT_NETWORKS;
  // A literal is connected to as it is (no lookup runs): check it here. Names are checked in the lookup.
  const refused = net.isIP(checked.host) ? networks.check(checked.host, target.port) : null;
  if (refused) return { kind: 'address_refused', refusal: refused.refusal, address: refused.address, message: refused.message, durationMs: 0 };
  const started = performance.now();
  const result = await exchange(checked.host, target.port, path, payload, timeoutMs, maxBytes, started, networks);
  return interpret(result, timeoutMs, maxBytes, elapsed(started));
}

// ---------------------------------------------------------------------------------------------
// The two calls

/**
 * `POST /sophon/v2/face/setconfigs` with `{"config_dict": configDict}`. Never throws for what the
 * box or the network does; check `configDict` with `validateConfigInput` first. The box applies
 * what it can before it reports an error, so after anything but `applied` (and `invalid_target`,
 * or `unreachable` with `requestSent: false`) read the keys back before trusting either state.
 */
export function setConfigs(target: BoxTarget, configDict: Readonly<ConfigDict>, options: BoxCallOptions = {}): Promise<BoxCallOutcome> {
  return call(target, SETCONFIGS_PATH, { config_dict: configDict }, options);
}

/**
 * `POST /sophon/v2/face/getconfigs`. `keys` undefined reads everything with `{}`; one key is asked
 * as `{"config_name": key}`; several are read with one `{}` call and picked (keys the box does not
 * list are absent from `values`). A box that refuses `{}` (rejected, or any bad answer but a
 * redirect) is asked once per key, one after the other; the first of those that fails is the
 * outcome. `timeoutMs` holds for each request; `durationMs` is the sum.
 */
export async function getConfigs(target: BoxTarget, keys: readonly string[] | undefined, options: BoxCallOptions = {}): Promise<BoxCallOutcome> {
  if (keys === undefined) return call(target, GETCONFIGS_PATH, {}, options);
  const wanted = [...new Set(keys)];
  if (wanted.length === 0) throw new TypeError('getConfigs: give at least one key, or undefined for all of them.');
  if (wanted.length === 1) return pickOne(await call(target, GETCONFIGS_PATH, { config_name: wanted[0] }, options), wanted[0]!);

  const all = await call(target, GETCONFIGS_PATH, {}, options);
  if (all.kind === 'applied') return { ...all, values: pick(all.values, wanted) };
  const fallBack = all.kind === 'rejected' || (all.kind === 'bad_answer' && all.reason !== 'redirect');
  if (!fallBack) return all;

  let durationMs = all.durationMs;
  const values: Record<string, unknown> = {};
  let last: BoxApplied | undefined;
  for (const key of wanted) {
    const one = pickOne(await call(target, GETCONFIGS_PATH, { config_name: key }, options), key);
    if (one.kind === 'invalid_target') return one;
    durationMs += one.durationMs;
    if (one.kind !== 'applied') return { ...one, durationMs };
    Object.assign(values, one.values);
    last = one;
  }
  return { kind: 'applied', values, httpStatus: last!.httpStatus, durationMs };
}

function pick(values: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const key of keys) if (Object.hasOwn(values, key)) picked[key] = values[key];
  return picked;
}

function pickOne(outcome: BoxCallOutcome, key: string): BoxCallOutcome {
  return outcome.kind === 'applied' ? { ...outcome, values: pick(outcome.values, [key]) } : outcome;
}
