import { ALERT_RULE_KINDS, ALERT_SEVERITIES, DEVICE_TYPES, type AlertRule, type AlertRuleKind, type AlertSeverity, type DeviceType } from '../db/schema';
import { HEALTH_FIGURE_SOURCES, type HealthFigure } from '../models/health-figures';
import { AlertRequestError } from './errors';

/** A new rule as the API gives it (database ids, the database's lower-case enum values). */
export interface AlertRuleInput {
  name: string;
  description?: string | null;
  kind: AlertRuleKind;
  severity: AlertSeverity;
  enabled?: boolean | null;
  forSeconds?: number | null;
  flapChanges?: number | null;
  flapWindowSeconds?: number | null;
  healthFigure?: HealthFigure | null;
  healthThreshold?: number | null;
  boxIds?: number[] | null;
  deviceTypes?: DeviceType[] | null;
  repeatIntervalSeconds?: number | null;
  channelIds?: number[] | null;
}

/**
 * A change to a rule: an absent field stays. null clears what can be cleared (description, boxIds =
 * every box, deviceTypes = every type, repeatIntervalSeconds = no repeat, channelIds = no channel)
 * and leaves the rest (name, severity, enabled, durations, figure) as they are. The kind never changes.
 */
export type AlertRulePatch = Partial<Omit<AlertRuleInput, 'kind'>>;

/** A rule's columns as they will be written, once checked. */
export interface RuleDefinition {
  name: string;
  description: string | null;
  kind: AlertRuleKind;
  severity: AlertSeverity;
  enabled: boolean;
  forSeconds: number;
  flapChanges: number | null;
  flapWindowSeconds: number | null;
  healthFigure: HealthFigure | null;
  healthThreshold: number | null;
  boxIds: number[] | null;
  deviceTypes: DeviceType[] | null;
  repeatIntervalSeconds: number | null;
}

export const LIMITS = {
  name: 200,
  description: 2000,
  forSeconds: { min: 0, max: 2_592_000 }, // 30 days
  flapChanges: { min: 2, max: 10_000 },
  flapWindowSeconds: { min: 10, max: 86_400 },
  repeatIntervalSeconds: { min: 60, max: 604_800 }, // a minute .. a week
  scopeEntries: 10_000,
} as const;

const DEVICE_KINDS: readonly AlertRuleKind[] = ['device_offline', 'device_flapping'];

/** The rule as stored, as a definition (a patch starts from it). */
export function definitionOf(rule: AlertRule): RuleDefinition {
  const { name, description, kind, severity, enabled, forSeconds, flapChanges, flapWindowSeconds, healthFigure, healthThreshold, boxIds, deviceTypes, repeatIntervalSeconds } = rule;
  return { name, description, kind, severity, enabled, forSeconds, flapChanges, flapWindowSeconds, healthFigure, healthThreshold, boxIds, deviceTypes, repeatIntervalSeconds };
}

function wholeNumber(value: number, argument: string, { min, max }: { min: number; max: number }, unit: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new AlertRequestError(`${argument.split('.').pop()} must be a whole number of ${unit} from ${min} to ${max}; got ${value}.`, argument, 'BAD_USER_INPUT', { min, max });
  }
  return value;
}

/** Distinct ids or types, or null for "all"; an empty list is refused (null says "all"). */
function scopeList<T>(list: readonly T[] | null, argument: string, what: string): T[] | null {
  if (list === null) return null;
  if (list.length === 0) throw new AlertRequestError(`${argument.split('.').pop()} is empty: give null for every ${what}, or at least one.`, argument);
  if (list.length > LIMITS.scopeEntries) throw new AlertRequestError(`${argument.split('.').pop()} lists more than ${LIMITS.scopeEntries} entries.`, argument);
  return [...new Set(list)];
}

/**
 * Merges `change` into `base` (a new rule's defaults, or the stored rule) and checks the result,
 * naming the field at fault as `<prefix>.<field>`. Throws AlertRequestError; reads nothing.
 */
