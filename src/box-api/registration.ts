import { MAX_BOXES_PER_ISSUE } from '../models/license-keys';
import { checkTarget } from './client';
import type { ConfigFieldError } from './config-keys';

/** The same bound as the ingest route's: a licence key longer than this is refused there too. */
const MAX_LICENSE_KEY_LENGTH = 256;
const MAX_NAME_LENGTH = 200;
/** Control characters and the like: nothing a box or an operator types into a key or a name. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * What an operator tells the gateway about a box (registerBox, updateBox). For the API fields, null
 * clears the operator's value (the box's report address and port 5555 apply again); absent leaves it.
 */
export interface BoxRegistrationInput {
  licenseKey?: string;
  name?: string | null;
  /** Address of the box's REST API: an IPv4 address, an IPv6 literal or a host name, without scheme or port. */
  apiAddress?: string | null;
  apiPort?: number | null;
}

/** Checks a registration or an update; an empty list means it can be stored. */
export function validateRegistration(input: BoxRegistrationInput): ConfigFieldError[] {
  const errors: ConfigFieldError[] = [];
  if (input.licenseKey !== undefined) {
    const key = input.licenseKey;
    if (key.trim() === '' || key !== key.trim() || UNPRINTABLE.test(key) || key.length > MAX_LICENSE_KEY_LENGTH) {
      errors.push({
        field: 'licenseKey',
        message: `The licence key must be 1 to ${MAX_LICENSE_KEY_LENGTH} printable characters without leading or trailing spaces, as the box reports it.`,
      });
    }
  }
  if (input.name != null && (input.name.trim() === '' || UNPRINTABLE.test(input.name) || input.name.length > MAX_NAME_LENGTH)) {
    errors.push({ field: 'name', message: `The name must be 1 to ${MAX_NAME_LENGTH} printable characters; pass null to clear it.` });
  }
  if (input.apiAddress != null) {
    const checked = checkTarget({ address: input.apiAddress, port: 1 });
    if ('kind' in checked) errors.push({ field: 'address', message: checked.message });
  }
  if (input.apiPort != null) {
    const checked = checkTarget({ address: '127.0.0.1', port: input.apiPort });
    if ('kind' in checked) errors.push({ field: 'apiPort', message: checked.message });
  }
  return errors;
}

/** `<prefix>1…<prefix>N`, the numbers zero-padded to N's width so the names sort in order; nulls without a prefix. */
export function issuedBoxNames(count: number, prefix: string | null | undefined): (string | null)[] {
  const width = String(count).length;
  return Array.from({ length: count }, (_, i) => (prefix == null ? null : `${prefix}${String(i + 1).padStart(width, '0')}`));
}

/** Checks a request to register `count` boxes with issued keys (registerBoxes, `npm run boxes -- issue`). */
export function validateIssue(count: number, namePrefix: string | null | undefined): ConfigFieldError[] {
  const errors: ConfigFieldError[] = [];
  const countOk = Number.isInteger(count) && count >= 1 && count <= MAX_BOXES_PER_ISSUE;
  if (!countOk) errors.push({ field: 'count', message: `The count must be from 1 to ${MAX_BOXES_PER_ISSUE}; issue more in several runs.` });
  if (namePrefix != null) {
    // The longest name made is the last one.
    const longest = issuedBoxNames(countOk ? count : 1, namePrefix).at(-1)!;
    if (validateRegistration({ name: longest }).length > 0) {
      errors.push({ field: 'namePrefix', message: `The name prefix with its number must be 1 to ${MAX_NAME_LENGTH} printable characters.` });
    }
  }
  return errors;
}
