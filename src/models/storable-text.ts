// Postgres text and jsonb cannot hold NUL, and jsonb refuses a lone UTF-16 surrogate (`\ud800`);
// node-pg would turn a lone surrogate in a text parameter into U+FFFD without a word. Text that
// comes from outside (a box's answer) is made storable here: each such character is written as its
// JSON escape (`\u0000`, `\ud800`), six visible characters, and everything else is kept as it is.

/** NUL, or a surrogate that is not half of a pair. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** Whether `text` holds NUL or a lone surrogate. */
export function hasUnstorableText(text: string): boolean {
  UNSTORABLE.lastIndex = 0;
  return UNSTORABLE.test(text);
}

/** `text` with NUL and lone surrogates written as `\u0000`, `\udXXX`; the same string when it has none. */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, escape);
}

/** `storableText` for nullable columns. */
export function storableTextOrNull(text: string | null): string | null {
  return text === null ? null : storableText(text);
}

/**
 * A JSON value with every string in it (keys too) made storable. Objects are rebuilt with own
 * properties only, so a `__proto__` key stays a key.
 */
export function storableJson(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(storableJson);
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(copy, storableText(key), { value: storableJson(item), enumerable: true, writable: true, configurable: true });
    }
    return copy;
  }
  return value;
}
