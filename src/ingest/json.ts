import JSON5 from 'json5';
import { ReportError } from './errors';

/** Deepest nesting of a report body; deeper is refused. */
export const MAX_JSON_DEPTH = 32;

/**
 * Parses a report body. Strict JSON first (the fast path); then JSON5, because the vendor's own
 * examples carry comments, trailing commas and Python-style single quotes.
 */
export function parseReportJson(text: string): { value: unknown; lenient: boolean } {
  try {
    return { value: JSON.parse(text), lenient: false };
  } catch (strictError) {
    try {
      return { value: JSON5.parse(text), lenient: true };
    } catch {
      const reason = strictError instanceof Error ? strictError.message : String(strictError);
      throw new ReportError(400, 'INVALID_JSON', `The body is not valid JSON: ${reason}`);
    }
  }
}

/**
 * Strict JSON text can only produce a NUL or a surrogate through a `\u` escape (raw control
 * characters are not JSON, and decoding the bytes never yields a lone surrogate), so text without
 * such escapes needs no cleaning: the common case skips walking the report.
 */
export function mayHoldUnstorableText(text: string): boolean {
  return /\\u(?:0000|[dD][89a-fA-F])/.test(text);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Postgres text and jsonb refuse NUL characters and unpaired surrogates; JSON allows both. */
export function storableString(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * Returns `value` made storable as jsonb (copying only what changes; strings are left alone when
 * `fixStrings` is false) and refuses nesting deeper than Postgres or a reader should have to follow.
 */
export function storableJson(value: unknown, fixStrings = true, depth = 0): unknown {
  if (typeof value === 'string') return fixStrings ? storableString(value) : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_JSON_DEPTH) {
    throw new ReportError(400, 'INVALID_REPORT', `The report is nested deeper than ${MAX_JSON_DEPTH} levels.`);
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = storableJson(value[i], fixStrings, depth + 1);
      if (item !== value[i]) (copy ??= value.slice())[i] = item;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  const entries = Object.entries(value);
  for (const [key, item] of entries) {
    const safeKey = fixStrings ? storableString(key) : key;
    const safeItem = storableJson(item, fixStrings, depth + 1);
    if (safeKey !== key || safeItem !== item) {
      copy ??= Object.fromEntries(entries);
      if (safeKey !== key) delete copy[key];
      copy[safeKey] = safeItem;
    }
  }
  return copy ?? value;
}
