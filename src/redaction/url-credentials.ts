// Camera URLs carry credentials (rtsp://admin:Hunter2@10.0.0.9/live, ...?user=admin&password=...), and
// they reach other values too: a device reported without `media_device_id` has its URL as its id. A
// role that may not read URLs (see `readsCredentials` in auth/roles.ts) is shown every such value with
// the credentials masked, and searches and orders by the masked text only, so neither a result nor a
// count can test a guess. The rules are written once and run both here (values shown, log lines) and
// in Postgres (search, sort: models/redacted-sql.ts). This file imports nothing: the logger uses it.

/** What a masked credential reads as. */
export const MASK = '***';

export interface Rule {
  /** A regular expression both JavaScript and Postgres (ARE) read alike; matched case-insensitively. */
  pattern: string;
  /** The replacement, with `$1` for the first group. */
  replacement: string;
}

const SENSITIVE_NAME = '(pass|pwd|token|secret|key|auth|sig|credential|session|user|login)';

/**
 * The rules, for words ending at any character of `stop`: a value's words end at white space; a log
 * line's (JSON) also at a quote, so a mask never runs across two fields of the line.
 */
const rules = (stop: string): readonly Rule[] => [
  // User-info after a scheme: everything up to the last `@` of the word, since passwords hold `@` and `/`.
  { pattern: `([a-z][a-z0-9+.-]*://)[^${stop}]*@`, replacement: `$1${MASK}@` },
  // User-info without a scheme: `admin:Hunter2@10.0.0.9`.
  { pattern: `(^|[${stop}])[^${stop}:@/]+:(?!//)[^${stop}]*@`, replacement: `$1${MASK}@` },
  // Password-, token-, secret-, key-like query (or fragment) parameters.
  { pattern: `([?&;#][^=&;#${stop}]*${SENSITIVE_NAME}[^=&;#${stop}]*=)[^&;#${stop}]*`, replacement: `$1${MASK}` },
  // Secrets this gateway issues (API tokens, ingest secrets in a monitor URL): cut to their prefix.
  { pattern: '(fg[ti]_[a-z0-9_-]{4})[a-z0-9_-]{39}', replacement: `$1${MASK}` },
];

/** The rules for a value's words (they end at white space). */
export const CREDENTIAL_RULES = rules('\\s');
/** Every rule needs one of these: most names and addresses have none and are returned untouched, at the cost of one test. */
const MAY_HOLD_CREDENTIALS = /[@=]|fg[ti]_/i;

const compile = (list: readonly Rule[]) => list.map(({ pattern, replacement }) => ({ regex: new RegExp(pattern, 'gi'), replacement }));
const JS_RULES = compile(CREDENTIAL_RULES);
const LOG_RULES = compile(rules('\\s"'));

/** A JSON log line with URL credentials masked inside its strings: no log line holds a camera password. */
export function redactLogLine(line: string): string {
  if (!line.includes('@') && !line.includes('=')) return line;
  let result = line;
  for (const { regex, replacement } of LOG_RULES) result = result.replace(regex, replacement);
  return result;
}

/** `text` with the credentials of any URL in it masked; text without any is returned as it is. */
export function redactUrlCredentials(text: string): string;
export function redactUrlCredentials(text: string | null): string | null;
export function redactUrlCredentials(text: string | null): string | null {
  if (text === null || !MAY_HOLD_CREDENTIALS.test(text)) return text;
  let result = text;
  for (const { regex, replacement } of JS_RULES) result = result.replace(regex, replacement);
  return result;
}

/** Every string inside a JSON value redacted (keys too), for JSON a box sent about itself. */
export function redactJsonCredentials(value: unknown): unknown {
  if (typeof value === 'string') return redactUrlCredentials(value);
  if (Array.isArray(value)) return value.map(redactJsonCredentials);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [redactUrlCredentials(key), redactJsonCredentials(inner)]));
  }
  return value;
}
