import { createHash } from 'node:crypto';
import fc from 'fast-check';
import JSON5 from 'json5';
import { NEWER_FORMAT_EXAMPLE, NEWER_FORMAT_TABLE, OLDER_FORMAT_EXAMPLE, OLDER_FORMAT_TABLE } from '../fixtures/seed-examples';
import { fuzzKey, preview } from './fuzz';

/**
 * Device-status reports for the fuzz test, as recipes: a base report, mutations of its JSON value, of its
 * text and of the HTTP request around it. A recipe is small and printable (a counterexample reads as what
 * was done), and `buildReportRequest` turns it into the exact bytes, path and headers, deterministically.
 */

/** The licence key the seed examples carry; fuzz cases replace it with a fuzz key. */
const SEED_KEYS = ['AFVKQF000120210604151110', 'ZKZCPI000120190807142601'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface GeneratedDevice {
  id?: string;
  name?: string;
  ip?: string;
  status?: string;
  type?: string;
  url?: string;
  group?: string;
}

export type ReportBase =
  | { kind: 'newer'; devices: GeneratedDevice[]; extra: Record<string, Json> }
  | { kind: 'older'; devices: GeneratedDevice[]; gateway: boolean; extra: Record<string, Json> }
  | { kind: 'seed'; which: 'newer-example' | 'older-example' | 'newer-table' | 'older-table' }
  | { kind: 'json'; value: Json }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: number[] };

/** Where in the JSON value a mutation applies: the `target`-th node (modulo their number), depth first. */
export type ValueMutation =
  | { op: 'drop'; target: number }
  | { op: 'duplicate-item'; target: number }
  | { op: 'retype'; target: number; value: Json }
  | { op: 'huge-string'; target: number; length: number; text: 'repeated' | 'random' }
  | { op: 'deep-nest'; target: number; depth: number; shape: 'array' | 'object' }
  | { op: 'weird-string'; target: number; weird: string }
  | { op: 'number-as-string'; target: number }
  | { op: 'string-as-number'; target: number; value: number }
  | { op: 'rename-key'; target: number; name: string }
  | { op: 'add-field'; target: number; name: string; value: Json }
  | { op: 'upper-case'; target: number }
  | { op: 'set-key'; value: Json }
  | { op: 'many-devices'; count: number }
  | { op: 'swap-lists' };

export type TextMutation =
  | { op: 'truncate'; at: number }
  | { op: 'json5'; flavour: 'single-quotes' | 'trailing-commas' | 'comments' | 'unquoted-keys' | 'specials' }
  | { op: 'insert-text'; at: number; text: string }
  | { op: 'delete'; at: number; length: number }
  | { op: 'insert-bytes'; at: number; bytes: number[] }
  | { op: 'bom'; kind: 'utf8' | 'utf16le-bytes' | 'double' }
  | { op: 'utf16'; }
  | { op: 'pad'; with: string }
  | { op: 'duplicate-key-text'; n: number }
  | { op: 'concat' }
  | { op: 'raw-control'; at: number; char: number };

export interface Transport {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET';
  path: string;
  contentType: string | null;
  contentEncoding: string | null;
  forwardedFor: string | null;
}

/** What makes a report for a stored box unacceptable, whatever the mutations before it did. */
export type Poison =
  | { op: 'duplicate-device' }
  | { op: 'not-an-object-device' }
  | { op: 'too-many-devices' }
  | { op: 'deep-field' }
  | { op: 'truncate' }
  | { op: 'content-type' }
  | { op: 'content-encoding' }
  | { op: 'method' }
  | { op: 'too-large' };

export interface ReportCase {
  /** What the case is about, for messages and counts. */
  family: 'valid' | 'mutated' | 'malformed' | 'aimed-at-stored';
  /** `fuzz`: a box of its own (FZ<n>); `stored`: one of the baseline boxes (its index), which must refuse it. */
  box: { kind: 'fuzz' | 'stored'; n: number };
  base: ReportBase;
  mutations: ValueMutation[];
  textMutations: TextMutation[];
  transport: Transport;
  poison: Poison | null;
}

