import type pg from 'pg';
import type { Logger } from '../log';
import { boxApiLocation, recordConfigChange, type AppliedMonitorSettings, type BoxApiLocation, type ConfigChangeRow, type NewConfigChange } from '../models/box-config';
import type { BoxRow } from '../models/boxes';
import { redactIngestSecrets } from '../models/ingest-tokens';
import {
  checkTarget,
  DEFAULT_BOX_API_PORT,
  formatTarget,
  getConfigs,
  setConfigs,
  type BoxCallOptions,
  type BoxTarget,
} from './client';
import type { BadAnswerReason, BoxAddressRefused, BoxBadAnswer, BoxTimedOut, BoxUnreachable, UnreachableReason } from './box-answer';
import type { AddressRefusal } from './box-networks';
import {
  CONFIG_KEY_PATTERN,
  MEDIA_DEVICE_MONITOR_REPORT_PEROID,
  MEDIA_DEVICE_MONITOR_URL,
  toConfigDict,
  validateConfigInput,
  type BoxConfigInput,
  type ConfigFieldError,
} from './config-keys';
import { failureRecord } from './audit-fields';
import type { SerialQueue } from './serial-queue';

// configureBox and boxConfig without GraphQL: find where the box's API is, check the input, call
// the box, read back after a failure, keep what the box now holds on its row, and audit the attempt.

export interface BoxConfigDeps {
  pool: pg.Pool;
  log: Logger;
  /** Deadline and answer size limit of each call to a box. */
  call: BoxCallOptions;
  /** Calls that change a box run one at a time per box id, in arrival order. */
  queue: SerialQueue<number>;
}

/**
 * What the box said its settings were after a call that failed: which of the keys sent hold the
 * value asked for. The box applies key by key and reports the first failure, so after an error
 * some keys may have taken effect.
 */
export interface ReadBack {
  /** The values it listed for the keys sent; null when they could not be read. */
  values: Record<string, unknown> | null;
  /** Keys sent that now hold the value asked for. */
  appliedKeys: string[];
  /** Keys sent that hold another value, or that the box did not list. */
  unappliedKeys: string[];
  /** Why the values could not be read; null when they were. */
  failure: string | null;
}

interface Attempted {
  /** The audit row of the attempt. */
  change: ConfigChangeRow;
}

export type ConfigureOutcome =
  | (Attempted & {
      kind: 'applied';
      box: BoxRow;
      /** The values the box echoed. */
      values: Record<string, unknown>;
      /** What the box row now keeps, for the two monitor settings this call set and the box confirmed. */
      monitor: AppliedMonitorSettings;
      /** Keys sent that neither the echo nor a read-back showed holding the value sent. */
      unconfirmedKeys: string[];
      /** The read-back of the keys the echo left out or answered otherwise; null when the echo confirmed every key. */
      readBack: ReadBack | null;
    })
  | (Attempted & { kind: 'rejected'; code: string; message: string; httpStatus: number; keysSent: number; readBack: ReadBack })
  | (Attempted & Omit<BoxUnreachable, 'durationMs'> & { target: string; readBack: ReadBack | null })
  | (Attempted & Omit<BoxTimedOut, 'durationMs'> & { target: string })
  | (Attempted & Omit<BoxBadAnswer, 'durationMs'> & { target: string; readBack: ReadBack })
  | (Attempted & Omit<BoxAddressRefused, 'durationMs'> & { target: string })
  | { kind: 'invalid'; problems: ConfigFieldError[]; change: ConfigChangeRow | null };

export interface ConfigureRequest {
  boxId: number;
  input: BoxConfigInput;
  /** Who asked: the API token's name and id; null when unknown. */
  requestedBy: string | null;
  /** The rollout this call is part of, kept on its audit row. */
  rolloutId?: number;
}

const UNKNOWN_BOX = (boxId: number): ConfigFieldError => ({
  field: 'boxId',
  message: `There is no box with this id (Box ${boxId}): it never reported, was never registered, or was removed.`,
});

/** Where the box's REST API is: the address an operator set, else its reports' source; the port set, else 5555. */
export function boxTarget(box: Pick<BoxApiLocation, 'address' | 'apiAddress' | 'apiPort'>): BoxTarget | ConfigFieldError {
  const address = box.apiAddress ?? box.address;
  if (!address) {
    return { field: 'apiAddress', message: 'The box has no known address: it has not reported yet. Set its address with updateBox.' };
  }
  const target = { address, port: box.apiPort ?? DEFAULT_BOX_API_PORT };
  const checked = checkTarget(target);
  if ('kind' in checked) return { field: checked.field === 'port' ? 'apiPort' : 'apiAddress', message: checked.message };
  return target;
}

