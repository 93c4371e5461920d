import { isUtf8 } from 'node:buffer';

/**
 * A box sends the same bytes at every report but for a few values: its devices' statuses and, from
 * an older box, its health figures (`gateway_ext_data`). A BodyTemplate says where those values lie
 * in a body the box sent, so that its next body is read by comparing the bytes between them and
 * reading only the values, instead of parsing the whole body again.
 *
 * Why that is exact: `findBodyTemplate` proves, by parsing the body once more with every slot replaced
 * by a number of its own, that each slot is precisely the value JSON.parse keeps for one device's
 * status (or for the top-level `gateway_ext_data`). The JSON grammar reads the bytes around a value the
 * same whatever single value stands there, so a body made of the same bytes between the slots, and in
 * each slot one value of the same kind, parses to the same object with only those values replaced.
 * `fillBodyTemplate` takes a status slot only as `"online"` or `"offline"` (which a whole read keeps
 * as they are, without a warning) and the figures only as one JSON object.
 */
export interface BodyTemplate {
  /** In body order, not overlapping. */
  slots: readonly Slot[];
}

export type Slot =
  /** A device's status token and the whitespace after it; `device` is its index in the device list. */
  | { kind: 'status'; device: number; start: number; end: number }
  /** The `gateway_ext_data` object and the whitespace around it. */
  | { kind: 'ext-data'; start: number; end: number };

/** What the values of a body read with a template are. */
export interface FilledTemplate {
  /** The status of each status slot's device, by device index; empty when only the figures changed. */
  statuses: Map<number, 'online' | 'offline'>;
  /** The text of `gateway_ext_data`, if the template has that slot. */
  extDataText?: string;
  /** The same slots, where they lie in the new body. */
  template: BodyTemplate;
}

const EXT_DATA_KEY = Buffer.from('"gateway_ext_data"');
const STATUS_KEYS = [Buffer.from('"media_device_status"'), Buffer.from('"ep_status"')];
const ONLINE = Buffer.from('"online"');
const OFFLINE = Buffer.from('"offline"');

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN = 0x7b;
const CLOSE = 0x7d;

function skipWhitespace(body: Buffer, i: number): number {
  while (i < body.length && (body[i] === SPACE || body[i] === LF || body[i] === CR || body[i] === TAB)) i++;
  return i;
}

/**
 * The offset just after the object opening at `start`, counting braces outside strings; undefined if
 * it never closes. UTF-8 never uses an ASCII byte inside a longer character, so bytes can be scanned.
 */
function endOfObject(body: Buffer, start: number): number | undefined {
  let depth = 0;
  for (let i = start; i < body.length; i++) {
    const byte = body[i];
    if (byte === QUOTE) {
      for (i++; i < body.length && body[i] !== QUOTE; i++) if (body[i] === BACKSLASH) i++;
    } else if (byte === OPEN) depth++;
    else if (byte === CLOSE && --depth === 0) return i + 1;
  }
  return undefined;
}

/** The status token (`"online"` or `"offline"`) at `at`, if one starts there. */
function statusAt(body: Buffer, at: number): 'online' | 'offline' | undefined {
  if (at + ONLINE.length <= body.length && body.compare(ONLINE, 0, ONLINE.length, at, at + ONLINE.length) === 0) return 'online';
  if (at + OFFLINE.length <= body.length && body.compare(OFFLINE, 0, OFFLINE.length, at, at + OFFLINE.length) === 0) return 'offline';
  return undefined;
}

/** Where the value after the key found at `key` starts: past whitespace, a colon and whitespace. */
function valueAfterKey(body: Buffer, key: number, keyLength: number): number | undefined {
  const colon = skipWhitespace(body, key + keyLength);
  return body[colon] === COLON ? skipWhitespace(body, colon + 1) : undefined;
}