// ---------------------------------------------------------------------------------------------------
// Generators

const weirdStrings = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '\udc00\ud800',
  '\ud83d',
  '😀',
  '\u202e\u202d',
  '\ufeff',
  '\u2028\u2029',
  '\u0001\u001f\u007f',
  'e\u0301\u0301\u0301\u0301',
  '前门设备',
  '𝕳𝖊𝖑𝖑𝖔',
  '\\u0000',
  '%00',
  "'; drop table boxes; --",
  '${jndi:ldap://x}',
  '<script>',
  ' ',
  '',
];

const fieldNames = [
  'mq_license_key',
  'dev_sno',
  'media_devices',
  'sub_devices',
  'media_device_id',
  'media_device_name',
  'media_device_ip',
  'media_device_type',
  'media_device_url',
  'media_device_status',
  'permission_id',
  'ep_id',
  'ep_ip',
  'ep_status',
  'ep_location',
  'ep_type',
  'ep_name',
  'ep_url',
  'gateway_ip',
  'gateway_name',
  'gateway_status',
  'gateway_sn',
  'gateway_port',
  'gateway_ext_data',
  'MQ_LICENSE_KEY',
  'Media_Devices',
  'media_devices\u0000',
  'media_devices ',
  '__proto__',
  'constructor',
  'toString',
  '',
  '\ud800',
];

const statuses = ['online', 'offline', 'ONLINE', ' Offline ', 'unknown', 'removed', '', 'on line', '1'];
const types = ['rtsp', 'photo', 'file', 'gb28181', 'RTSP', 'Photo ', 'onvif', 'unknown', ''];

const smallJson: fc.Arbitrary<Json> = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;

const deviceArb: fc.Arbitrary<GeneratedDevice> = fc.record(
  {
    // Ids a box would send; odd ones come from mutations, so every generated report is valid.
    id: fc.oneof(fc.nat({ max: 40 }).map((n) => `cam-${n}`), fc.uuid()),
    name: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...weirdStrings)),
    ip: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant('not an ip')),
    status: fc.constantFrom(...statuses),
    type: fc.constantFrom(...types),
    url: fc.oneof(fc.webUrl(), fc.constantFrom('rtsp://192.168.1.100:554/ch2', '/data/test.mp4', 'gb28281://xxxx', '192.168.1.22')),
    group: fc.oneof(fc.uuid(), fc.string({ maxLength: 10 })),
  },
  { requiredKeys: ['id', 'status', 'type'] },
);

/** Valid device lists: ids unique (duplicates come from mutations). */
const devicesArb = fc.uniqueArray(deviceArb, { maxLength: 8, selector: (d) => d.id });

const extraArb = fc.dictionary(fc.constantFrom('firmware', 'uptime', 'note', 'x'), smallJson, { maxKeys: 2 });

const validBaseArb: fc.Arbitrary<ReportBase> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('newer' as const), devices: devicesArb, extra: extraArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('older' as const), devices: devicesArb, gateway: fc.boolean(), extra: extraArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('seed' as const), which: fc.constantFrom('newer-example', 'older-example', 'newer-table', 'older-table') as fc.Arbitrary<'newer-example' | 'older-example' | 'newer-table' | 'older-table'> }) },
);

const target = fc.nat({ max: 1_000 });

const lightMutationArb: fc.Arbitrary<ValueMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('drop' as const), target }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('duplicate-item' as const), target }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('retype' as const), target, value: smallJson }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('weird-string' as const), target, weird: fc.oneof(fc.constantFrom(...weirdStrings), fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), maxLength: 3 })) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('number-as-string' as const), target }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('string-as-number' as const), target, value: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1e308, 5e-324, 2 ** 53 + 1)) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('rename-key' as const), target, name: fc.oneof(fc.constantFrom(...fieldNames), fc.string({ maxLength: 6 })) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('add-field' as const), target, name: fc.oneof(fc.constantFrom(...fieldNames), fc.string({ maxLength: 6 })), value: smallJson }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('upper-case' as const), target }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('set-key' as const),
      value: fc.oneof(
        fc.constantFrom<Json>('', '   ', 'K'.repeat(256), 'K'.repeat(257), ' FZ-padded ', 'FZ\u0000nul', 'FZ\ud800', null, 0, 12345, true, [], {}, ['FZ1']),
        fc.string({ maxLength: 10 }).map((s) => `FZr-${s}`),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('swap-lists' as const) }) },
);

