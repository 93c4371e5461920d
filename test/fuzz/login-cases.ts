import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { preview } from './fuzz';

/**
 * Box logins for the login fuzz (login.test.ts), as recipes: who the login names (a stored box, an
 * unknown key, nothing), how each value is written (its names' letter case, percent-encoding, odd
 * escapes, repeats), what carries it (query, JSON, form) and the request around it. `buildLoginRequest`
 * turns a recipe into exact bytes and what the answer must be, from the route's documented rules
 * (README "Box login"), not from its code.
 */

/** The stored boxes the fuzz logs in as (login.test.ts registers them): their keys and what they are. */
export interface StoredLoginBox {
  key: string;
  /** The serial the key is bound to; null while unbound (a 200 may bind it). */
  serial: string | null;
  removed: boolean;
}

export type ValuePick =
  | { kind: 'stored'; box: number }
  | { kind: 'unknown'; n: number }
  | { kind: 'own' }
  | { kind: 'rival' }
  | { kind: 'text'; text: string }
  | { kind: 'empty' }
  /** Exactly the longest value taken (key 256, serial 128 characters), or one more. */
  | { kind: 'length'; over: boolean }
  | { kind: 'bad'; text: 'control' | 'nul' | 'long' | 'leading-space' | 'trailing-space' | 'lone-surrogate' | 'del' | 'line-separator' }
  | { kind: 'json'; value: null | boolean | number | object };

/** How a value is written in a query or form: `wire` fragments are appended to its percent-encoding. */
export interface Writing {
  style: 'plain' | 'every-byte' | 'lower-hex';
  wire: string;
}

export interface Param {
  /** `key`/`serial` (under one of their names, in `nameCase`) or an extra parameter. */
  role: 'key' | 'serial' | 'extra';
  nameIndex: number;
  nameCase: boolean[];
  extraName: string;
  value: ValuePick;
  writing: Writing;
  /** Where a POST puts it (a GET: always the query). */
  inQuery: boolean;
  order: number;
}

export interface LoginCase {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS' | 'HEAD';
  path: { name: 0 | 1; upper: boolean[]; slash: boolean };
  params: Param[];
  body: 'json' | 'form';
  contentType: 'right' | 'right-charset' | 'upper' | 'none' | 'plus-json' | 'text/plain' | 'application/xml' | 'multipart/form-data';
  /** Defects of the body as a whole. */
  bodyDefect: 'none' | 'oversize' | 'oversize-chunked' | 'not-utf8' | 'json-array' | 'json-truncated' | 'json-string';
  host: number;
  contentEncoding: 'none' | 'identity' | 'gzip' | 'gzip-label-only';
}

const KEY_NAMES = ['dev_sno', 'mq_license_key'];
const SERIAL_NAMES = ['device_sn', 'gateway_sn'];
/** Extra parameters' names as written in a query or form: some percent-encoded, one the key's name in disguise, some broken. */
const EXTRA_NAMES = ['mac', 'ip', 'version', 'dev_sno_extra', 'sn', 'x'];
const ODD_EXTRA_NAMES = ['m%61c', 'dev%5Fsno', '%FF', 'a%', '%C3%A9', '%00'];
export const WIRE_FRAGMENTS = ['%ED%A0%80', '%C0%AF', '%', '%0', '%FF', '%C3%28', '%00', '+', '%2B', '%25', '%zz', '%C3%A9', '%E2%80%A8', '%7F', '%20', '#', ';', '%3D', '%26', '='];
/** Host headers and the origin a 200 names for each (undefined: the origin of the socket). */
export const HOSTS: Array<{ header: string | undefined; origin: string | undefined }> = [
  { header: undefined, origin: undefined },
  { header: 'fleet.lan:8080', origin: 'http://fleet.lan:8080' },
  { header: '[::1]:9000', origin: 'http://[::1]:9000' },
  { header: 'bad host/x', origin: undefined },
  // Hosts no client could have connected to: a URL naming them would lead the box nowhere.
  { header: 'fleet.lan:99999', origin: undefined },
  { header: 'a..b', origin: undefined },
  { header: 'fleet.lan:0', origin: undefined },
];

const PRINTABLE = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:\-/+@é€😀 ]{0,30}[A-Za-z0-9]$/);

