import { hasUnstorableText } from '../models/storable-text';

/** Where the box POSTs its device status reports. */
export const MEDIA_DEVICE_MONITOR_URL = 'MEDIA_DEVICE_MONITOR_URL';
/** Seconds between two device status reports. `PEROID` is the vendor's spelling: the box knows no other. */
export const MEDIA_DEVICE_MONITOR_REPORT_PEROID = 'MEDIA_DEVICE_MONITOR_REPORT_PEROID';

/** A value the box's `setconfigs` takes: flat, no objects or lists. */
export type ConfigValue = string | number | boolean;
/** The `config_dict` of a `setconfigs` call. */
export type ConfigDict = Record<string, ConfigValue>;

/** The report period an operator may set, in seconds. */
export const REPORT_PERIOD_RANGE = { min: 1, max: 3600 } as const;
/** Names of box settings: `GATE_PASS_MODE`, `MATCH_THRESHOLD`, ... */
export const CONFIG_KEY_PATTERN = /^[A-Z][A-Z0-9_]*$/;
const MAX_SETTINGS = 100;
const MAX_KEY_LENGTH = 128;
const MAX_STRING_LENGTH = 2048;

/** What an operator asks configureBox to set; null and absent both mean "leave as it is". */
export interface BoxConfigInput {
  monitorUrl?: string | null;
  reportPeriodSeconds?: number | null;
  /** Other box settings by their box names; values are strings, numbers or booleans. */
  settings?: Readonly<Record<string, unknown>> | null;
}

/** One refused field, for a GraphQL `InvalidConfig` error. `field` is `monitorUrl`, `settings.GATE_PASS_MODE`, or `input`. */
export interface ConfigFieldError {
  field: string;
  message: string;
}

const TYPED_KEYS: Readonly<Record<string, string>> = {
  [MEDIA_DEVICE_MONITOR_URL]: 'monitorUrl',
  [MEDIA_DEVICE_MONITOR_REPORT_PEROID]: 'reportPeriodSeconds',
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function monitorUrlError(url: unknown): string | null {
  if (typeof url !== 'string') return 'must be a string.';
  // The URL parser silently drops tabs, newlines and outer spaces; the box would not.
  if (url.length === 0 || url.length > MAX_STRING_LENGTH || /[\s\u0000-\u001f\u007f]/.test(url) || hasUnstorableText(url)) {
    return `must be an absolute http or https URL of 1 to ${MAX_STRING_LENGTH} characters without spaces.`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL; give an absolute one such as http://gateway.example:4000/DeviceStatus.';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `must use http or https, not ${parsed.protocol.slice(0, -1)}.`;
  if (!parsed.hostname) return 'has no host.';
  // It is stored on the box and in the audit trail in clear.
  if (parsed.username || parsed.password) return 'must not carry a user name or password.';
  return null;
}

function settingValueError(value: unknown): string | null {
  if (typeof value === 'string') {
    if (value.length > MAX_STRING_LENGTH) return `is longer than ${MAX_STRING_LENGTH} characters.`;
    // No box setting holds one, and the box's echo of it could not be compared with what was sent.
    return hasUnstorableText(value) ? 'holds a NUL character or an unpaired UTF-16 surrogate; no box setting takes one.' : null;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? null : 'must be a finite number.';
  if (typeof value === 'boolean') return null;
  return 'must be a string, a number or a boolean; objects, lists and null are not box settings.';
}

/** Checks what an operator wants to set on a box; an empty list means `toConfigDict` will take it. */
export function validateConfigInput(input: BoxConfigInput): ConfigFieldError[] {
  const errors: ConfigFieldError[] = [];
  const { monitorUrl, reportPeriodSeconds, settings } = input;
  let count = 0;

  if (monitorUrl != null) {
    count++;
    const problem = monitorUrlError(monitorUrl);
    if (problem) errors.push({ field: 'monitorUrl', message: `The monitor URL ${problem}` });
  }
  if (reportPeriodSeconds != null) {
    count++;
    const { min, max } = REPORT_PERIOD_RANGE;
    if (typeof reportPeriodSeconds !== 'number' || !Number.isInteger(reportPeriodSeconds) || reportPeriodSeconds < min || reportPeriodSeconds > max) {
      errors.push({ field: 'reportPeriodSeconds', message: `The report period must be a whole number of seconds from ${min} to ${max}.` });
    }
  }
  if (settings != null) {
    if (!isPlainObject(settings)) {
      errors.push({ field: 'settings', message: 'Settings must be a JSON object of box setting names to values.' });
    } else {
      const keys = Object.keys(settings);
      count += keys.length;
      if (keys.length > MAX_SETTINGS) errors.push({ field: 'settings', message: `At most ${MAX_SETTINGS} settings can be set at once.` });
      for (const key of keys) {
        const field = `settings.${key}`;
        // Own keys only: `__proto__` or `constructor` would otherwise find Object.prototype's.
        const typed = Object.hasOwn(TYPED_KEYS, key) ? TYPED_KEYS[key] : undefined;
        if (typed) {
          errors.push({ field, message: `Set ${key} through ${typed}, where it is checked.` });
        } else if (key.length > MAX_KEY_LENGTH || !CONFIG_KEY_PATTERN.test(key)) {
          errors.push({ field, message: `${JSON.stringify(key)} is not a box setting name: upper-case letters, digits and _ , starting with a letter.` });
        } else {
          const problem = settingValueError(settings[key]);
          if (problem) errors.push({ field, message: `The value of ${key} ${problem}` });
        }
      }
    }
  }
  if (count === 0 && errors.length === 0) errors.push({ field: 'input', message: 'Nothing to set: give monitorUrl, reportPeriodSeconds or settings.' });
  return errors;
}

/** The `config_dict` for a valid input, typed fields under the box's names. Throws TypeError on an invalid input. */
export function toConfigDict(input: BoxConfigInput): ConfigDict {
  const errors = validateConfigInput(input);
  if (errors.length > 0) throw new TypeError(`Invalid box config: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
  const dict: ConfigDict = {};
  if (input.monitorUrl != null) dict[MEDIA_DEVICE_MONITOR_URL] = input.monitorUrl;
  if (input.reportPeriodSeconds != null) dict[MEDIA_DEVICE_MONITOR_REPORT_PEROID] = input.reportPeriodSeconds;
  for (const [key, value] of Object.entries(input.settings ?? {})) dict[key] = value as ConfigValue;
  return dict;
}