/** Mutations that make big bodies or many rows: rare, they cost the shared machine most. */
const heavyMutationArb: fc.Arbitrary<ValueMutation> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('huge-string' as const),
      target,
      length: fc.constantFrom(300, 1_000, 2_700, 3_000, 10_000, 200_000, 1_048_000, 1_100_000),
      text: fc.constantFrom('repeated' as const, 'random' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deep-nest' as const), target, depth: fc.constantFrom(3, 30, 31, 32, 33, 100, 5_000, 200_000), shape: fc.constantFrom('array' as const, 'object' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('many-devices' as const), count: fc.constantFrom(0, 100, 4095, 4096, 4097, 20_000) }) },
);

const valueMutationArb: fc.Arbitrary<ValueMutation> = fc.oneof({ weight: 60, arbitrary: lightMutationArb }, { weight: 1, arbitrary: heavyMutationArb });

const fraction = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

const textMutationArb: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fraction }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('json5' as const), flavour: fc.constantFrom('single-quotes' as const, 'trailing-commas' as const, 'comments' as const, 'unquoted-keys' as const, 'specials' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('insert-text' as const), at: fraction, text: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(',', '}', ']', '"', "'", '//', '/*', '\\', 'NaN', '\n')) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fraction, length: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('insert-bytes' as const), at: fraction, bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('bom' as const), kind: fc.constantFrom('utf8' as const, 'utf16le-bytes' as const, 'double' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('utf16' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pad' as const), with: fc.constantFrom(' ', '\n\r\t', '\u00a0', '\u2028', '\u0000', ' '.repeat(10_000)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicate-key-text' as const), n: fc.nat({ max: 50 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('concat' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('raw-control' as const), at: fraction, char: fc.integer({ min: 0, max: 0x1f }) }) },
);

/** Paths the gateway takes reports on, in the spellings boxes are configured with. */
const INGEST_PATH_SPELLINGS = ['/DeviceStatus', '/api/device-status', '/devicestatus', '/DEVICESTATUS/', '/api/Device-Status', '/DeviceStatus?from=box&x=%00', '/api/device-status/'];
/** Paths that are no route at all: 404 NOT_FOUND. */
export const NOT_A_ROUTE = ['/', '/RealTimeEvent', '/DeviceStatus2', '/api/device-status-v2', '/api', '/DeviceStatus%2F', '/%00', '/Device%53tatus', '/..%2fDeviceStatus'];

/** Content types with whether ingest takes them (JSON, any `+json`, or none at all). */
export const CONTENT_TYPES: Array<{ value: string | null; accepted: boolean }> = [
  { value: 'application/json', accepted: true },
  { value: 'application/json; charset=utf-8', accepted: true },
  { value: 'Application/JSON;charset=GBK', accepted: true },
  { value: 'application/vnd.sophon.status+json', accepted: true },
  { value: null, accepted: true },
  { value: 'text/plain', accepted: false },
  { value: 'application/x-www-form-urlencoded', accepted: false },
  { value: 'multipart/form-data; boundary=xyz', accepted: false },
  { value: 'application/json5', accepted: false },
  { value: 'application/octet-stream', accepted: false },
  { value: 'text/json', accepted: false },
  { value: 'json', accepted: false },
];

const ENCODINGS: Array<string | null> = [null, 'identity', 'IDENTITY', 'gzip', 'br', 'deflate, identity'];

const normalTransport: fc.Arbitrary<Transport> = fc.record({
  method: fc.constant('POST' as const),
  path: fc.constantFrom('/DeviceStatus', '/api/device-status'),
  contentType: fc.constantFrom<string | null>('application/json', null, 'application/json; charset=utf-8'),
  contentEncoding: fc.constant(null),
  forwardedFor: fc.constant(null),
});

