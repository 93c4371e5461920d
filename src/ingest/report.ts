import { isUtf8 } from 'node:buffer';
import { hash as oneShotHash } from 'node:crypto';
import type { DeviceStatus, DeviceType, ReportFormat } from '../db/schema';
import { ReportError, type ReportWarning } from './errors';
import { MAX_JSON_DEPTH, storableJson } from './json';

/** One device as both report formats describe it, mapped to one model. */
export interface ReportedDevice {
  externalId: string;
  name: string | null;
  ip: string | null;
  type: DeviceType;
  url: string | null;
  permissionId: string | null;
  status: DeviceStatus;
  /** The raw value when status or type was outside the documented ones (stored as `unknown`). */
  reportedStatus: string | null;
  reportedType: string | null;
}

/** A report of either format, validated and normalized; what the store applies. */
export interface Report {
  licenseKey: string;
  format: ReportFormat;
  devices: ReportedDevice[];
  /** Older boxes' `gateway_*` fields that were present. */
  gateway: Record<string, unknown> | null;
  gatewayExtData: Record<string, unknown> | null;
  boxName: string | null;
  /**
   * The body to store as the box's last report, as UTF-8 JSON text: the bytes received (without a
   * byte order mark) when they were strict, storable JSON; else the report written out again.
   */
  rawBody: Buffer;
  /** Hash of the body bytes: equal bodies mean an equal report. */
  rawHash: string;
  /** Hash of the normalized device list. */
  devicesHash: string;
  warnings: ReportWarning[];
  /** Set when the device list is its box's previous report's but for the statuses of some devices. */
  statusChanges?: StatusChanges;
}

/**
 * A device list that is another one (`previousDevicesHash`) with only these devices' statuses
 * changed, in list order. Where that list is the stored one, these are all the list's changes.
 */
export interface StatusChanges {
  previousDevicesHash: string;
  changed: ReadonlyArray<{ device: ReportedDevice; from: DeviceStatus }>;
}

export interface ReportLimits {
  maxDevices: number;
}

const STATUSES: ReadonlySet<string> = new Set(['online', 'offline']);
const TYPES: ReadonlySet<string> = new Set(['photo', 'rtsp', 'file', 'gb28181']);
const GATEWAY_FIELDS = ['gateway_ip', 'gateway_name', 'gateway_status', 'gateway_sn', 'gateway_port'] as const;
const MAX_KEY_LENGTH = 256;
const MAX_DEVICE_ID_LENGTH = 512;
/** Longer device names are cut (with a warning): the name index holds at most 2,704 bytes an entry. */
export const MAX_DEVICE_NAME_LENGTH = 500;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The field names of the two device dialects. The newer one also appears under `sub_devices`. */
const DIALECTS = {
  new: {
    id: 'media_device_id',
    name: 'media_device_name',
    ip: 'media_device_ip',
    type: 'media_device_type',
    url: 'media_device_url',
    permission: 'permission_id',
    status: 'media_device_status',
  },
  old: {
    id: 'ep_id',
    name: 'ep_name',
    ip: 'ep_ip',
    type: 'ep_type',
    url: 'ep_url',
    permission: 'ep_location',
    status: 'ep_status',
  },
} as const;
type Dialect = (typeof DIALECTS)[keyof typeof DIALECTS];

/** The field a device's status is read from: its dialect's, by the prefix of its keys. */
export function statusFieldOf(device: Record<string, unknown>, format: ReportFormat): string {
  return dialectOf(device, format).status;
}

function dialectOf(device: Record<string, unknown>, format: ReportFormat): Dialect {
  for (const key in device) {
    if (key.startsWith('media_device_')) return DIALECTS.new;
    if (key.startsWith('ep_')) return DIALECTS.old;
  }
  return DIALECTS[format];
}

class DeviceReader {
  constructor(
    private readonly warnings: ReportWarning[],
    private readonly path: string,
    private readonly device: Record<string, unknown>,
  ) {}

  /** A text field: strings kept, numbers and booleans written out, anything else dropped with a warning. */
  text(field: string): string | null {
    const value = this.device[field];
    if (value === undefined || value === null) return null;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    this.warnings.push({
      code: 'INVALID_FIELD',
      message: `${field} should be a string; the value was ignored`,
      path: `${this.path}.${field}`,
    });
    return null;
  }

  /** A value from a documented set, any letter case; otherwise `unknown`, with a warning. */
  choice<T extends string>(field: string, allowed: ReadonlySet<string>, what: string): { value: T | 'unknown'; raw: string | null } {
    const raw = this.device[field];
    const text = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
    if (text !== undefined && allowed.has(text)) return { value: text as T, raw: null };
    const shown = raw === undefined ? 'missing' : JSON.stringify(raw);
    this.warnings.push({
      code: what === 'status' ? 'UNKNOWN_STATUS' : 'UNKNOWN_TYPE',
      message: `${field} is ${shown}, not one of ${[...allowed].join(', ')}; stored as unknown`,
      path: `${this.path}.${field}`,
    });
    return { value: 'unknown', raw: raw === undefined ? null : typeof raw === 'string' ? raw : JSON.stringify(raw) };
  }
}