export function checkDefinition(base: RuleDefinition, change: AlertRulePatch, prefix: 'input' | 'patch'): RuleDefinition {
  const arg = (field: string) => `${prefix}.${field}`;
  const keep = <T>(value: T | null | undefined, current: T): T => (value === undefined || value === null ? current : value);
  const clear = <T>(value: T | null | undefined, current: T | null): T | null => (value === undefined ? current : value);
  const rule: RuleDefinition = {
    name: keep(change.name, base.name),
    description: clear(change.description, base.description),
    kind: base.kind,
    severity: keep(change.severity, base.severity),
    enabled: keep(change.enabled, base.enabled),
    forSeconds: keep(change.forSeconds, base.forSeconds),
    flapChanges: keep(change.flapChanges, base.flapChanges),
    flapWindowSeconds: keep(change.flapWindowSeconds, base.flapWindowSeconds),
    healthFigure: keep(change.healthFigure, base.healthFigure),
    healthThreshold: keep(change.healthThreshold, base.healthThreshold),
    boxIds: clear(change.boxIds, base.boxIds),
    deviceTypes: clear(change.deviceTypes, base.deviceTypes),
    repeatIntervalSeconds: clear(change.repeatIntervalSeconds, base.repeatIntervalSeconds),
  };
  if (!ALERT_RULE_KINDS.includes(rule.kind)) throw new AlertRequestError(`Unknown rule kind ${String(rule.kind)}.`, arg('kind'));
  rule.name = rule.name.trim();
  if (rule.name.length < 1 || rule.name.length > LIMITS.name) throw new AlertRequestError(`name must be 1 to ${LIMITS.name} characters (not only spaces).`, arg('name'));
  if (rule.description !== null && rule.description.length > LIMITS.description) {
    throw new AlertRequestError(`description must be at most ${LIMITS.description} characters.`, arg('description'));
  }
  if (!ALERT_SEVERITIES.includes(rule.severity)) throw new AlertRequestError(`Unknown severity ${String(rule.severity)}.`, arg('severity'));
  wholeNumber(rule.forSeconds, arg('forSeconds'), LIMITS.forSeconds, 'seconds');
  if (rule.repeatIntervalSeconds !== null) wholeNumber(rule.repeatIntervalSeconds, arg('repeatIntervalSeconds'), LIMITS.repeatIntervalSeconds, 'seconds');

  const flapping = rule.kind === 'device_flapping';
  const health = rule.kind === 'box_health';
  const notFor = (field: keyof AlertRulePatch, what: string) => {
    throw new AlertRequestError(`${field} applies only to ${what} rules, not to ${rule.kind.toUpperCase()}.`, arg(field));
  };
  // Flapping counts changes in a window; a for-duration on top would only delay it by a fixed time.
  if (flapping && rule.forSeconds !== 0) throw new AlertRequestError('forSeconds does not apply to DEVICE_FLAPPING rules (the window is the duration); leave it 0.', arg('forSeconds'));
  if (flapping) {
    if (rule.flapChanges === null) throw new AlertRequestError('flapChanges is required for DEVICE_FLAPPING rules.', arg('flapChanges'));
    if (rule.flapWindowSeconds === null) throw new AlertRequestError('flapWindowSeconds is required for DEVICE_FLAPPING rules.', arg('flapWindowSeconds'));
    wholeNumber(rule.flapChanges, arg('flapChanges'), LIMITS.flapChanges, 'changes');
    wholeNumber(rule.flapWindowSeconds, arg('flapWindowSeconds'), LIMITS.flapWindowSeconds, 'seconds');
  } else {
    if (rule.flapChanges !== null) notFor('flapChanges', 'DEVICE_FLAPPING');
    if (rule.flapWindowSeconds !== null) notFor('flapWindowSeconds', 'DEVICE_FLAPPING');
  }
  if (health) {
    if (rule.healthFigure === null) throw new AlertRequestError('healthFigure is required for BOX_HEALTH rules.', arg('healthFigure'));
    const source = HEALTH_FIGURE_SOURCES[rule.healthFigure];
    if (!source) throw new AlertRequestError(`Unknown health figure ${String(rule.healthFigure)}.`, arg('healthFigure'), 'BAD_USER_INPUT', { figures: Object.keys(HEALTH_FIGURE_SOURCES) });
    if (rule.healthThreshold === null) throw new AlertRequestError('healthThreshold is required for BOX_HEALTH rules.', arg('healthThreshold'));
    if (!Number.isFinite(rule.healthThreshold) || rule.healthThreshold < source.min || rule.healthThreshold > source.max) {
      throw new AlertRequestError(
        `healthThreshold for ${rule.healthFigure.toUpperCase()} must be from ${source.min} to ${source.max}; got ${rule.healthThreshold}.`,
        arg('healthThreshold'),
        'BAD_USER_INPUT',
        { min: source.min, max: source.max },
      );
    }
  } else {
    if (rule.healthFigure !== null) notFor('healthFigure', 'BOX_HEALTH');
    if (rule.healthThreshold !== null) notFor('healthThreshold', 'BOX_HEALTH');
  }
  rule.boxIds = scopeList(rule.boxIds, arg('boxIds'), 'box');
  if (rule.boxIds?.some((id) => !Number.isInteger(id) || id < 1 || id > 2_147_483_647)) throw new AlertRequestError('boxIds holds an id that names no box.', arg('boxIds'));
  rule.deviceTypes = scopeList(rule.deviceTypes, arg('deviceTypes'), 'device type');
  if (rule.deviceTypes !== null && !DEVICE_KINDS.includes(rule.kind)) notFor('deviceTypes', 'device (DEVICE_OFFLINE, DEVICE_FLAPPING)');
  if (rule.deviceTypes?.some((t) => !DEVICE_TYPES.includes(t))) throw new AlertRequestError(`deviceTypes may hold only ${DEVICE_TYPES.join(', ')}.`, arg('deviceTypes'));
  return rule;
}

/** A new rule's values before its input is merged in. */
export function newRuleBase(kind: AlertRuleKind, severity: AlertSeverity): RuleDefinition {
  return {
    name: '',
    description: null,
    kind,
    severity,
    enabled: true,
    forSeconds: 0,
    flapChanges: null,
    flapWindowSeconds: null,
    healthFigure: null,
    healthThreshold: null,
    boxIds: null,
    deviceTypes: null,
    repeatIntervalSeconds: null,
  };
}