const variedTransport: fc.Arbitrary<Transport> = fc.record({
  method: fc.oneof({ weight: 20, arbitrary: fc.constant('POST' as const) }, { weight: 1, arbitrary: fc.constantFrom('PUT' as const, 'PATCH' as const, 'DELETE' as const, 'GET' as const) }),
  path: fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...INGEST_PATH_SPELLINGS) }, { weight: 1, arbitrary: fc.constantFrom(...NOT_A_ROUTE) }),
  contentType: fc.oneof({ weight: 10, arbitrary: fc.constant('application/json') }, { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES.map((c) => c.value)) }),
  contentEncoding: fc.oneof({ weight: 20, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...ENCODINGS) }),
  forwardedFor: fc.oneof({ weight: 10, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.oneof(fc.ipV4(), fc.constantFrom('unknown', '::1, 10.0.0.1', '')) }),
});

const fuzzBox = fc.nat({ max: 3_000 }).map((n) => ({ kind: 'fuzz' as const, n }));

/** Valid reports of both formats and the vendor's examples, each for a fuzz box: all must be accepted. */
export const validReportCase: fc.Arbitrary<ReportCase> = fc.record({
  family: fc.constant('valid' as const),
  box: fuzzBox,
  base: validBaseArb,
  mutations: fc.constant([]),
  textMutations: fc.constant([]),
  transport: normalTransport,
  poison: fc.constant(null),
});

/** Valid reports with up to four value and text mutations, sent in varied ways. */
export const mutatedReportCase: fc.Arbitrary<ReportCase> = fc.record({
  family: fc.constant('mutated' as const),
  box: fuzzBox,
  base: validBaseArb,
  mutations: fc.array(valueMutationArb, { minLength: 1, maxLength: 4 }),
  textMutations: fc.oneof({ weight: 3, arbitrary: fc.constant<TextMutation[]>([]) }, { weight: 1, arbitrary: fc.array(textMutationArb, { maxLength: 2 }) }),
  transport: fc.oneof({ weight: 4, arbitrary: normalTransport }, { weight: 1, arbitrary: variedTransport }),
  poison: fc.constant(null),
});

/** Bodies that are no report: random JSON, text, bytes, mangled text. */
export const malformedReportCase: fc.Arbitrary<ReportCase> = fc.record({
  family: fc.constant('malformed' as const),
  box: fuzzBox,
  base: fc.oneof(
    fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json> }),
    fc.record({ kind: fc.constant('text' as const), text: fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.json(), fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', ',', ':', "'", '/', '*', 'a', '1', ' ', '\\'), maxLength: 60 })) }),
    fc.record({ kind: fc.constant('bytes' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }) }),
    validBaseArb,
  ),
  mutations: fc.constant([]),
  textMutations: fc.array(textMutationArb, { maxLength: 3 }),
  transport: variedTransport,
  poison: fc.constant(null),
});

const poisonArb: fc.Arbitrary<Poison> = fc.constantFrom<Poison>(
  { op: 'duplicate-device' },
  { op: 'not-an-object-device' },
  { op: 'too-many-devices' },
  { op: 'deep-field' },
  { op: 'truncate' },
  { op: 'content-type' },
  { op: 'content-encoding' },
  { op: 'method' },
  { op: 'too-large' },
);

/** Mutations that change values only: they cannot turn a poisoned report into an acceptable one. */
const valueOnlyMutationArb = valueMutationArb.filter((m) => m.op !== 'rename-key' && m.op !== 'add-field' && m.op !== 'swap-lists' && m.op !== 'set-key' && m.op !== 'drop');

/**
 * Reports for the stored (baseline) boxes with one defect that must get them refused, after other
 * mutations: a partial write would show in the stored rows.
 */
