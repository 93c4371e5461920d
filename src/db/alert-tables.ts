import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, check, doublePrecision, index, integer, jsonb, pgTable, primaryKey, serial, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { timestamptz } from './columns';
import type { DeviceType, HealthFigure } from './schema';

/** What an alert rule watches (see src/alerts/). */
export const ALERT_RULE_KINDS = ['device_offline', 'box_offline', 'device_flapping', 'box_health'] as const;
export type AlertRuleKind = (typeof ALERT_RULE_KINDS)[number];

export const ALERT_SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** `firing` and `acknowledged` are open; `resolved` is final. */
export const ALERT_STATES = ['firing', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/** Why an alert was resolved. */
export const ALERT_RESOLUTIONS = ['cleared', 'rule_changed', 'rule_disabled', 'rule_deleted', 'subject_removed'] as const;
export type AlertResolution = (typeof ALERT_RESOLUTIONS)[number];

/**
 * A condition the evaluator watches, for every subject in its scope. Kind-specific columns are set
 * for their kind only (checked). A deleted rule keeps its row (`deleted_at`) for its alerts' history.
 */
export const alertRules = pgTable(
  'alert_rules',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    kind: text('kind').$type<AlertRuleKind>().notNull(),
    severity: text('severity').$type<AlertSeverity>().notNull(),
    enabled: boolean('enabled').notNull().default(true),
    /** device_offline, box_offline, box_health: how long the condition must hold before the alert fires. */
    forSeconds: integer('for_seconds').notNull().default(0),
    /** device_flapping: at least this many status changes within `flap_window_seconds`. */
    flapChanges: integer('flap_changes'),
    flapWindowSeconds: integer('flap_window_seconds'),
    /** box_health: the figure (cpu, memory, disk, temperature) and the threshold it must be above. */
    healthFigure: text('health_figure').$type<HealthFigure>(),
    healthThreshold: doublePrecision('health_threshold'),
    /** Scope: these boxes only (null: every box); these device types only (null: every type). */
    boxIds: integer('box_ids').array(),
    deviceTypes: text('device_types').array().$type<DeviceType[]>(),
    /** Notify again while an alert of this rule still fires unacknowledged, this often; null: never. */
    repeatIntervalSeconds: integer('repeat_interval_seconds'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    createdBy: text('created_by'),
    updatedAt: timestamptz('updated_at').notNull().defaultNow(),
    updatedBy: text('updated_by'),
    deletedAt: timestamptz('deleted_at'),
  },
  (t) => [
    check('alert_rules_kind_check', sql`${t.kind} in ('device_offline', 'box_offline', 'device_flapping', 'box_health')`),
    check('alert_rules_severity_check', sql`${t.severity} in ('critical', 'major', 'minor', 'warning', 'info')`),
    check('alert_rules_for_check', sql`${t.forSeconds} >= 0`),
    check(
      'alert_rules_flapping_check',
      sql`(${t.kind} = 'device_flapping') = (${t.flapChanges} is not null and ${t.flapWindowSeconds} is not null)`,
    ),
    check(
      'alert_rules_health_check',
      sql`(${t.kind} = 'box_health') = coalesce(${t.healthFigure} in ('cpu', 'memory', 'disk', 'temperature') and ${t.healthThreshold} is not null, false)`,
    ),
  ],
);

/**
 * Where alerts are sent: a URL POSTed a signed JSON body. The secret signs (HMAC-SHA256); it is shown
 * once when made and never returned by the API.
 */
export const webhookChannels = pgTable('webhook_channels', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  url: text('url').notNull(),
  secret: text('secret').notNull(),
  enabled: boolean('enabled').notNull().default(true),
  /** Also send a notification when an alert is acknowledged (firing and resolving always are). */
  notifyAcknowledged: boolean('notify_acknowledged').notNull().default(false),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  createdBy: text('created_by'),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

/** Which channels a rule's alerts go to. */
export const alertRuleChannels = pgTable(
  'alert_rule_channels',
  {
    ruleId: integer('rule_id')
      .notNull()
      .references(() => alertRules.id, { onDelete: 'cascade' }),
    channelId: integer('channel_id')
      .notNull()
      .references(() => webhookChannels.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ name: 'alert_rule_channels_pkey', columns: [t.ruleId, t.channelId] }), index('alert_rule_channels_channel_idx').on(t.channelId)],
);

/**
 * One alert: a rule's condition held for a subject (a box, or a device with its box). At most one
 * open (`firing` or `acknowledged`) alert per rule and subject, by the partial unique index, whichever
 * replica writes. No foreign key to boxes or devices: an alert outlives a deleted box, as history.
 */
export const alerts = pgTable(
  'alerts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ruleId: integer('rule_id')
      .notNull()
      .references(() => alertRules.id),
    /** `box:<id>` or `device:<id>`: what the alert is about, one key for both kinds. */
    subject: text('subject').notNull(),
    boxId: integer('box_id').notNull(),
    deviceId: integer('device_id'),
    state: text('state').$type<AlertState>().notNull(),
    /** The rule's severity while the alert is open. */
    severity: text('severity').$type<AlertSeverity>().notNull(),
    /** The value that fired it: seconds offline, status changes in the window, or the health figure. */
    value: doublePrecision('value'),
    /** When the condition began to hold. */
    conditionSince: timestamptz('condition_since').notNull(),
    /** When the alert became due: condition_since + the rule's for_seconds (flapping: when counted). */
    firesAt: timestamptz('fires_at').notNull(),
    /** When the evaluator committed it (firesAt, or later when the evaluator was late or down). */
    firedAt: timestamptz('fired_at').notNull(),
    acknowledgedAt: timestamptz('acknowledged_at'),
    acknowledgedBy: text('acknowledged_by'),
    acknowledgeComment: text('acknowledge_comment'),
    resolvedAt: timestamptz('resolved_at'),
    resolution: text('resolution').$type<AlertResolution>(),
    /** When to notify again while it fires (the rule's repeat interval); null: no repeat due. */
    nextRepeatAt: timestamptz('next_repeat_at'),
    updatedAt: timestamptz('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('alerts_open_key').on(t.ruleId, t.subject).where(sql`${t.state} <> 'resolved'`),
    index('alerts_state_idx').on(t.state, t.id),
    index('alerts_box_idx').on(t.boxId, t.id),
    index('alerts_device_idx').on(t.deviceId, t.id),
    index('alerts_rule_idx').on(t.ruleId, t.id),
    index('alerts_fired_at_idx').on(t.firedAt, t.id),
    index('alerts_repeat_idx').on(t.nextRepeatAt).where(sql`${t.state} = 'firing' and ${t.nextRepeatAt} is not null`),
    check('alerts_state_check', sql`${t.state} in ('firing', 'acknowledged', 'resolved')`),
    check('alerts_resolved_check', sql`(${t.state} = 'resolved') = (${t.resolvedAt} is not null)`),
  ],
);

/** Alert change kinds in alert_changes (and the notification kinds, with `repeat`). */
export const ALERT_CHANGE_KINDS = ['fired', 'acknowledged', 'resolved'] as const;
export type AlertChangeKind = (typeof ALERT_CHANGE_KINDS)[number];

/**
 * Every state change of every alert, in commit order: `alertChanged` subscribers resume from its id
 * (ids commit in order under ALERTS_LOCK, as status event ids do under EVENTS_LOCK).
 */
export const alertChanges = pgTable(
  'alert_changes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    alertId: bigint('alert_id', { mode: 'number' })
      .notNull()
      .references(() => alerts.id, { onDelete: 'cascade' }),
    kind: text('kind').$type<AlertChangeKind>().notNull(),
    at: timestamptz('at').notNull(),
  },
  (t) => [index('alert_changes_alert_idx').on(t.alertId, t.id), check('alert_changes_kind_check', sql`${t.kind} in ('fired', 'acknowledged', 'resolved')`)],
);