const valuePick = (role: 'key' | 'serial' | 'extra', storedBoxes: number): fc.Arbitrary<ValuePick> =>
  fc.oneof(
    role === 'key'
      ? { weight: 24, arbitrary: fc.record({ kind: fc.constant('stored' as const), box: fc.nat(storedBoxes - 1) }) }
      : role === 'serial'
        ? { weight: 24, arbitrary: fc.constantFrom<ValuePick>({ kind: 'own' }, { kind: 'own' }, { kind: 'rival' }) }
        : { weight: 4, arbitrary: fc.constantFrom<ValuePick>({ kind: 'own' }, { kind: 'rival' }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('unknown' as const), n: fc.nat(50) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('text' as const), text: PRINTABLE }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'empty' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('length' as const), over: fc.boolean() }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('bad' as const),
        text: fc.constantFrom('control', 'nul', 'long', 'leading-space', 'trailing-space', 'lone-surrogate', 'del', 'line-separator' as const),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('json' as const), value: fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.constant({ a: 1 }), fc.constant([1])) }) },
  );

const writing: fc.Arbitrary<Writing> = fc.record({
  style: fc.constantFrom('plain', 'plain', 'every-byte', 'lower-hex' as const),
  wire: fc.oneof({ weight: 10, arbitrary: fc.constant('') }, { weight: 2, arbitrary: fc.constantFrom(...WIRE_FRAGMENTS) }),
});

const param = (role: 'key' | 'serial' | 'extra', storedBoxes: number): fc.Arbitrary<Param> =>
  fc.record({
    role: fc.constant(role),
    nameIndex: fc.nat(1),
    nameCase: fc.oneof({ weight: 4, arbitrary: fc.constant<boolean[]>([]) }, { weight: 1, arbitrary: fc.array(fc.boolean(), { maxLength: 14 }) }),
    extraName: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...EXTRA_NAMES) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_EXTRA_NAMES) }),
    value: valuePick(role, storedBoxes),
    writing,
    inQuery: fc.boolean(),
    order: fc.nat(1000),
  });

/** Mostly one of each, as boxes send them; sometimes none, or repeated. */
const params = (role: 'key' | 'serial', storedBoxes: number): fc.Arbitrary<Param[]> =>
  fc.oneof({ weight: 5, arbitrary: param(role, storedBoxes).map((p) => [p]) }, { weight: 2, arbitrary: fc.array(param(role, storedBoxes), { maxLength: 3 }) });

/** A login as real and broken boxes send it. */
export const loginCase = (storedBoxes: number): fc.Arbitrary<LoginCase> =>
  fc.record({
    method: fc.oneof({ weight: 10, arbitrary: fc.constantFrom('GET', 'POST' as const) }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD' as const) }),
    path: fc.record({ name: fc.constantFrom(0, 1 as const), upper: fc.oneof(fc.constant<boolean[]>([]), fc.array(fc.boolean(), { maxLength: 14 })), slash: fc.boolean() }),
    params: fc
      .tuple(
        params('key', storedBoxes),
        params('serial', storedBoxes),
        fc.array(param('extra', storedBoxes), { maxLength: 3 }),
      )
      .map(([keys, serials, extras]) => [...keys, ...serials, ...extras].sort((a, b) => a.order - b.order)),
    body: fc.constantFrom('json', 'form' as const),
    contentType: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('right', 'right-charset', 'upper', 'none', 'plus-json' as const) },
      { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data' as const) },
    ),
    bodyDefect: fc.oneof(
      { weight: 12, arbitrary: fc.constant('none' as const) },
      { weight: 1, arbitrary: fc.constantFrom('oversize', 'oversize-chunked', 'not-utf8', 'json-array', 'json-truncated', 'json-string' as const) },
    ),
    contentEncoding: fc.oneof({ weight: 12, arbitrary: fc.constant('none' as const) }, { weight: 1, arbitrary: fc.constantFrom('identity', 'gzip', 'gzip-label-only' as const) }),
    host: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.nat(HOSTS.length - 1) }),
  });

// ---------------------------------------------------------------------------------------------------

export interface LoginRequest {
  method: string;
  /** Path and query as written (ASCII). */
  target: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** Send the body chunked (no Content-Length). */
  chunked: boolean;
  /** What the answer must be: an exact refusal, or a login of `key` whose 200 depends on the box. */
  expected: { status: number; code: string | number } | { login: { key: string; serial: string } };
  hostOrigin: string | undefined;
}

const LONG = 'K'.repeat(10_000);

/** The text of a pick (a JSON value for `json`), given the box the login names. */
function valueOf(pick: ValuePick, role: Param['role'], stored: StoredLoginBox[], ownSerial: string): string | { json: unknown } {
  switch (pick.kind) {
    case 'stored':
      return stored[pick.box % stored.length]!.key;
    case 'unknown':
      return role === 'key' ? `FZ-LOGIN-${pick.n}` : `SN-FZ-${pick.n}`;
    case 'own':
      return ownSerial;
    case 'rival':
      return `${ownSerial}-RIVAL`;
    case 'text':
      return pick.text;
    case 'empty':
      return '';
    case 'length':
      return 'L'.repeat((role === 'serial' ? 128 : 256) + (pick.over ? 1 : 0));
    case 'bad':
      return {
        control: 'A\u001bB',
        nul: 'A\u0000B',
        long: LONG,
        'leading-space': ' AB',
        'trailing-space': 'AB ',
        'lone-surrogate': 'A\ud800B',
        del: 'A\u007fB',
        'line-separator': 'A\u2028B',
      }[pick.text];
    case 'json':
      return { json: pick.value };
  }
}

