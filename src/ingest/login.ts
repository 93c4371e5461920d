import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import type pg from 'pg';
import { clientAddress } from '../auth/client-address';
import { RateLimit } from '../auth/rate-limits';
import type { IngestPolicy } from '../config';
import { isDatabaseUnavailable } from '../db/connection';
import type { Logger } from '../log';
import { hardwareSerialProblem, loginBox } from '../models/box-login';

// The box's login to the platform (box-protocol.md, "Box login to the platform"): an operator sets
// this URL as the box's login address; the box sends its licence key and hardware serial and is told
// where and how often to report. Answers and error codes are the vendor's (600000, 600002).

/** `/BoxLogin` is what an operator types into the box; `/api/box-login` is ours. */
export const LOGIN_PATHS = ['/BoxLogin', '/api/box-login'] as const;
const LOGIN_PATHS_LOWER: ReadonlySet<string> = new Set(LOGIN_PATHS.map((p) => p.toLowerCase()));

/** The login paths in any letter case, with or without a trailing slash. */
export function matchLoginPath(pathname: string): boolean {
  const path = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
  return LOGIN_PATHS_LOWER.has(path.toLowerCase());
}

const MAX_BODY_BYTES = 4096;
const MAX_LICENSE_KEY_LENGTH = 256;
const RETRY_AFTER_SECONDS = 5;
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Half of a UTF-16 pair without the other (possible in a JSON body's escapes): no text a box sends. */
const LONE_SURROGATE = /\p{Cs}/u;
// The vendor's table names the key `mq_license_key`, its example `dev_sno`; older boxes call the serial `gateway_sn`.
const KEY_NAMES = ['dev_sno', 'mq_license_key'];
const SERIAL_NAMES = ['device_sn', 'gateway_sn'];

/**
 * A parameter's name as it is looked up: letter case, `_` and `-` do not count, so `DEV_SNO`, `devSno` and
 * `dev-sno` are all the key (firmware and the vendor's pages spell names every way).
 */
const lookupName = (name: string) => name.toLowerCase().replace(/[_-]/g, '');
const KEY_LOOKUP = KEY_NAMES.map(lookupName);
const SERIAL_LOOKUP = SERIAL_NAMES.map(lookupName);

/** What the metrics count a login answer as. */
export type LoginOutcome = 'ok' | 'unknown_key' | 'bound_elsewhere' | 'invalid' | 'rate_limited';

export interface LoginOptions {
  policy: IngestPolicy;
  /** The gateway's URL as boxes reach it; unset: the origin each login came in on. */
  publicUrl: string | undefined;
  trustProxy: boolean;
  defaultReportPeriodSeconds: number;
  perAddress: number;
}

/** A refused login, answered in the vendor's error shape `{"error": {"code", "message"}}`. */
class LoginRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string | number,
    message: string,
    readonly outcome: LoginOutcome | undefined,
    readonly headers: string[] = [],
  ) {
    super(message);
  }
}

const invalid = (message: string) => new LoginRefusal(400, 'INVALID_ARGUMENTS', message, 'invalid');

/** `name=value&…` with strict decoding: a bad percent-escape or bytes that are not UTF-8 are refused, not guessed at. */
function addFormPairs(text: string, into: Map<string, string[]>): void {
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const [rawName, rawValue] = eq === -1 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName.replaceAll('+', ' '));
      value = decodeURIComponent(rawValue.replaceAll('+', ' '));
    } catch {
      throw invalid(`The parameter ${JSON.stringify(rawName.slice(0, 40))} is not valid percent-encoded UTF-8; send the licence key and serial as the box shows them.`);
    }
    add(into, name, value);
  }
}

function add(into: Map<string, string[]>, name: string, value: string): void {
  const key = lookupName(name);
  const values = into.get(key);
  if (values) values.push(value);
  else into.set(key, [value]);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume(); // discard the rest so the client can read our answer
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    let ended = false;
    req.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!ended) reject(new LoginRefusal(400, 'ABORTED', 'The connection closed before the body ended.', undefined));
    });
  });
}

function tooLarge(): LoginRefusal {
  return new LoginRefusal(413, 'PAYLOAD_TOO_LARGE', `A login body is at most ${MAX_BODY_BYTES} bytes; send only dev_sno and device_sn.`, 'invalid', ['connection', 'close']);
}

/**
 * The members of a JSON object's text in order, a repeated name as often as it is written: JSON.parse
 * keeps only the last, and a login naming two keys must be refused, not read as the second. `text` is
 * a JSON object that JSON.parse took.
 */