/**
 * A condition that holds but not yet for its rule's `for_seconds`, when no table already says since
 * when it holds (box_health: the figure is only in the last report). Kept in Postgres so that an
 * evaluator that takes over after a crash fires it at the right time.
 */
export const alertPending = pgTable(
  'alert_pending',
  {
    ruleId: integer('rule_id')
      .notNull()
      .references(() => alertRules.id, { onDelete: 'cascade' }),
    subject: text('subject').notNull(),
    since: timestamptz('since').notNull(),
  },
  (t) => [primaryKey({ name: 'alert_pending_pkey', columns: [t.ruleId, t.subject] })],
);

export const NOTIFICATION_KINDS = ['fired', 'acknowledged', 'resolved', 'repeat'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export const NOTIFICATION_STATUSES = ['pending', 'delivered', 'dead'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/**
 * The outbox: one webhook to send, written in the transaction that changed the alert. Deliverers on
 * any replica claim due rows (FOR UPDATE SKIP LOCKED) with a lease (`lease_until`); a deliverer that
 * dies lets its lease lapse and another sends again, with the same idempotency key.
 */
export const alertNotifications = pgTable(
  'alert_notifications',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    alertId: bigint('alert_id', { mode: 'number' })
      .notNull()
      .references(() => alerts.id, { onDelete: 'cascade' }),
    channelId: integer('channel_id')
      .notNull()
      .references(() => webhookChannels.id, { onDelete: 'cascade' }),
    kind: text('kind').$type<NotificationKind>().notNull(),
    /** Sent as the `Idempotency-Key` header and in the body; the same on every attempt. */
    idempotencyKey: uuid('idempotency_key').notNull().defaultRandom(),
    /** The JSON body, as of the change (built when written, so a retry sends the same bytes' content). */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status').$type<NotificationStatus>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamptz('next_attempt_at').notNull().defaultNow(),
    /** While a deliverer sends it; after this another may claim it. */
    leaseUntil: timestamptz('lease_until'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    deliveredAt: timestamptz('delivered_at'),
    lastError: text('last_error'),
  },
  (t) => [
    uniqueIndex('alert_notifications_idempotency_key').on(t.idempotencyKey),
    index('alert_notifications_due_idx').on(t.nextAttemptAt, t.id).where(sql`${t.status} = 'pending'`),
    index('alert_notifications_alert_channel_idx').on(t.alertId, t.channelId, t.id),
    index('alert_notifications_channel_idx').on(t.channelId, t.id),
    check('alert_notifications_kind_check', sql`${t.kind} in ('fired', 'acknowledged', 'resolved', 'repeat')`),
    check('alert_notifications_status_check', sql`${t.status} in ('pending', 'delivered', 'dead')`),
  ],
);

/** Outcomes of one webhook attempt. */
export const DELIVERY_OUTCOMES = ['delivered', 'http_error', 'redirect', 'timed_out', 'unreachable', 'refused', 'too_large'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** Every attempt to send a notification: what happened, how long it took. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    notificationId: bigint('notification_id', { mode: 'number' })
      .notNull()
      .references(() => alertNotifications.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    startedAt: timestamptz('started_at').notNull(),
    outcome: text('outcome').$type<DeliveryOutcome>().notNull(),
    httpStatus: integer('http_status'),
    latencyMs: integer('latency_ms').notNull(),
    error: text('error'),
  },
  (t) => [index('webhook_attempts_notification_idx').on(t.notificationId, t.id)],
);

export type AlertRule = typeof alertRules.$inferSelect;
export type Alert = typeof alerts.$inferSelect;
export type WebhookChannel = typeof webhookChannels.$inferSelect;
export type AlertNotification = typeof alertNotifications.$inferSelect;
export type WebhookAttempt = typeof webhookAttempts.$inferSelect;