function jsonText(members: Array<[string, unknown]>): string {
  return `{${members.map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value) ?? 'null'}`).join(',')}}`;
}

function percentEncode(text: string, style: Writing['style']): string {
  if (style === 'plain') return encodeURIComponent(text);
  const hex = [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  return style === 'every-byte' ? hex.toUpperCase() : hex.toLowerCase();
}

/** Strict `application/x-www-form-urlencoded` decoding, as the README promises: a bad escape is refused. */
function formDecode(wire: string): string | undefined {
  try {
    return decodeURIComponent(wire.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const LONE_SURROGATE = /\p{Cs}/u;
function printable(value: string, max: number): boolean {
  return value.length > 0 && value.length <= max && value === value.trim() && !UNPRINTABLE.test(value) && !LONE_SURROGATE.test(value);
}

function lower(text: string, upper: boolean[]): string {
  return [...text].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
}

const refuse = (status: number, code: string | number) => ({ status, code });

/** The request a case stands for, and the answer the route's rules call for. */
export function buildLoginRequest(c: LoginCase, stored: StoredLoginBox[]): LoginRequest {
  const pathName = ['/BoxLogin', '/api/box-login'][c.path.name]!;
  const path = lower(pathName, c.path.upper) + (c.path.slash ? '/' : '');
  const firstKey = c.params.find((p) => p.role === 'key' && p.value.kind === 'stored');
  const box = firstKey && firstKey.value.kind === 'stored' ? stored[firstKey.value.box % stored.length]! : undefined;
  const ownSerial = box?.serial ?? (box ? `SN-${box.key}` : 'SN-NONE');

  const isPost = c.method === 'POST';
  const query: string[] = [];
  const form: string[] = [];
  // Members as written: a name may repeat (JSON.parse keeps the last).
  const json: Array<[string, unknown]> = [];
  // What the gateway must read: parameter name (lower case) -> values.
  const parsed = new Map<string, string[]>();
  let badQuery = false;
  let badForm = false;
  let nonStringArgument = false;
  let longInQuery = false;
  const jsonBody = isPost && c.body === 'json';
  for (const p of c.params) {
    const name = p.role === 'extra' ? p.extraName : (p.role === 'key' ? KEY_NAMES : SERIAL_NAMES)[p.nameIndex]!;
    const cased = p.nameCase.length > 0 ? lower(name, p.nameCase) : name;
    const value = valueOf(p.value, p.role, stored, ownSerial);
    const inQuery = !isPost || p.inQuery;
    if (!inQuery && jsonBody) {
      json.push([cased, typeof value === 'object' ? value.json : value]);
      continue;
    }
    let text = typeof value === 'object' ? JSON.stringify(value.json) ?? '' : value;
    // Node answers a request line over 16 KB itself (431, before any route): one 10,000-character value
    // in the query, written as it is; the others are 1,000 characters (still over every limit of ours).
    const long = text === LONG;
    if (long && inQuery && longInQuery) text = text.slice(0, 1_000);
    if (long && inQuery) longInQuery = true;
    // A lone surrogate cannot be percent-encoded; written as its UTF-8 replacement's bytes it is then no defect.
    const wire = percentEncode(text.replace(/\p{Cs}/gu, '\ufffd'), long ? 'plain' : p.writing.style) + p.writing.wire;
    const decoded = formDecode(wire);
    const nameDecoded = formDecode(cased);
    if (decoded === undefined || nameDecoded === undefined) {
      if (inQuery) badQuery = true;
      else badForm = true;
    } else parsed.set(nameDecoded.toLowerCase(), [...(parsed.get(nameDecoded.toLowerCase()) ?? []), decoded]);
    (inQuery ? query : form).push(`${cased}=${wire}`);
  }
  if (jsonBody) {
    // What the gateway reads from the JSON text: strings, finite numbers as text. Every member as written, a repeated name too: like a repeated query parameter, a second
    // different value is refused, not silently preferred (JSON.parse alone keeps only the last).
    for (const [name, v] of json.map(([name, value]) => [name, JSON.parse(JSON.stringify(value) ?? 'null')] as const)) {
      const lowerName = name.toLowerCase();
      if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) parsed.set(lowerName, [...(parsed.get(lowerName) ?? []), String(v)]);
      else if ([...KEY_NAMES, ...SERIAL_NAMES].includes(lowerName)) nonStringArgument = true;
    }
  }
  // '#' or ';' in a fragment only ever ends up inside a value (the gateway reads the whole target).
  const target = `${path}${query.length > 0 ? `?${query.join('&')}` : ''}`;

  let body: Buffer | undefined;
  const headers: Record<string, string> = {};
  const host = HOSTS[c.host]!;
  if (host.header !== undefined) headers.host = host.header;
  let bodyIsEmpty = true;
  if (isPost) {
    let text = c.body === 'json' ? jsonText(json) : form.join('&');
    if (c.body === 'json' && json.length === 0 && c.bodyDefect === 'none') text = '';
    if (c.body === 'form' && form.length === 0 && c.bodyDefect === 'none') text = '';
    const jsonDefect = c.body === 'json' ? c.bodyDefect : 'none';
    if (jsonDefect === 'json-array') text = `[${text}]`;
    if (jsonDefect === 'json-truncated') text = text.slice(0, Math.max(1, text.length - 2));
    if (jsonDefect === 'json-string') text = JSON.stringify(text);
    body = Buffer.from(text, 'utf8');
    if (c.bodyDefect === 'not-utf8') body = Buffer.concat([body, Buffer.from([0xc3, 0x28, 0xff])]);
    if (c.bodyDefect === 'oversize' || c.bodyDefect === 'oversize-chunked') body = Buffer.concat([body, Buffer.alloc(4097 + (c.params.length * 3001) % 30_000, 0x20)]);
    if (c.contentEncoding === 'gzip') body = gzipSync(body);
    if (c.contentEncoding !== 'none') headers['content-encoding'] = c.contentEncoding === 'identity' ? 'identity' : 'gzip';
    bodyIsEmpty = body.length === 0;
    const type = {
      right: c.body === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
      'right-charset': c.body === 'json' ? 'application/json; charset=utf-8' : 'application/x-www-form-urlencoded; charset=UTF-8',
      upper: c.body === 'json' ? 'Application/JSON' : 'Application/X-WWW-Form-Urlencoded',
      'plus-json': c.body === 'json' ? 'application/vnd.box+json' : 'application/x-www-form-urlencoded',
      none: undefined,
      'text/plain': 'text/plain',
      'application/xml': 'application/xml',
      'multipart/form-data': 'multipart/form-data; boundary=x',
    }[c.contentType];
    if (type !== undefined) headers['content-type'] = type;
  }

  const expected = ((): LoginRequest['expected'] => {
    if (c.method !== 'GET' && c.method !== 'POST') return refuse(405, 'METHOD_NOT_ALLOWED');
    if (badQuery) return refuse(400, 'INVALID_ARGUMENTS');
    if (isPost && !bodyIsEmpty) {
      if (body!.length > 4096) return refuse(413, 'PAYLOAD_TOO_LARGE');
      if (c.contentEncoding === 'gzip' || c.contentEncoding === 'gzip-label-only') return refuse(415, 'UNSUPPORTED_MEDIA_TYPE');
      if (c.bodyDefect === 'not-utf8') return refuse(400, 'INVALID_ARGUMENTS');
      const type = headers['content-type']?.split(';')[0]!.trim().toLowerCase() ?? '';
      const isForm = type === 'application/x-www-form-urlencoded';
      if (!isForm && type !== '' && type !== 'application/json' && !type.endsWith('+json')) return refuse(415, 'UNSUPPORTED_MEDIA_TYPE');
      // A form sent as JSON (or the other way round) is not what it says: refused, never read as the other.
      if (isForm !== (c.body === 'form') || (c.body === 'json' && c.bodyDefect !== 'none')) return refuse(400, 'INVALID_ARGUMENTS');
      if (badForm || nonStringArgument) return refuse(400, 'INVALID_ARGUMENTS');
    }
    const one = (names: string[]) => new Set(names.flatMap((n) => parsed.get(n) ?? []));
    const keys = one(KEY_NAMES);
    const serials = one(SERIAL_NAMES);
    if (keys.size > 1 || serials.size > 1) return refuse(400, 'INVALID_ARGUMENTS');
    const [key] = keys;
    const [serial] = serials;
    if (!key || !serial) return refuse(400, 'MISSING_ARGUMENTS');
    if (!printable(key, 256) || !printable(serial, 128)) return refuse(400, 'INVALID_ARGUMENTS');
    return { login: { key, serial } };
  })();

  return { method: c.method, target, headers, body, chunked: c.bodyDefect === 'oversize-chunked', expected, hostOrigin: host.origin };
}

export function describeLoginRequest(r: LoginRequest): string {
  return `${r.method} ${preview(r.target, 300)} ${JSON.stringify(r.headers)}${r.chunked ? ' chunked' : ''} body ${r.body ? preview(r.body.toString('utf8'), 300) : '-'}`;
}