/** The keys an invalid input asked for, under the box's names, for the audit trail. */
function askedFor(input: BoxConfigInput): Record<string, unknown> {
  const asked: Record<string, unknown> = {};
  if (input.monitorUrl != null) asked[MEDIA_DEVICE_MONITOR_URL] = input.monitorUrl;
  if (input.reportPeriodSeconds != null) asked[MEDIA_DEVICE_MONITOR_REPORT_PEROID] = input.reportPeriodSeconds;
  if (input.settings != null) {
    // defineProperty, not assignment: a `__proto__` key is kept as the key it is, not taken as a prototype.
    if (typeof input.settings === 'object' && !Array.isArray(input.settings)) {
      for (const [key, value] of Object.entries(input.settings)) Object.defineProperty(asked, key, { value, enumerable: true, writable: true, configurable: true });
    } else asked.settings = input.settings;
  }
  return asked;
}

/** Whether the box holds the value sent: it may answer 30 for "30", "true" for true, "0.80" for 0.8. */
export function sameConfigValue(sent: unknown, held: unknown): boolean {
  if (sent === held) return true;
  const scalar = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  if (!scalar(sent) || !scalar(held)) return false;
  if (String(sent) === String(held)) return true;
  const numeric = (v: unknown) => typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)));
  return numeric(sent) && numeric(held) && Number(sent) === Number(held);
}

/**
 * The monitor settings to keep on the box row: the values sent, for the keys the box confirmed
 * holding them (an echo or a read-back equal to what was sent). Nothing else is ever kept there.
 */
function monitorSettings(sent: Record<string, unknown>, confirmed: readonly string[]): AppliedMonitorSettings {
  const settings: AppliedMonitorSettings = {};
  if (Object.hasOwn(sent, MEDIA_DEVICE_MONITOR_URL) && confirmed.includes(MEDIA_DEVICE_MONITOR_URL)) {
    settings.monitorUrl = String(sent[MEDIA_DEVICE_MONITOR_URL]);
  }
  if (Object.hasOwn(sent, MEDIA_DEVICE_MONITOR_REPORT_PEROID) && confirmed.includes(MEDIA_DEVICE_MONITOR_REPORT_PEROID)) {
    settings.reportPeriodSeconds = sent[MEDIA_DEVICE_MONITOR_REPORT_PEROID] as number;
  }
  return settings;
}

/** Why each key of `keys` stays unconfirmed after a success, for the audit row's error message. */
function unconfirmedMessage(keys: readonly string[], echo: Record<string, unknown>, back: ReadBack): string {
  const shown = (value: unknown) => (typeof value === 'string' ? `"${value}"` : String(value));
  const why = (key: string) => {
    const echoed = Object.hasOwn(echo, key) ? `echoed ${shown(echo[key])}` : 'left out of the echo';
    if (back.values === null) return `${key}: ${echoed}; ${back.failure ?? 'not read back'}`;
    const read = Object.hasOwn(back.values, key) ? `read back as ${shown(back.values[key])}` : 'not listed by getconfigs';
    return `${key}: ${echoed}, ${read}`;
  };
  return `Not confirmed: ${keys.map(why).join('; ')}.`;
}

async function readBack(target: BoxTarget, sent: Record<string, unknown>, options: BoxCallOptions): Promise<ReadBack> {
  const keys = Object.keys(sent);
  const outcome = await getConfigs(target, keys, options);
  if (outcome.kind !== 'applied') {
    const why =
      outcome.kind === 'rejected'
        ? `the box refused getconfigs: ${outcome.code}${outcome.message ? ` (${outcome.message})` : ''}`
        : outcome.kind === 'timed_out'
          ? `getconfigs got no answer within ${outcome.timeoutMs} ms`
          : outcome.message;
    return { values: null, appliedKeys: [], unappliedKeys: [], failure: `Could not read the settings back: ${why}` };
  }
  const appliedKeys = keys.filter((key) => Object.hasOwn(outcome.values, key) && sameConfigValue(sent[key], outcome.values[key]));
  return { values: outcome.values, appliedKeys, unappliedKeys: keys.filter((key) => !appliedKeys.includes(key)), failure: null };
}

/**
 * Sets `request.input` on the box through its `setconfigs`. Never throws for what the box or the
 * network does (only for a database fault). Runs after any earlier call for the same box.
 */