function jsonMembers(text: string): Array<[string, unknown]> {
  const members: Array<[string, unknown]> = [];
  let depth = 0;
  let name: string | undefined;
  let valueStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (depth === 1 && name === undefined) name = JSON.parse(text.slice(i, end + 1)) as string;
      i = end;
    } else if (c === ':' && depth === 1) valueStart = i + 1;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']' || c === ',') {
      if (depth === 1 && name !== undefined) {
        members.push([name, JSON.parse(text.slice(valueStart, i))]);
        name = undefined;
      }
      if (c !== ',') depth--;
    }
  }
  return members;
}

/** A POST body's parameters: a JSON object, or a form; an empty body adds none. */
function addBodyParameters(req: IncomingMessage, body: Buffer, into: Map<string, string[]>): void {
  if (body.length === 0) return;
  // Else a compressed body is refused as "not UTF-8", which points the wrong way (reports answer the same).
  const encoding = req.headers['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    throw new LoginRefusal(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not accepted; send the body uncompressed.`, 'invalid');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw invalid('The body is not UTF-8 text; send a JSON object or a form with dev_sno and device_sn.');
  }
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/x-www-form-urlencoded') return addFormPairs(text, into);
  if (type !== '' && type !== 'application/json' && !type.endsWith('+json')) {
    throw new LoginRefusal(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type ${type} is not accepted; send application/json or application/x-www-form-urlencoded.`, 'invalid');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('The body is not JSON; send {"dev_sno": "<licence key>", "device_sn": "<hardware serial>"}.');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid('The body must be a JSON object with dev_sno and device_sn.');
  for (const [name, value] of jsonMembers(text)) {
    if (typeof value === 'string') add(into, name, value);
    else if (typeof value === 'number' && Number.isFinite(value)) add(into, name, String(value));
    else if ([...KEY_LOOKUP, ...SERIAL_LOOKUP].includes(lookupName(name))) throw invalid(`${name} must be a string.`);
  }
}

/** The one value given under any of `names` (absent: undefined); different values are refused. */
function single(parameters: Map<string, string[]>, names: string[], lookup: string[]): string | undefined {
  const values = new Set(lookup.flatMap((name) => parameters.get(name) ?? []));
  if (values.size > 1) throw invalid(`${names.join(' / ')} was given more than once with different values; send one.`);
  return values.values().next().value;
}

function checkArguments(parameters: Map<string, string[]>): { licenseKey: string; hardwareSerial: string } {
  const licenseKey = single(parameters, KEY_NAMES, KEY_LOOKUP);
  const hardwareSerial = single(parameters, SERIAL_NAMES, SERIAL_LOOKUP);
  const missing = [...(licenseKey ? [] : ['dev_sno (the licence key)']), ...(hardwareSerial ? [] : ['device_sn (the hardware serial)'])];
  if (missing.length > 0) {
    throw new LoginRefusal(400, 'MISSING_ARGUMENTS', `Missing or empty: ${missing.join(' and ')}; log in with ?dev_sno=<licence key>&device_sn=<hardware serial>.`, 'invalid');
  }
  const key = licenseKey!;
  if (key.length > MAX_LICENSE_KEY_LENGTH || key !== key.trim() || UNPRINTABLE.test(key) || LONE_SURROGATE.test(key)) {
    throw invalid(`The licence key must be 1 to ${MAX_LICENSE_KEY_LENGTH} printable characters without leading or trailing spaces.`);
  }
  const problem = hardwareSerialProblem(hardwareSerial!);
  if (problem) throw invalid(`The hardware serial (device_sn) ${problem}; send it as the box shows it.`);
  return { licenseKey: key, hardwareSerial: hardwareSerial! };
}

const HOST_NAME = /^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.?$/;
const HOST_HEADER = /^([^:[\]]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

/**
 * Whether a Host header can name the monitor URL: the box is told that URL and stores it, so a host
 * no client could have connected to (`a:99999`, `..`, port 0) gives way to the socket's address.
 */
function usableHost(host: string): boolean {
  const [, name, port] = HOST_HEADER.exec(host) ?? [];
  if (name === undefined || (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65_535))) return false;
  return name.startsWith('[') ? URL.canParse(`http://${name}`) : HOST_NAME.test(name);
}

/** The origin this login came in on: its Host header (forwarded ones only behind a trusted proxy), else the socket's address. */
function requestOrigin(req: IncomingMessage, trustProxy: boolean): string {
  const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim();
  const forwardedProto = trustProxy ? first(req.headers['x-forwarded-proto'])?.toLowerCase() : undefined;
  const proto = forwardedProto === 'https' || forwardedProto === 'http' ? forwardedProto : 'http';
  const forwardedHost = trustProxy ? first(req.headers['x-forwarded-host']) : undefined;
  const host = [forwardedHost, req.headers.host].find((h) => h !== undefined && usableHost(h));
  if (host) return `${proto}://${host}`;
  let address = req.socket.localAddress ?? '127.0.0.1';
  if (address.startsWith('::ffff:')) address = address.slice(7);
  return `${proto}://${isIPv6(address) ? `[${address}]` : address}:${req.socket.localPort}`;
}

function send(res: ServerResponse, status: number, body: unknown, headers: string[] = []): void {
  const text = JSON.stringify(body);
  res.writeHead(status, ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(text)), ...headers]);
  res.end(text);
}