function readDevice(
  item: unknown,
  path: string,
  licenseKey: string,
  format: ReportFormat,
  warnings: ReportWarning[],
): ReportedDevice {
  if (!isObject(item)) {
    throw new ReportError(400, 'INVALID_DEVICE', `Device ${path} is not an object.`, path);
  }
  const fields = dialectOf(item, format);
  const read = new DeviceReader(warnings, path, item);
  const url = read.text(fields.url);
  const ip = read.text(fields.ip);
  let externalId = read.text(fields.id)?.trim() || null;
  if (externalId === null) {
    // The newer format's own example omits media_device_id ("optional"), and the box refuses two
    // devices with one URL, so the URL identifies it. Older ids are defined as dev_sno + '__' + address.
    const address = fields === DIALECTS.new ? url : (url ?? ip);
    if (address) externalId = fields === DIALECTS.new ? address : `${licenseKey}__${address}`;
  }
  if (!externalId) {
    const fallback = fields === DIALECTS.new ? fields.url : `${fields.ip} or ${fields.url}`;
    throw new ReportError(
      400,
      'UNIDENTIFIABLE_DEVICE',
      `Device ${path} has no ${fields.id} and no ${fallback} to identify it by.`,
      `${path}.${fields.id}`,
    );
  }
  if (externalId.length > MAX_DEVICE_ID_LENGTH) {
    throw new ReportError(400, 'INVALID_DEVICE_ID', `${fields.id} is longer than ${MAX_DEVICE_ID_LENGTH} characters.`, `${path}.${fields.id}`);
  }
  const status = read.choice<DeviceStatus>(fields.status, STATUSES, 'status');
  const type = read.choice<DeviceType>(fields.type, TYPES, 'type');
  let name = read.text(fields.name);
  if (name !== null && name.length > MAX_DEVICE_NAME_LENGTH) {
    // Cut between characters, not inside a surrogate pair.
    const end = MAX_DEVICE_NAME_LENGTH - (/[\ud800-\udbff]/.test(name[MAX_DEVICE_NAME_LENGTH - 1]!) ? 1 : 0);
    name = name.slice(0, end);
    warnings.push({
      code: 'TRUNCATED',
      message: `${fields.name} is longer than ${MAX_DEVICE_NAME_LENGTH} characters; its first ${end} were kept.`,
      path: `${path}.${fields.name}`,
    });
  }
  return {
    externalId,
    name,
    ip,
    type: type.value,
    url,
    permissionId: read.text(fields.permission),
    status: status.value,
    reportedStatus: status.raw,
    reportedType: type.raw,
  };
}

function readLicenseKey(body: Record<string, unknown>): { licenseKey: string; format: ReportFormat } {
  const newer = body.mq_license_key;
  const older = body.dev_sno;
  if (newer === undefined && older === undefined) {
    throw new ReportError(
      400,
      'MISSING_LICENSE_KEY',
      'The report has no licence key: newer boxes send mq_license_key, older ones dev_sno.',
      'mq_license_key',
    );
  }
  const field = newer !== undefined ? 'mq_license_key' : 'dev_sno';
  const value = newer !== undefined ? newer : older;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ReportError(400, 'INVALID_LICENSE_KEY', `${field} must be a non-empty string.`, field);
  }
  const licenseKey = value.trim();
  if (licenseKey.length > MAX_KEY_LENGTH) {
    throw new ReportError(400, 'INVALID_LICENSE_KEY', `${field} is longer than ${MAX_KEY_LENGTH} characters.`, field);
  }
  if (newer !== undefined && typeof older === 'string' && older.trim() !== '' && older.trim() !== licenseKey) {
    throw new ReportError(400, 'CONFLICTING_LICENSE_KEYS', 'mq_license_key and dev_sno name different boxes.', 'dev_sno');
  }
  return { licenseKey, format: field === 'mq_license_key' ? 'new' : 'old' };
}

function readGateway(body: Record<string, unknown>, warnings: ReportWarning[]) {
  let gateway: Record<string, unknown> | null = null;
  for (const field of GATEWAY_FIELDS) {
    if (body[field] !== undefined) (gateway ??= {})[field] = body[field];
  }
  let gatewayExtData: Record<string, unknown> | null = null;
  const ext = body.gateway_ext_data;
  if (isObject(ext)) gatewayExtData = ext;
  else if (ext !== undefined && ext !== null) {
    warnings.push({ code: 'INVALID_FIELD', message: 'gateway_ext_data should be an object; it was ignored', path: 'gateway_ext_data' });
  }
  const name = gateway?.gateway_name;
  return { gateway, gatewayExtData, boxName: typeof name === 'string' && name.trim() ? name.trim() : null };
}

/** One call, no Hash object: measurably cheaper at thousands of reports a second. */
function hash(data: string | Buffer): string {
  return oneShotHash('sha1', data, 'base64');
}