export function aimedAtStoredCase(storedBoxes: number): fc.Arbitrary<ReportCase> {
  return fc.record({
    family: fc.constant('aimed-at-stored' as const),
    box: fc.nat({ max: storedBoxes - 1 }).map((n) => ({ kind: 'stored' as const, n })),
    base: validBaseArb,
    mutations: fc.array(valueOnlyMutationArb, { maxLength: 3 }),
    textMutations: fc.array(textMutationArb.filter((m) => m.op === 'json5' || m.op === 'bom' || m.op === 'pad'), { maxLength: 2 }),
    transport: normalTransport,
    poison: poisonArb,
  });
}

// ---------------------------------------------------------------------------------------------------
// Building the request

export interface ReportRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  /** What the answer must be, when the recipe decides it: `accept` = 200, else the status and error code. */
  expected: { accept: true } | { status: number; code: string } | { refuse: true } | null;
}

function seedValue(which: 'newer-example' | 'older-example' | 'newer-table' | 'older-table'): { text: string; value: Json } {
  const text = which === 'newer-example' ? NEWER_FORMAT_EXAMPLE : which === 'older-example' ? OLDER_FORMAT_EXAMPLE : JSON.stringify(which === 'newer-table' ? NEWER_FORMAT_TABLE : OLDER_FORMAT_TABLE, null, 2);
  return { text, value: JSON5.parse(text) as Json };
}

function newerDevice(d: GeneratedDevice): Record<string, Json> {
  const device: Record<string, Json> = {};
  if (d.id !== undefined) device.media_device_id = d.id;
  if (d.name !== undefined) device.media_device_name = d.name;
  if (d.ip !== undefined) device.media_device_ip = d.ip;
  if (d.status !== undefined) device.media_device_status = d.status;
  if (d.type !== undefined) device.media_device_type = d.type;
  if (d.url !== undefined) device.media_device_url = d.url;
  if (d.group !== undefined) device.permission_id = d.group;
  return device;
}

function olderDevice(d: GeneratedDevice): Record<string, Json> {
  const device: Record<string, Json> = {};
  if (d.id !== undefined) device.ep_id = d.id;
  if (d.name !== undefined) device.ep_name = d.name;
  if (d.ip !== undefined) device.ep_ip = d.ip;
  if (d.status !== undefined) device.ep_status = d.status;
  if (d.type !== undefined) device.ep_type = d.type;
  if (d.url !== undefined) device.ep_url = d.url;
  if (d.group !== undefined) device.ep_location = d.group;
  return device;
}

/** The base report as a JSON value, and its verbatim text when it has one (the vendor's JSON5 examples). */
function baseValue(base: ReportBase, key: string): { value: Json; text?: string; bytes?: Uint8Array } {
  switch (base.kind) {
    case 'newer':
      return { value: { mq_license_key: key, media_devices: base.devices.map(newerDevice), ...base.extra } };
    case 'older': {
      const gateway: Record<string, Json> = base.gateway
        ? { gateway_ip: '10.0.0.19', gateway_name: 'SE5 gate', gateway_status: 'online', gateway_sn: 'HQDZKM6BJACJH0182', gateway_port: 5555, gateway_ext_data: { sw_version: '2.3.1', cpu_usage: 23.5, temperature: '52℃' } }
        : {};
      return { value: { dev_sno: key, ...gateway, sub_devices: base.devices.map(olderDevice), ...base.extra } };
    }
    case 'seed': {
      const seed = seedValue(base.which);
      let text = seed.text;
      for (const old of SEED_KEYS) text = text.replaceAll(`"${old}"`, JSON.stringify(key)).replaceAll(`'${old}'`, JSON.stringify(key));
      return { value: JSON5.parse(text) as Json, text };
    }
    case 'json':
      return { value: base.value };
    case 'text':
      return { value: null, text: base.text };
    case 'bytes':
      return { value: null, bytes: Uint8Array.from(base.bytes) };
  }
}

type Container = Json[] | { [key: string]: Json };
interface Node {
  parent: Container | null;
  key: string | number | null;
  value: Json;
}