/**
 * `GET|POST /BoxLogin?dev_sno=<licence key>&device_sn=<hardware serial>`: 200 with the monitor URL and
 * period once the login is committed; 404 `600000` for an unknown key, 409 `600002` for a key bound
 * to other hardware (nothing changes); 400/405/413/415/429/503 with what to do.
 */
export function createLoginHandler(
  pool: pg.Pool,
  options: LoginOptions,
  log: Logger,
  hooks: {
    /** Ingest secrets changed (a login under INGEST_POLICY=token replaced the box's). */
    secretsChanged: () => void;
    /** Told each counted answer's outcome, for metrics. */
    answered?: (outcome: LoginOutcome) => void;
  },
) {
  const byAddress = new RateLimit(options.perAddress);
  return async function handleLogin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let outcome: LoginOutcome | undefined;
    try {
      if (req.method !== 'GET' && req.method !== 'POST') {
        throw new LoginRefusal(405, 'METHOD_NOT_ALLOWED', `${req.method} is not accepted here; boxes log in with GET ?dev_sno=…&device_sn=….`, 'invalid', ['allow', 'GET, POST']);
      }
      const address = clientAddress(req, options.trustProxy);
      const limited = await byAddress.take(address ?? 'unknown');
      if (!limited.ok) {
        throw new LoginRefusal(429, 'RATE_LIMITED', `Too many logins from this address; retry in ${limited.retryAfterSeconds} s.`, 'rate_limited', [
          'retry-after',
          String(limited.retryAfterSeconds),
        ]);
      }
      const parameters = new Map<string, string[]>();
      const target = req.url ?? '';
      const query = target.indexOf('?');
      if (query !== -1) addFormPairs(target.slice(query + 1), parameters);
      if (req.method === 'POST') addBodyParameters(req, await readBody(req), parameters);
      const { licenseKey, hardwareSerial } = checkArguments(parameters);
      const ingestUrl = `${options.publicUrl ?? requestOrigin(req, options.trustProxy)}/DeviceStatus`;
      const withSecret = options.policy === 'token';
      const login = await loginBox(pool, {
        licenseKey,
        hardwareSerial,
        address,
        ingestUrl,
        withSecret,
        defaultReportPeriodSeconds: options.defaultReportPeriodSeconds,
      });
      if (login.kind === 'unknown_key') {
        throw new LoginRefusal(404, 600000, 'This licence key is not registered here; an operator registers the box (registerBox) before it logs in.', 'unknown_key');
      }
      if (login.kind === 'bound_elsewhere') {
        throw new LoginRefusal(
          409,
          600002,
          'This licence key is bound to another box\'s hardware; an operator who replaced the box rebinds the key (rebindBoxHardware).',
          'bound_elsewhere',
        );
      }
      if (withSecret) hooks.secretsChanged();
      outcome = 'ok';
      send(res, 200, { media_device_monitor_url: login.monitorUrl, media_device_monitor_report_period: login.reportPeriodSeconds });
    } catch (error) {
      if (res.headersSent) return;
      if (error instanceof LoginRefusal) {
        outcome = error.outcome;
        send(res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
      } else if (isDatabaseUnavailable(error)) {
        send(res, 503, { error: { code: 'DATABASE_UNAVAILABLE', message: 'The database is unreachable; nothing was stored. Log in again later.' } }, [
          'retry-after',
          String(RETRY_AFTER_SECONDS),
        ]);
      } else {
        log.error({ err: error }, 'box login failed');
        send(res, 500, { error: { code: 'INTERNAL', message: 'The login could not be completed because of a gateway fault; log in again later.' } });
      }
    }
    if (outcome) hooks.answered?.(outcome);
  };
}