/** Places in `body` that may hold a status slot or the figures, in body order, to be proven by a parse. */
function candidates(body: Buffer): Array<{ kind: Slot['kind']; start: number; end: number }> {
  const found: Array<{ kind: Slot['kind']; start: number; end: number }> = [];
  for (const key of STATUS_KEYS) {
    for (let at = body.indexOf(key); at !== -1; at = body.indexOf(key, at + key.length)) {
      const start = valueAfterKey(body, at, key.length);
      const status = start === undefined ? undefined : statusAt(body, start);
      if (start === undefined || status === undefined) continue;
      found.push({ kind: 'status', start, end: skipWhitespace(body, start + (status === 'online' ? ONLINE.length : OFFLINE.length)) });
    }
  }
  // The figures: their key written once, and not with escapes (else another spelling may be the one kept).
  const key = body.indexOf(EXT_DATA_KEY);
  if (key !== -1 && body.indexOf(EXT_DATA_KEY, key + 1) === -1) {
    const start = valueAfterKey(body, key, EXT_DATA_KEY.length);
    const end = start !== undefined && body[start] === OPEN ? endOfObject(body, start) : undefined;
    if (start !== undefined && end !== undefined) found.push({ kind: 'ext-data', start, end: skipWhitespace(body, end) });
  }
  // A status inside the figures is theirs: only the outer place can be a slot.
  found.sort((a, b) => a.start - b.start);
  return found.filter((slot, i) => i === 0 || slot.start >= found[i - 1]!.end);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The slots of `body`, strict JSON that parsed to `parsed`: the statuses of the devices in its list
 * (`listField`, read through `statusField`) that are `"online"` or `"offline"`, and its figures if they
 * are an object. Undefined when there is none. Costs one more parse of the body.
 */
export function findBodyTemplate(
  body: Buffer,
  parsed: Record<string, unknown>,
  listField: string,
  statusField: (device: Record<string, unknown>) => string,
): BodyTemplate | undefined {
  const found = candidates(body);
  if (found.length === 0) return undefined;
  // Each candidate replaced by its index (the figures by -1): what the parse keeps there names the slot.
  const parts: Buffer[] = [];
  let last = 0;
  found.forEach((slot, i) => {
    parts.push(body.subarray(last, slot.start), Buffer.from(slot.kind === 'ext-data' ? '-1' : `${i} `));
    last = slot.end;
  });
  parts.push(body.subarray(last));
  let probe: unknown;
  try {
    probe = JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(probe)) return undefined;
  // A marker counts only where the body had a string (the status) or an object (the figures): a
  // number the box itself sent there is not one.
  const slots: Slot[] = [];
  const extData = found.find((slot) => slot.kind === 'ext-data');
  if (extData && probe.gateway_ext_data === -1 && isObject(parsed.gateway_ext_data)) slots.push({ kind: 'ext-data', start: extData.start, end: extData.end });
  const list = probe[listField];
  const listed = parsed[listField];
  if (Array.isArray(list) && Array.isArray(listed)) {
    const taken = new Set<number>();
    for (const [index, device] of list.entries()) {
      const original = listed[index];
      if (!isObject(device) || !isObject(original)) continue;
      const field = statusField(device);
      const marker = device[field];
      const slot = typeof marker === 'number' && typeof original[field] === 'string' ? found[marker] : undefined;
      if (slot?.kind !== 'status') continue;
      if (taken.has(marker as number)) return undefined; // cannot be: the parse kept each value once
      taken.add(marker as number);
      slots.push({ kind: 'status', device: index, start: slot.start, end: slot.end });
    }
  }
  // A candidate no device keeps (nested, or shadowed by a later key) is left as bytes that must stay the same.
  return slots.length === 0 ? undefined : { slots: slots.sort((a, b) => a.start - b.start) };
}

/**
 * The values of `body` when it is `previous` (whose template is `template`) with other values in the
 * slots: the same bytes between them, a status slot `"online"` or `"offline"` (and any whitespace),
 * the figures one JSON object (and any whitespace) in valid UTF-8. Otherwise undefined: read the body whole.
 */
export function fillBodyTemplate(previous: Buffer, template: BodyTemplate, body: Buffer): FilledTemplate | undefined {
  return onlyExtDataChanged(previous, template, body) ?? fillSlots(previous, template, body);
}

/**
 * The common case, in two comparisons instead of one a slot: an older box whose devices did not
 * change, its body new only in its figures (same bytes before and after them).
 */
function onlyExtDataChanged(previous: Buffer, template: BodyTemplate, body: Buffer): FilledTemplate | undefined {
  const index = template.slots.findIndex((slot) => slot.kind === 'ext-data');
  if (index === -1) return undefined;
  const ext = template.slots[index]!;
  const suffix = previous.length - ext.end;
  const end = body.length - suffix;
  if (end <= ext.start || body.compare(previous, 0, ext.start, 0, ext.start) !== 0) return undefined;
  if (body.compare(previous, ext.end, previous.length, end, body.length) !== 0) return undefined;
  const extData = extDataAt(body, ext.start);
  if (extData?.end !== end) return undefined;
  const shift = end - ext.end;
  const slots = template.slots.map((slot, i) =>
    i < index ? slot : i === index ? { ...slot, end } : { ...slot, start: slot.start + shift, end: slot.end + shift },
  );
  return { statuses: new Map(), extDataText: extData.text, template: { slots } };
}

/** The figures' slot starting at `at`: whitespace, one object in valid UTF-8, whitespace; its end and text. */
function extDataAt(body: Buffer, at: number): { end: number; text: string } | undefined {
  const open = skipWhitespace(body, at);
  const close = body[open] === OPEN ? endOfObject(body, open) : undefined;
  if (close === undefined) return undefined;
  const end = skipWhitespace(body, close);
  const middle = body.subarray(at, end);
  return isUtf8(middle) ? { end, text: middle.toString('utf8') } : undefined;
}

/** Each slot in turn: the bytes up to it the same, then its value read. */
function fillSlots(previous: Buffer, template: BodyTemplate, body: Buffer): FilledTemplate | undefined {
  const statuses = new Map<number, 'online' | 'offline'>();
  const slots: Slot[] = [];
  let extDataText: string | undefined;
  let from = 0; // in previous
  let at = 0; // in body
  for (const slot of template.slots) {
    const length = slot.start - from;
    if (at + length > body.length || body.compare(previous, from, slot.start, at, at + length) !== 0) return undefined;
    at += length;
    if (slot.kind === 'status') {
      const status = statusAt(body, at);
      if (status === undefined) return undefined;
      const end = skipWhitespace(body, at + (status === 'online' ? ONLINE.length : OFFLINE.length));
      statuses.set(slot.device, status);
      slots.push({ kind: 'status', device: slot.device, start: at, end });
      at = end;
    } else {
      const extData = extDataAt(body, at);
      if (!extData) return undefined;
      extDataText = extData.text;
      slots.push({ kind: 'ext-data', start: at, end: extData.end });
      at = extData.end;
    }
    from = slot.end;
  }
  if (body.length - at !== previous.length - from || body.compare(previous, from, previous.length, at, body.length) !== 0) return undefined;
  return { statuses, extDataText, template: { slots } };
}