/** Every node of a JSON value, depth first, with where it sits (the root has no parent). */
function nodes(root: Json): Node[] {
  const out: Node[] = [];
  const walk = (value: Json, parent: Container | null, key: string | number | null, depth: number) => {
    out.push({ parent, key, value });
    if (depth > 8 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      // Long device lists: only their first items are targets.
      for (let i = 0; i < Math.min(value.length, 8); i++) walk(value[i]!, value, i, depth + 1);
    } else for (const k of Object.keys(value)) walk(value[k]!, value, k, depth + 1);
  };
  walk(root, null, null, 0);
  return out;
}

function set(node: Node, value: Json): Json | undefined {
  if (!node.parent) return value; // the root: the caller replaces it
  (node.parent as Record<string | number, Json>)[node.key as string | number] = value;
  return undefined;
}

const DEEP = (n: number) => `@@deep-${n}@@`;

/** Text of `length` characters that does not compress (Postgres compresses long values), the same every time. */
export function incompressible(length: number): string {
  let text = '';
  for (let i = 0; text.length < length; i++) text += createHash('sha256').update(String(i)).digest('base64');
  return text.slice(0, length);
}

/** Applies value mutations; deep nesting is spliced into the text later (a JSON value that deep would overflow JSON.stringify). */
function mutateValue(root: Json, mutations: ValueMutation[], deep: Map<string, { depth: number; shape: 'array' | 'object' }>, format: 'newer' | 'older'): Json {
  let value = root;
  for (const m of mutations) {
    if (m.op === 'set-key') {
      if (isObject(value)) {
        const field = 'mq_license_key' in value || !('dev_sno' in value) ? 'mq_license_key' : 'dev_sno';
        value[field] = m.value;
      }
      continue;
    }
    if (m.op === 'swap-lists') {
      if (isObject(value)) {
        const a = value.media_devices;
        const b = value.sub_devices;
        delete value.media_devices;
        delete value.sub_devices;
        if (a !== undefined) value.sub_devices = a;
        if (b !== undefined) value.media_devices = b;
      }
      continue;
    }
    if (m.op === 'many-devices') {
      if (isObject(value)) {
        const field = 'media_devices' in value ? 'media_devices' : 'sub_devices';
        value[field] = Array.from({ length: m.count }, (_, i): Json =>
          format === 'newer'
            ? { media_device_id: `many-${i}`, media_device_status: i % 7 ? 'online' : 'offline', media_device_type: 'rtsp', media_device_url: `rtsp://10.1.${i >> 8}.${i & 255}/s` }
            : { ep_id: `many-${i}`, ep_status: i % 7 ? 'online' : 'offline', ep_type: 'photo', ep_ip: `10.2.${i >> 8}.${i & 255}` },
        );
      }
      continue;
    }
    const all = nodes(value);
    const node = all[m.target % all.length]!;
    const replace = (next: Json) => {
      const root = set(node, next);
      if (root !== undefined) value = root;
    };
    switch (m.op) {
      case 'drop':
        if (node.parent && Array.isArray(node.parent)) node.parent.splice(node.key as number, 1);
        else if (node.parent) delete (node.parent as Record<string, Json>)[node.key as string];
        break;
      case 'duplicate-item': {
        const list = Array.isArray(node.value) ? node.value : Array.isArray(node.parent) ? node.parent : null;
        if (list && list.length > 0) list.push(structuredClone(list[Math.min(list.length - 1, Array.isArray(node.value) ? 0 : (node.key as number))]!));
        break;
      }
      case 'retype':
        replace(m.value);
        break;
      case 'huge-string':
        replace(m.text === 'repeated' ? 'x'.repeat(m.length) : incompressible(m.length));
        break;
      case 'deep-nest': {
        const marker = DEEP(deep.size);
        deep.set(marker, { depth: m.depth, shape: m.shape });
        replace(marker);
        break;
      }
      case 'weird-string':
        if (typeof node.value === 'string') {
          const at = node.value.length >> 1;
          replace(node.value.slice(0, at) + m.weird + node.value.slice(at));
        } else replace(m.weird);
        break;
      case 'number-as-string':
        if (typeof node.value === 'number') replace(String(node.value));
        else if (typeof node.value === 'string' && node.value.trim() !== '' && Number.isFinite(Number(node.value))) replace(Number(node.value));
        else if (typeof node.value === 'boolean') replace(String(node.value));
        break;
      case 'string-as-number':
        if (typeof node.value === 'string') replace(m.value);
        break;
      case 'rename-key':
        if (node.parent && !Array.isArray(node.parent) && typeof node.key === 'string') {
          const parent = node.parent as Record<string, Json>;
          delete parent[node.key];
          parent[m.name] = node.value;
        }
        break;
      case 'add-field':
        if (isObject(node.value)) node.value[m.name] = m.value;
        else if (node.parent && !Array.isArray(node.parent)) (node.parent as Record<string, Json>)[m.name] = m.value;
        break;
      case 'upper-case':
        if (typeof node.value === 'string') replace(node.value.toUpperCase());
        break;
    }
  }
  return value;
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function splice(bytes: Uint8Array, at: number, insert: Uint8Array, remove = 0): Uint8Array {
  const index = Math.floor(at * (bytes.length + 1));
  return Buffer.concat([bytes.subarray(0, index), insert, bytes.subarray(Math.min(bytes.length, index + remove))]);
}

function mutateText(bytes: Uint8Array, m: TextMutation): Uint8Array {
  const text = () => Buffer.from(bytes).toString('utf8');
  switch (m.op) {
    case 'truncate':
      return bytes.subarray(0, Math.floor(m.at * bytes.length));
    case 'json5': {
      const t = text();
      const out =
        m.flavour === 'single-quotes'
          ? t.replace(/"/g, "'")
          : m.flavour === 'trailing-commas'
            ? t.replace(/([^[{\s])(\s*)([}\]])/g, '$1,$2$3')
            : m.flavour === 'comments'
              ? t.replace('{', '{ // a comment\n').replace(/,/g, ', /* c */')
              : m.flavour === 'unquoted-keys'
                ? t.replace(/"([A-Za-z_][A-Za-z0-9_]*)":/g, '$1:')
                : t.replace(/:(\d+)([,}])/g, (_all, n: string, end: string) => `:0x${Number(n).toString(16)}${end}`).replace(/:"online"/, ':Infinity').replace(/:"offline"/, ':NaN');
      return Buffer.from(out);
    }
    case 'insert-text':
      return splice(bytes, m.at, Buffer.from(m.text));
    case 'delete':
      return splice(bytes, m.at, new Uint8Array(), m.length);
    case 'insert-bytes':
      return splice(bytes, m.at, Uint8Array.from(m.bytes));
    case 'bom':
      return Buffer.concat([m.kind === 'utf8' ? Buffer.from([0xef, 0xbb, 0xbf]) : m.kind === 'utf16le-bytes' ? Buffer.from([0xff, 0xfe]) : Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), bytes]);
    case 'utf16':
      return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text(), 'utf16le')]);
    case 'pad':
      return Buffer.concat([Buffer.from(m.with), bytes, Buffer.from(m.with)]);
    case 'duplicate-key-text': {
      const t = text();
      const at = t.indexOf('{');
      return at < 0 ? bytes : Buffer.from(`${t.slice(0, at + 1)}"mq_license_key":"${fuzzKey(100_000 + m.n)}","media_devices":[],${t.slice(at + 1)}`);
    }
    case 'concat':
      return Buffer.concat([bytes, bytes]);
    case 'raw-control':
      return splice(bytes, m.at, Buffer.from([m.char]));
  }
}

