import { isUtf8 } from 'node:buffer';

/**
 * Older boxes put their health figures (`gateway_ext_data`: CPU, memory, disk, temperature) in every
 * report, so their bodies differ each time even when nothing else did. An ExtDataSpan says where that
 * value lies in a body the box sent: when its next body has the same bytes before and after the span,
 * only the span needs parsing, and everything else in its Report is what the last body said.
 *
 * Why that is exact: `findExtDataSpan` proves, by parsing the body with the span replaced by `0`, that
 * the span is precisely the value of the top-level `gateway_ext_data` (the one JSON.parse keeps). The
 * JSON grammar reads the bytes around a value the same whatever single value stands there, so a body
 * made of the same prefix, any one JSON value, and the same suffix parses to the same object with only
 * `gateway_ext_data` replaced. `extDataBetween` accepts a middle only if it parses alone as one object.
 */
export interface ExtDataSpan {
  /** Byte offset of the value's opening `{`: the bytes before it are the prefix. */
  start: number;
  /** Bytes after the value's closing `}`: the suffix. */
  suffixLength: number;
}

const KEY = Buffer.from('"gateway_ext_data"');
const ZERO = Buffer.from('0');

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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Where the top-level `gateway_ext_data` object lies in `body` (strict JSON, already parsed once),
 * or undefined when that cannot be proven cheaply: the key written more than once or with escapes, a
 * value that is not an object. Costs one more parse of the body; done only when the rest changed.
 */
export function findExtDataSpan(body: Buffer): ExtDataSpan | undefined {
  const key = body.indexOf(KEY);
  if (key === -1 || body.indexOf(KEY, key + 1) !== -1) return undefined;
  const colon = skipWhitespace(body, key + KEY.length);
  if (body[colon] !== COLON) return undefined;
  const start = skipWhitespace(body, colon + 1);
  if (body[start] !== OPEN) return undefined;
  const end = endOfObject(body, start);
  if (end === undefined) return undefined;
  let probe: unknown;
  try {
    probe = JSON.parse(Buffer.concat([body.subarray(0, start), ZERO, body.subarray(end)]).toString('utf8'));
  } catch {
    return undefined;
  }
  return isObject(probe) && probe.gateway_ext_data === 0 ? { start, suffixLength: body.length - end } : undefined;
}

/**
 * The `gateway_ext_data` of `body`, parsed and as text, when it equals `previous` (whose span is `span`)
 * outside the span and the middle is one JSON object in valid UTF-8; otherwise undefined (read the body whole).
 */
export function extDataBetween(previous: Buffer, span: ExtDataSpan, body: Buffer): { value: Record<string, unknown>; text: string } | undefined {
  const end = body.length - span.suffixLength;
  if (end <= span.start) return undefined;
  if (body.compare(previous, 0, span.start, 0, span.start) !== 0) return undefined;
  if (body.compare(previous, previous.length - span.suffixLength, previous.length, end, body.length) !== 0) return undefined;
  const middle = body.subarray(span.start, end);
  if (!isUtf8(middle)) return undefined;
  const text = middle.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isObject(value) ? { value, text } : undefined;
}
