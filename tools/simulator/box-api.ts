import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADDMEDIADEVICE_PATH, DELETEMEDIADEVICE_PATH, GETCONFIGS_PATH, SETCONFIGS_PATH } from '../../src/box-api/client';
import { MEDIA_DEVICE_MONITOR_REPORT_PEROID, MEDIA_DEVICE_MONITOR_URL } from '../../src/box-api/config-keys';
import { DEVICE_TYPES, type DeviceType, type SimulatedBox } from './fleet';

// A simulated box's own REST API, as the vendor documents it (see shared/box-protocol.md): POST JSON
// to setconfigs / getconfigs, `{"error": {"code", "message"}}` on failure, key-by-key application
// with the first failure reported and the other keys kept. The box obeys what it is told: a new
// monitor URL or report period changes where and how often it reports, and a device added or
// deleted with addmediadevice / deletemediadevice is in or out of its next report.

type Setting = string | number | boolean;
type Checked = { ok: true; value: Setting } | { ok: false; message: string };

/** HTTP status of error answers: the vendor documents none; 400 is what its Flask service would send. */
const ERROR_STATUS = 400;
const MAX_BODY_BYTES = 64 * 1024;

function httpUrl(value: unknown, allowEmpty = false): Checked {
  if (typeof value === 'string' && allowEmpty && value === '') return { ok: true, value };
  const protocol = typeof value === 'string' && URL.canParse(value) ? new URL(value).protocol : '';
  return protocol === 'http:' || protocol === 'https:' ? { ok: true, value: value as string } : { ok: false, message: 'must be an http or https URL' };
}

/** Whole seconds, as a number or a numeric string. */
function seconds(value: unknown): Checked {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  return Number.isInteger(n) && n >= 1 && n <= 86_400 ? { ok: true, value: n } : { ok: false, message: 'must be a whole number of seconds from 1 to 86400' };
}

/** What the simulated box accepts for each setting it knows; any other name is refused. */
const RULES: Record<string, (value: unknown) => Checked> = {
  [MEDIA_DEVICE_MONITOR_URL]: (value) => httpUrl(value),
  [MEDIA_DEVICE_MONITOR_REPORT_PEROID]: seconds,
  HISTORY_EVENT_UPLOAD_URL: (value) => httpUrl(value, true),
  HISTORY_REPORT_PEROID: seconds,
  MATCH_THRESHOLD: (value) => {
    const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
    return n >= 0 && n <= 1 ? { ok: true, value: n } : { ok: false, message: 'must be a number from 0 to 1' };
  },
  GATE_PASS_MODE: (value) =>
    value === 'normal' || value === 'allpass' || value === 'allforbidden'
      ? { ok: true, value }
      : { ok: false, message: 'must be normal, allpass or allforbidden' },
};

/** The box's settings as getconfigs lists them. */
export function boxSettings(box: SimulatedBox): Record<string, Setting> {
  return { [MEDIA_DEVICE_MONITOR_URL]: box.monitorUrl, [MEDIA_DEVICE_MONITOR_REPORT_PEROID]: box.reportPeriodSeconds, ...box.settings };
}

function setSetting(box: SimulatedBox, key: string, value: Setting): void {
  if (key === MEDIA_DEVICE_MONITOR_URL) box.monitorUrl = value as string;
  else if (key === MEDIA_DEVICE_MONITOR_REPORT_PEROID) box.reportPeriodSeconds = value as number;
  else box.settings[key] = value;
}

