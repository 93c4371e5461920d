// How a call to a box's REST API is made: the target checked, one HTTP exchange under one deadline,
// connected only to addresses the box networks allow. What the answer means is ./box-answer.ts.
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { interpret, MEDIA_DEVICE_SHAPE, SETTINGS_SHAPE, type AnswerShape, type BoxApplied, type BoxCallOutcome, type BoxInvalidTarget, type Exchange } from './box-answer';
import { checkedLookup } from '../net/address-policy';
import { BoxNetworks } from './box-networks';
import type { ConfigDict } from './config-keys';

/** The port of a box's REST API when an operator set none. */
export const DEFAULT_BOX_API_PORT = 5555;
export const SETCONFIGS_PATH = '/sophon/v2/face/setconfigs';
export const GETCONFIGS_PATH = '/sophon/v2/face/getconfigs';
export const ADDMEDIADEVICE_PATH = '/sophon/v2/face/addmediadevice';
export const DELETEMEDIADEVICE_PATH = '/sophon/v2/face/deletemediadevice';

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;

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

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

/**
 * POSTs `payload` as JSON and reads the answer, on a connection of its own (`agent: false`, so
 * `Connection: close`). node:http follows no redirects, exposes the socket to destroy, and lets us
 * count body bytes as they come; one timer is the whole deadline.
 */
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

const DEFAULT_NETWORKS = new BoxNetworks();

async function call(target: BoxTarget, path: string, payload: unknown, options: BoxCallOptions, shape: AnswerShape = SETTINGS_SHAPE): Promise<BoxCallOutcome> {
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
  return interpret(result, timeoutMs, maxBytes, elapsed(started), shape);
}

// ---------------------------------------------------------------------------------------------
// The calls

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

/** The body of `addmediadevice`, under the box's names; optional fields are sent only when given. */
export interface AddMediaDeviceBody {
  media_device_name: string;
  media_device_type: string;
  media_device_url: string;
  media_device_id?: string;
  permission_id?: string;
  net_relay?: { ip: string; port: number; channel: number; delay_time: number };
  do_rtmp_forward?: boolean;
  rtmp_address?: string;
  roi_area?: number[];
}

/**
 * `POST /sophon/v2/face/addmediadevice`. `applied` carries the box's `{"media_device_id",
 * "media_device_name"}`; a 2xx without `media_device_id` is an `unexpected_shape` bad answer.
 * Never throws for what the box or the network does.
 */
export function addMediaDevice(target: BoxTarget, body: AddMediaDeviceBody, options: BoxCallOptions = {}): Promise<BoxCallOutcome> {
  return call(target, ADDMEDIADEVICE_PATH, body, options, MEDIA_DEVICE_SHAPE);
}

/** `POST /sophon/v2/face/deletemediadevice` with `{"media_device_id"}`; answers as addMediaDevice. */
export function deleteMediaDevice(target: BoxTarget, mediaDeviceId: string, options: BoxCallOptions = {}): Promise<BoxCallOutcome> {
  return call(target, DELETEMEDIADEVICE_PATH, { media_device_id: mediaDeviceId }, options, MEDIA_DEVICE_SHAPE);
}
