import type { Dispatcher } from 'undici';
import type { BoxIdentity } from './fleet';

// A box's login to its management platform, as newer SE boxes do before they report (see
// shared/box-protocol.md, "Box login to the platform"): GET <login url>?dev_sno=<key>&device_sn=<serial>;
// a 200 says where to report (`media_device_monitor_url`, relative URLs joined to the login URL's root)
// and how often (`media_device_monitor_report_period`); any other status is a failed login, with the
// vendor's codes 600000 (no such key) and 600002 (key bound to another box).

/** The platform-login reply's documented default period, when a reply leaves it out. */
export const LOGIN_DEFAULT_PERIOD_SECONDS = 20;

export type LoginOutcome =
  | { kind: 'ok'; monitorUrl: string; reportPeriodSeconds: number }
  /** Answered, but not with a usable 200: `code` is the vendor's error code when the answer had one. */
  | { kind: 'refused'; status: number; code: string | null; message: string }
  /** No answer: the network error's code, or `timeout`. */
  | { kind: 'failed'; error: string };

/** The reply's fields, at its top level or (some platforms) inside `data`. */
function replyFields(body: unknown): Record<string, unknown> | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const record = body as Record<string, unknown>;
  if ('media_device_monitor_url' in record) return record;
  const data = record.data;
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : record;
}

/** Whole seconds from a number or a numeric string; undefined for anything else. */
function period(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  return Number.isFinite(n) && n >= 1 ? Math.round(n) : undefined;
}

/** `{error: {code, message}}`, or `{code, message}` at the top level. */
function errorOf(body: unknown): { code: string | null; message: string } {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const error = typeof record.error === 'object' && record.error !== null ? (record.error as Record<string, unknown>) : record;
  const code = typeof error.code === 'number' || typeof error.code === 'string' ? String(error.code) : null;
  const message = typeof error.message === 'string' ? error.message : typeof record.msg === 'string' ? record.msg : '';
  return { code, message };
}

/** The login request's URL: the login URL with the box's key and serial added to its query. */
export function loginRequestUrl(loginUrl: string, box: BoxIdentity & { serialNumber: string }): URL {
  const url = new URL(loginUrl);
  url.searchParams.set('dev_sno', box.licenseKey);
  url.searchParams.set('device_sn', box.serialNumber);
  return url;
}

/** Reads a login reply (status and body text) into an outcome. */
export function readLoginReply(loginUrl: string, status: number, text: string): LoginOutcome {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status !== 200) return { kind: 'refused', status, ...errorOf(body) };
  const fields = replyFields(body);
  const url = fields?.media_device_monitor_url;
  if (typeof url !== 'string' || url.trim() === '') {
    return { kind: 'refused', status, code: null, message: 'the reply has no media_device_monitor_url' };
  }
  let monitorUrl: string;
  try {
    monitorUrl = new URL(url.trim(), `${new URL(loginUrl).origin}/`).href;
  } catch {
    return { kind: 'refused', status, code: null, message: `media_device_monitor_url ${JSON.stringify(url)} is not a URL` };
  }
  return { kind: 'ok', monitorUrl, reportPeriodSeconds: period(fields?.media_device_monitor_report_period) ?? LOGIN_DEFAULT_PERIOD_SECONDS };
}

/** Logs `box` in at `loginUrl`. Never throws: every way it can go is an outcome. */
export async function logIn(
  dispatcher: Dispatcher,
  loginUrl: string,
  box: BoxIdentity & { serialNumber: string },
  { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal },
): Promise<LoginOutcome> {
  const url = loginRequestUrl(loginUrl, box);
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: { accept: 'application/json', 'user-agent': 'fleetgate-simulator' },
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    return readLoginReply(loginUrl, response.statusCode, await response.body.text());
  } catch (error) {
    if (timeout.aborted) return { kind: 'failed', error: 'timeout' };
    const e = error as { code?: unknown; name?: unknown };
    return { kind: 'failed', error: typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'unknown error' };
  }
}

/**
 * Licence keys to give the simulated boxes, from the CSV `npm run boxes -- issue` prints (a header with
 * `license_key`, and optionally `device_sn` / `hardware_serial`) or from one key per line. Blank lines
 * and lines starting with `#` are skipped. Throws a sentence for a file it cannot use.
 */
export function parseKeyList(text: string): BoxIdentity[] {
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length === 0) throw new Error('no licence keys in it');
  const header = lines[0]!.toLowerCase().split(',').map((cell) => cell.trim());
  const keyColumn = header.findIndex((cell) => cell === 'license_key' || cell === 'licence_key' || cell === 'dev_sno' || cell === 'mq_license_key');
  if (keyColumn === -1) {
    if (lines.some((line) => line.includes(','))) throw new Error('a CSV needs a header with a license_key column');
    return lines.map((licenseKey) => ({ licenseKey }));
  }
  const serialColumn = header.findIndex((cell) => cell === 'device_sn' || cell === 'hardware_serial' || cell === 'serial');
  return lines.slice(1).map((line, i) => {
    const cells = line.split(',').map((cell) => cell.trim());
    const licenseKey = cells[keyColumn];
    if (!licenseKey) throw new Error(`line ${i + 2} has no licence key`);
    const serialNumber = serialColumn === -1 ? undefined : cells[serialColumn] || undefined;
    return serialNumber ? { licenseKey, serialNumber } : { licenseKey };
  });
}