interface BoxError {
  code: string;
  message: string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `setconfigs`: applies `configDict` key by key. Returns the echo of what it set, or the first
 * refusal; keys before and after a refused one stay applied, as on a real box.
 */
export function applyConfigDict(box: SimulatedBox, configDict: Record<string, unknown>): { echo: Record<string, Setting>; error?: BoxError } {
  const echo: Record<string, Setting> = {};
  let error: BoxError | undefined;
  for (const [key, raw] of Object.entries(configDict)) {
    const rule = RULES[key];
    if (!rule) {
      error ??= { code: 'INVALID_ARGUMENTS', message: `unknown config name: ${key}` };
      continue;
    }
    const checked = rule(raw);
    if (!checked.ok) {
      error ??= { code: 'INVALID_ARGUMENTS', message: `invalid value for ${key}: ${checked.message}` };
      continue;
    }
    setSetting(box, key, checked.value);
    echo[key] = checked.value;
  }
  return error ? { echo, error } : { echo };
}

/** `addmediadevice`: the device added, or the vendor's error for the request. */
export function addMediaDeviceCall(box: SimulatedBox, fields: Record<string, unknown>): { answer: Record<string, string> } | { error: BoxError } {
  for (const field of ['media_device_name', 'media_device_type', 'media_device_url']) {
    if (fields[field] === undefined || fields[field] === null || fields[field] === '') return { error: { code: 'MISSING_ARGUMENTS', message: `missing argument: ${field}` } };
    if (typeof fields[field] !== 'string') return { error: { code: 'INVALID_ARGUMENTS', message: `${field} must be a string` } };
  }
  const type = fields.media_device_type as DeviceType;
  if (!DEVICE_TYPES.includes(type)) return { error: { code: 'INVALID_ARGUMENTS', message: `invalid media_device_type: ${type}; one of ${DEVICE_TYPES.join(', ')}` } };
  for (const field of ['media_device_id', 'permission_id']) {
    if (fields[field] !== undefined && typeof fields[field] !== 'string') return { error: { code: 'INVALID_ARGUMENTS', message: `${field} must be a string` } };
  }
  const added = box.addDevice({
    id: (fields.media_device_id as string | undefined) || undefined,
    name: fields.media_device_name as string,
    type,
    url: fields.media_device_url as string,
    permissionId: fields.permission_id as string | undefined,
  });
  if (!added.ok) return { error: { code: added.code, message: added.message } };
  return { answer: { media_device_id: added.device.id, media_device_name: added.device.name } };
}

/** `deletemediadevice`: the device deleted, or the vendor's error. */
export function deleteMediaDeviceCall(box: SimulatedBox, fields: Record<string, unknown>): { answer: Record<string, string> } | { error: BoxError } {
  const id = fields.media_device_id;
  if (id === undefined || id === null || id === '') return { error: { code: 'MISSING_ARGUMENTS', message: 'missing argument: media_device_id' } };
  if (typeof id !== 'string') return { error: { code: 'INVALID_ARGUMENTS', message: 'media_device_id must be a string' } };
  const removed = box.removeDevice(id);
  if (!removed) return { error: { code: 'DEVICE_ID_NOT_FOUND', message: `no media device ${id}` } };
  return { answer: { media_device_id: removed.id, media_device_name: removed.name } };
}

export interface BoxApiOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Called after a setconfigs call changed any of `keys` (applied ones only). */
  onChange?: (box: SimulatedBox, keys: string[]) => void;
}

export interface BoxApiServer {
  readonly box: SimulatedBox;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts `box`'s REST API on its own port and sets `box.apiPort` to it. */
export async function startBoxApi(box: SimulatedBox, options: BoxApiOptions = {}): Promise<BoxApiServer> {
  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const fail = (res: http.ServerResponse, code: string, message: string) => send(res, ERROR_STATUS, { error: { code, message } });

  const answer = (req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer) => {
    const path = (req.url ?? '/').split('?')[0];
    const media = path === ADDMEDIADEVICE_PATH ? addMediaDeviceCall : path === DELETEMEDIADEVICE_PATH ? deleteMediaDeviceCall : undefined;
    if (path !== SETCONFIGS_PATH && path !== GETCONFIGS_PATH && !media) {
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end('<!DOCTYPE html><title>404 Not Found</title><h1>Not Found</h1>');
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'text/html; charset=utf-8', allow: 'POST' });
      return void res.end('<!DOCTYPE html><title>405 Method Not Allowed</title>');
    }
    const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') return fail(res, 'UNSUPPORT_CONTENT_TYPE', 'Content-Type must be application/json');
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return fail(res, 'INVALID_REQUEST_JSON', 'request body is not valid json');
    }
    const fields = isPlainObject(body) ? body : {};

    if (media) {
      const result = media(box, fields);
      return 'error' in result ? fail(res, result.error.code, result.error.message) : send(res, 200, result.answer);
    }

    if (path === SETCONFIGS_PATH) {
      if (!isPlainObject(fields.config_dict)) return fail(res, 'MISSING_ARGUMENTS', 'missing argument: config_dict');
      const { echo, error } = applyConfigDict(box, fields.config_dict);
      const changed = Object.keys(echo);
      if (changed.length > 0) options.onChange?.(box, changed);
      return error ? fail(res, error.code, error.message) : send(res, 200, echo);
    }
    const settings = boxSettings(box);
    const name = fields.config_name;
    if (name === undefined) return send(res, 200, settings);
    if (typeof name !== 'string' || !Object.hasOwn(settings, name)) return fail(res, 'INVALID_ARGUMENTS', `unknown config name: ${String(name)}`);
    return send(res, 200, { [name]: settings[name] });
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.writeHead(413, { connection: 'close' }).end();
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size <= MAX_BODY_BYTES) answer(req, res, Buffer.concat(chunks));
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  box.apiPort = port;
  return {
    box,
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