/** A report's `rawHash`: equal bodies, equal hashes. */
export function hashBody(body: Buffer): string {
  return hash(body);
}

const byExternalId = (a: ReportedDevice, b: ReportedDevice) => (a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0);

/** A text field for the device list's hash: its length first, so no two different lists read alike. */
const field = (value: string | null) => (value === null ? '-' : `${value.length}:${value}`);

/** A device's part of its list's hash. */
function hashPart(d: ReportedDevice): Buffer {
  return Buffer.from(`${field(d.externalId)}${field(d.name)}${field(d.ip)}${d.type}|${field(d.url)}${field(d.permissionId)}${d.status}|${field(d.reportedStatus)}${field(d.reportedType)}`);
}

function inIdOrder(devices: readonly ReportedDevice[]): boolean {
  for (let i = 1; i < devices.length; i++) if (devices[i - 1]!.externalId > devices[i]!.externalId) return false;
  return true;
}

/**
 * Hash of a device list in any order: of its devices' parts in id order. Built from the fields by
 * hand: half the cost of hashing the list's JSON, which is measurable at thousands of reports a second.
 */
export function devicesHash(devices: readonly ReportedDevice[]): string {
  const sorted = inIdOrder(devices) ? devices : [...devices].sort(byExternalId);
  return hash(Buffer.concat(sorted.map(hashPart)));
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Whether the JSON text cannot nest deeper than `depth` levels: it has fewer opening brackets than
 * that (brackets inside strings only make this answer no more often). Spares walking every report
 * just to check its depth.
 */
function nestingCannotExceed(text: string, depth: number): boolean {
  let count = 0;
  for (let i = text.indexOf('{'); i !== -1 && count < depth; i = text.indexOf('{', i + 1)) count++;
  for (let i = text.indexOf('['); i !== -1 && count < depth; i = text.indexOf('[', i + 1)) count++;
  return count < depth;
}

/** Validates a parsed body of either format and maps it to one `Report`, or throws a `ReportError`. */
export function normalizeReport(
  parsed: unknown,
  body: Buffer,
  limits: ReportLimits,
  warnings: ReportWarning[] = [],
  /** The body's text when it parsed as strict JSON. */
  strictText?: string,
  /** False when the text cannot hold what Postgres refuses (see mayHoldUnstorableText): strings are not cleaned. */
  clean = true,
  /** hashBody(body), when the caller has it already. */
  rawHash = hashBody(body),
): Report {
  if (!isObject(parsed)) {
    throw new ReportError(400, 'INVALID_REPORT', 'A report must be a JSON object.');
  }
  // Everything below reads from `raw`, so its strings are already storable. Strict text with nothing
  // to clean that cannot nest too deep needs no walk.
  const asParsed = !clean && strictText !== undefined && nestingCannotExceed(strictText, MAX_JSON_DEPTH);
  const raw = (asParsed ? parsed : storableJson(parsed, clean)) as Record<string, unknown>;
  const { licenseKey, format } = readLicenseKey(raw);
  // The newer format's table says media_devices, its own example sub_devices: accept either.
  const listField = raw.media_devices !== undefined ? 'media_devices' : 'sub_devices';
  const list = raw[listField];
  if (list === undefined) {
    throw new ReportError(400, 'MISSING_DEVICES', 'The report has no device list (media_devices or sub_devices).', format === 'new' ? 'media_devices' : 'sub_devices');
  }
  if (!Array.isArray(list)) {
    throw new ReportError(400, 'INVALID_DEVICES', `${listField} must be a list of devices.`, listField);
  }
  if (list.length > limits.maxDevices) {
    throw new ReportError(400, 'TOO_MANY_DEVICES', `${listField} has ${list.length} devices; at most ${limits.maxDevices} are accepted.`, listField);
  }
  const devices: ReportedDevice[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < list.length; i++) {
    const path = `${listField}[${i}]`;
    const device = readDevice(list[i], path, licenseKey, format, warnings);
    const first = seen.get(device.externalId);
    if (first !== undefined) {
      const idField = dialectOf(list[i] as Record<string, unknown>, format).id;
      throw new ReportError(
        400,
        'DUPLICATE_DEVICE_ID',
        `Devices ${first} and ${i} have the same id ${JSON.stringify(device.externalId)}.`,
        `${path}.${idField}`,
      );
    }
    seen.set(device.externalId, i);
    devices.push(Object.freeze(device));
  }
  // The bytes received are stored as they are when they are the strict JSON text, and Postgres will take them.
  const asReceived = raw === parsed && strictText !== undefined && isUtf8(body);
  const withoutBom = asReceived && body.subarray(0, 3).equals(UTF8_BOM) ? body.subarray(3) : body;
  return {
    licenseKey,
    format,
    devices,
    ...readGateway(raw, warnings),
    rawBody: asReceived ? withoutBom : Buffer.from(JSON.stringify(raw)),
    rawHash,
    devicesHash: devicesHash(devices),
    warnings,
  };
}