export function configureBox(deps: BoxConfigDeps, request: ConfigureRequest): Promise<ConfigureOutcome> {
  return deps.queue.run(request.boxId, () => configureNow(deps, request));
}

async function configureNow(deps: BoxConfigDeps, { boxId, input, requestedBy, rolloutId }: ConfigureRequest): Promise<ConfigureOutcome> {
  const box = await boxApiLocation(deps.pool, boxId);
  if (!box) return { kind: 'invalid', problems: [UNKNOWN_BOX(boxId)], change: null };

  const problems = validateConfigInput(input);
  const target = boxTarget(box);
  if (!('address' in target)) problems.push(target);
  // Ingest secrets in a monitor URL (INGEST_POLICY=token) are kept out of the database in clear.
  const audit = (fields: Omit<NewConfigChange, 'boxId' | 'requestedBy'>, applied?: AppliedMonitorSettings) =>
    recordConfigChange(deps.pool, redactIngestSecrets({ boxId, requestedBy, rolloutId, ...fields }), applied && redactIngestSecrets(applied));

  if (problems.length > 0 || !('address' in target)) {
    const recorded = await audit({
      requestedAt: new Date(),
      request: askedFor(input),
      target: null,
      outcome: 'invalid',
      httpStatus: null,
      response: null,
      errorCode: 'INVALID_INPUT',
      errorMessage: problems.map((p) => `${p.field}: ${p.message}`).join(' '),
      durationMs: 0,
    });
    return { kind: 'invalid', problems, change: recorded?.change ?? null };
  }

  const sent = toConfigDict(input);
  const where = formatTarget(target);
  const requestedAt = new Date();
  const outcome = await setConfigs(target, sent, deps.call);
  const base = { requestedAt, request: sent, target: where, durationMs: outcome.durationMs };
  const gone = (): ConfigureOutcome => ({ kind: 'invalid', problems: [{ field: 'boxId', message: 'The box was removed while it was being configured.' }], change: null });

  switch (outcome.kind) {
    case 'applied': {
      // A 2xx without an error object is success, but only the keys it echoes with the value sent are
      // confirmed by it; the others (a firmware that ignores a key leaves it out) are read back.
      const echo = outcome.values;
      const keys = Object.keys(sent);
      const echoed = keys.filter((key) => Object.hasOwn(echo, key) && sameConfigValue(sent[key], echo[key]));
      const toRead = keys.filter((key) => !echoed.includes(key));
      const back = toRead.length > 0 ? await readBack(target, Object.fromEntries(toRead.map((key) => [key, sent[key]])), deps.call) : null;
      const confirmed = [...echoed, ...(back?.appliedKeys ?? [])];
      const unconfirmedKeys = keys.filter((key) => !confirmed.includes(key));
      const monitor = monitorSettings(sent, confirmed);
      const recorded = await audit(
        {
          ...base,
          outcome: 'applied',
          httpStatus: outcome.httpStatus,
          response: echo,
          errorCode: unconfirmedKeys.length > 0 ? 'UNCONFIRMED' : null,
          errorMessage: unconfirmedKeys.length > 0 && back ? unconfirmedMessage(unconfirmedKeys, echo, back) : null,
        },
        monitor,
      );
      if (!recorded) return gone();
      return { kind: 'applied', box: recorded.box, values: echo, monitor, unconfirmedKeys, readBack: back, change: recorded.change };
    }
    case 'rejected': {
      const back = await readBack(target, sent, deps.call);
      const recorded = await audit({ ...base, ...failureRecord(outcome) }, monitorSettings(sent, back.appliedKeys));
      if (!recorded) return gone();
      const { code, message, httpStatus } = outcome;
      return { kind: 'rejected', code, message, httpStatus, keysSent: Object.keys(sent).length, readBack: back, change: recorded.change };
    }
    case 'unreachable': {
      // A connection that broke after the request went out may have delivered it.
      const back = outcome.requestSent ? await readBack(target, sent, deps.call) : null;
      const recorded = await audit({ ...base, ...failureRecord(outcome) }, monitorSettings(sent, back?.appliedKeys ?? []));
      if (!recorded) return gone();
      const { reason, message, requestSent } = outcome;
      return { kind: 'unreachable', reason, message, requestSent, target: where, readBack: back, change: recorded.change };
    }
    case 'timed_out': {
      // No read-back: a box that did not answer in time would most likely make the caller wait as long again.
      const recorded = await audit({ ...base, ...failureRecord(outcome) });
      if (!recorded) return gone();
      return { kind: 'timed_out', timeoutMs: outcome.timeoutMs, requestSent: outcome.requestSent, target: where, change: recorded.change };
    }
    case 'bad_answer': {
      const back = await readBack(target, sent, deps.call);
      // Not the box protocol: its content is not kept (the message says its type and size).
      const recorded = await audit({ ...base, ...failureRecord(outcome) }, monitorSettings(sent, back.appliedKeys));
      if (!recorded) return gone();
      const { reason, httpStatus, message, contentType, bodyBytes } = outcome;
      return { kind: 'bad_answer', reason, httpStatus, message, contentType, bodyBytes, target: where, readBack: back, change: recorded.change };
    }
    case 'address_refused': {
      const recorded = await audit({ ...base, ...failureRecord(outcome) });
      if (!recorded) return gone();
      const { refusal, address, message } = outcome;
      return { kind: 'address_refused', refusal, address, message, target: where, change: recorded.change };
    }
    case 'invalid_target':
      // boxTarget checked the address and port already.
      throw new Error(`unreachable: target ${where} refused after checking: ${outcome.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading settings: nothing changes, so nothing is queued or audited.

export type ReadConfigOutcome =
  | { kind: 'read'; box: BoxApiLocation; values: Record<string, unknown>; missingKeys: string[] }
  | { kind: 'rejected'; code: string; message: string; httpStatus: number }
  | { kind: 'unreachable'; reason: UnreachableReason; message: string; requestSent: boolean; target: string }
  | { kind: 'timed_out'; timeoutMs: number; requestSent: boolean; target: string }
  | { kind: 'bad_answer'; reason: BadAnswerReason; httpStatus: number; message: string; contentType: string | null; bodyBytes: number; target: string }
  | { kind: 'address_refused'; refusal: AddressRefusal; address: string; message: string; target: string }
  | { kind: 'invalid'; problems: ConfigFieldError[] };

const MAX_READ_KEYS = 100;

/** The box's settings through its `getconfigs`: `keys`, or all it lists when undefined. */
export async function readBoxConfig(deps: BoxConfigDeps, boxId: number, keys: readonly string[] | undefined): Promise<ReadConfigOutcome> {
  const box = await boxApiLocation(deps.pool, boxId);
  if (!box) return { kind: 'invalid', problems: [UNKNOWN_BOX(boxId)] };
  const problems: ConfigFieldError[] = [];
  if (keys !== undefined) {
    if (keys.length === 0) problems.push({ field: 'keys', message: 'Give at least one key, or leave keys out to read every setting.' });
    if (keys.length > MAX_READ_KEYS) problems.push({ field: 'keys', message: `At most ${MAX_READ_KEYS} keys can be read at once.` });
    for (const key of keys) {
      if (key.length > 128 || !CONFIG_KEY_PATTERN.test(key)) {
        problems.push({ field: `keys.${key}`, message: `${JSON.stringify(key)} is not a box setting name: upper-case letters, digits and _ , starting with a letter.` });
      }
    }
  }
  const target = boxTarget(box);
  if (!('address' in target)) problems.push(target);
  if (problems.length > 0 || !('address' in target)) return { kind: 'invalid', problems };

  const where = formatTarget(target);
  const outcome = await getConfigs(target, keys, deps.call);
  switch (outcome.kind) {
    case 'applied': {
      const missingKeys = keys ? [...new Set(keys)].filter((key) => !Object.hasOwn(outcome.values, key)) : [];
      return { kind: 'read', box, values: outcome.values, missingKeys };
    }
    case 'rejected':
      return { kind: 'rejected', code: outcome.code, message: outcome.message, httpStatus: outcome.httpStatus };
    case 'unreachable':
      return { kind: 'unreachable', reason: outcome.reason, message: outcome.message, requestSent: outcome.requestSent, target: where };
    case 'timed_out':
      return { kind: 'timed_out', timeoutMs: outcome.timeoutMs, requestSent: outcome.requestSent, target: where };
    case 'bad_answer':
      return {
        kind: 'bad_answer',
        reason: outcome.reason,
        httpStatus: outcome.httpStatus,
        message: outcome.message,
        contentType: outcome.contentType,
        bodyBytes: outcome.bodyBytes,
        target: where,
      };
    case 'address_refused':
      return { kind: 'address_refused', refusal: outcome.refusal, address: outcome.address, message: outcome.message, target: where };
    case 'invalid_target':
      return { kind: 'invalid', problems: [{ field: outcome.field === 'port' ? 'apiPort' : 'apiAddress', message: outcome.message }] };
  }
}