function deepText(depth: number, shape: 'array' | 'object'): string {
  return shape === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

function listField(value: { [key: string]: Json }): string {
  return value.media_devices !== undefined ? 'media_devices' : 'sub_devices';
}

/** Turns a recipe into the request to send, and what the answer must be where the recipe decides it. */
export function buildReportRequest(c: ReportCase, options: { storedKeys: readonly string[]; maxBodyBytes: number; maxDevices: number }): ReportRequest {
  const key = c.box.kind === 'fuzz' ? fuzzKey(c.box.n) : options.storedKeys[c.box.n]!;
  const base = baseValue(c.base, key);
  const deep = new Map<string, { depth: number; shape: 'array' | 'object' }>();
  const format = c.base.kind === 'older' || (c.base.kind === 'seed' && c.base.which.startsWith('older')) ? 'older' : 'newer';
  let value = base.value;
  if (c.mutations.length > 0 || c.poison) value = mutateValue(structuredClone(value), c.mutations, deep, format);

  const transport = { ...c.transport };
  let truncate = false;
  switch (c.poison?.op) {
    case 'duplicate-device':
    case 'not-an-object-device':
    case 'too-many-devices':
      if (isObject(value)) {
        const field = listField(value);
        const list = value[field];
        if (Array.isArray(list)) {
          if (c.poison.op === 'duplicate-device') list.push({ media_device_id: 'poison' }, { media_device_id: 'poison' });
          else if (c.poison.op === 'not-an-object-device') list.push('poison');
          else value[field] = Array.from({ length: options.maxDevices + 1 }, (_, i) => ({ media_device_id: `p${i}` }));
        }
      }
      break;
    case 'deep-field':
      if (isObject(value)) {
        const marker = DEEP(deep.size);
        deep.set(marker, { depth: 40, shape: 'array' });
        value.poison = marker;
      }
      break;
    case 'truncate':
      truncate = true;
      break;
    case 'content-type':
      transport.contentType = 'text/plain';
      break;
    case 'content-encoding':
      transport.contentEncoding = 'gzip';
      break;
    case 'method':
      transport.method = 'PUT';
      break;
  }

  let bytes: Uint8Array;
  if (base.bytes) bytes = base.bytes;
  else if (base.text !== undefined && (c.base.kind === 'text' || (c.mutations.length === 0 && !c.poison))) bytes = Buffer.from(base.text);
  else {
    let text = JSON.stringify(value);
    for (const [marker, { depth, shape }] of deep) text = text.replace(JSON.stringify(marker), deepText(depth, shape));
    bytes = Buffer.from(text);
  }
  // Before the text mutations, which may add whitespace at the end: the object stays unclosed.
  if (truncate) bytes = bytes.subarray(0, Math.max(1, bytes.length - 2));
  for (const m of c.textMutations) bytes = mutateText(bytes, m);
  if (c.poison?.op === 'too-large') bytes = Buffer.concat([bytes, Buffer.alloc(options.maxBodyBytes + 1 - Math.min(bytes.length, options.maxBodyBytes), 0x20)]);

  const headers: Record<string, string> = {};
  if (transport.contentType !== null) headers['content-type'] = transport.contentType;
  if (transport.contentEncoding !== null) headers['content-encoding'] = transport.contentEncoding;
  if (transport.forwardedFor !== null) headers['x-forwarded-for'] = transport.forwardedFor;
  const hasBody = transport.method !== 'GET';

  return { method: transport.method, path: transport.path, headers, body: hasBody ? bytes : undefined, expected: expectation(c, transport, hasBody ? bytes.length : 0, options.maxBodyBytes) };
}

/** The answer the transport alone decides, in the order the gateway checks: route, method, type, encoding, size. */
function expectation(c: ReportCase, transport: Transport, size: number, maxBodyBytes: number): ReportRequest['expected'] {
  if (NOT_A_ROUTE.includes(transport.path)) return { status: 404, code: 'NOT_FOUND' };
  if (transport.method !== 'POST') return { status: 405, code: 'METHOD_NOT_ALLOWED' };
  if (!CONTENT_TYPES.find((t) => t.value === transport.contentType)?.accepted) return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' };
  if (transport.contentEncoding !== null && transport.contentEncoding.toLowerCase() !== 'identity') return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' };
  if (size > maxBodyBytes) return { status: 413, code: 'PAYLOAD_TOO_LARGE' };
  if (c.family === 'valid') return { accept: true };
  if (c.poison) return { refuse: true };
  return null;
}

export function describeReportCase(c: ReportCase): string {
  const { family, box, base, mutations, textMutations, transport, poison } = c;
  return preview({ family, box, base, mutations, textMutations, transport, poison }, 1500);
}
