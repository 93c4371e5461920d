import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  check,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  serial,
  text,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import { timestamptz } from './columns';

/** Statuses a device can have; `unknown` stores a value outside the documented ones. */
export const DEVICE_STATUSES = ['online', 'offline', 'unknown'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export const DEVICE_TYPES = ['photo', 'rtsp', 'file', 'gb28181', 'unknown'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

export const BOX_STATUSES = ['online', 'offline'] as const;
export type BoxStatus = (typeof BOX_STATUSES)[number];

/** `new`: `mq_license_key` + `media_devices`; `old`: `dev_sno` + `sub_devices` of `ep_*` fields. */
export const REPORT_FORMATS = ['new', 'old'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** A SOPHON SE AI box, identified by the licence key the management platform gave it. */
export const boxes = pgTable(
  'boxes',
  {
    id: serial('id').primaryKey(),
    licenseKey: text('license_key').notNull(),
    name: text('name'),
    /** Source address of its last report: the default address of the box's own REST API. */
    address: text('address'),
    reportFormat: text('report_format').$type<ReportFormat>(),
    status: text('status').$type<BoxStatus>().notNull().default('online'),
    statusSince: timestamptz('status_since').notNull().defaultNow(),
    firstReportAt: timestamptz('first_report_at'),
    lastReportAt: timestamptz('last_report_at'),
    reportCount: bigint('report_count', { mode: 'number' }).notNull().default(0),
    /** Smoothed interval between its reports, for offline detection when no period is configured. */
    observedPeriodSeconds: real('observed_period_seconds'),
    /** Older boxes' own fields: gateway_ip, gateway_name, gateway_status, gateway_sn, gateway_port. */
    gateway: jsonb('gateway').$type<Record<string, unknown>>(),
    /** Older boxes' `gateway_ext_data`: versions, MAC, cpu/memory/disk usage, temperature. */
    gatewayExtData: jsonb('gateway_ext_data').$type<Record<string, unknown>>(),
    /** Hash of the last report body (the body itself is in box_last_reports). */
    lastReportHash: text('last_report_hash'),
    /** Hash of the normalized device list; equal means no device can have changed. */
    devicesHash: text('devices_hash'),
    /** Where the box's own REST API listens, when an operator set it; else `address`. */
    apiAddress: text('api_address'),
    /** Port of the box's REST API, when an operator set it; else 5555. */
    apiPort: integer('api_port'),
    /** MEDIA_DEVICE_MONITOR_URL last applied through configureBox. */
    monitorUrl: text('monitor_url'),
    /** MEDIA_DEVICE_MONITOR_REPORT_PEROID last applied through configureBox (the vendor's spelling). */
    reportPeriodSeconds: integer('report_period_seconds'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    /** Set by removeBox when its history is kept; a removed box is hidden from queries. */
    removedAt: timestamptz('removed_at'),
    /** The hardware serial (`device_sn`) its licence key is bound to: at its first login, or by rebindBoxHardware. */
    hardwareSerial: text('hardware_serial'),
    hardwareBoundAt: timestamptz('hardware_bound_at'),
    /** Its last successful login (box login route), and the address it came from. */
    lastLoginAt: timestamptz('last_login_at'),
    lastLoginAddress: text('last_login_address'),
  },
  (t) => [
    uniqueIndex('boxes_license_key_key').on(t.licenseKey),
    index('boxes_status_idx').on(t.status, t.id),
    check('boxes_status_check', sql`${t.status} in ('online', 'offline')`),
  ],
);

/**
 * Each box's last report as received, for debugging (Box.lastReport). Apart from `boxes` so that the
 * box row, updated on every report, stays narrow enough for HOT updates; written only when the body
 * changed, so it was received at the box's `last_report_at`. `body` is the JSON text as the box sent
 * it (`body::jsonb` to query into it): text, so storing it costs no parse, and uncompressed inline up
 * to 8 KB (migration 0003).
 */
export const boxLastReports = pgTable('box_last_reports', {
  boxId: integer('box_id')
    .primaryKey()
    .references(() => boxes.id, { onDelete: 'cascade' }),
  body: text('body').notNull(),
});

/** A capture device as its box reports it. `externalId` is the box's id for it. */
export const devices = pgTable(
  'devices',
  {
    id: serial('id').primaryKey(),
    boxId: integer('box_id')
      .notNull()
      .references(() => boxes.id, { onDelete: 'cascade' }),
    /** `media_device_id` (newer; its URL when the box omits it) or `ep_id` (older). */
    externalId: text('external_id').notNull(),
    name: text('name'),
    ip: text('ip'),
    type: text('type').$type<DeviceType>().notNull(),
    url: text('url'),
    /** `permission_id` (newer) or `ep_location` (older): the group the device is bound to. */
    permissionId: text('permission_id'),
    status: text('status').$type<DeviceStatus>().notNull(),
    statusSince: timestamptz('status_since').notNull(),
    /** The raw status or type value when it was outside the documented ones. */
    reportedStatus: text('reported_status'),
    reportedType: text('reported_type'),
    firstSeenAt: timestamptz('first_seen_at').notNull(),
    /** When the row last changed; while listed, the device was last seen at its box's last report. */
    updatedAt: timestamptz('updated_at').notNull(),
    /** Set while the device is missing from its box's list. */
    removedAt: timestamptz('removed_at'),
  },
  (t) => [
    uniqueIndex('devices_box_external_id_key').on(t.boxId, t.externalId),
    index('devices_status_idx').on(t.status, t.id),
    // GraphQL orderings: devices by status age, by name (keyset pagination).
    index('devices_status_since_idx').on(t.status, t.statusSince, t.id),
    index('devices_name_idx').on(sql`coalesce(${t.name}, '')`, t.id),
    index('devices_type_idx').on(t.type, t.id),
    // Devices gone from their box's list (alert rules watch them).
    index('devices_removed_idx').on(t.removedAt, t.id).where(sql`${t.removedAt} is not null`),
    check('devices_status_check', sql`${t.status} in ('online', 'offline', 'unknown')`),
    check('devices_type_check', sql`${t.type} in ('photo', 'rtsp', 'file', 'gb28181', 'unknown')`),
  ],
);

/**
 * One row per change: a device first seen (`from_status` null), online<->offline, gone from its
 * box's list (`to_status` = 'removed') and back; box events have `device_id` null.
 * The id is the cursor subscribers resume from.
 *
 * Partitioned by month of `at` (src/history/partitions.ts); retention drops whole months. Hence the
 * primary key (id, at), and no foreign keys: detaching a partition that has them would lock `boxes`
 * and `devices`, and so ingest. Deleting a box deletes its history in the same statement (box-admin).
 * drizzle-kit cannot write `partition by`: migration 0007 creates the table by hand.
 */
export const statusEvents = pgTable(
  'status_events',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    boxId: integer('box_id').notNull(),
    deviceId: integer('device_id'),
    fromStatus: text('from_status'),
    toStatus: text('to_status').notNull(),
    at: timestamptz('at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'status_events_pkey', columns: [t.id, t.at] }),
    index('status_events_box_idx').on(t.boxId, t.id),
    index('status_events_device_idx').on(t.deviceId, t.id),
    index('status_events_at_idx').on(t.at, t.id),
    // A device's or box's history over a time range.
    index('status_events_device_at_idx').on(t.deviceId, t.at, t.id),
    index('status_events_box_at_idx').on(t.boxId, t.at, t.id),
  ],
);

/** The health figures older boxes send in `gateway_ext_data`, each kept as min/max/sum/count per hour. */
export const HEALTH_FIGURES = ['cpu', 'memory', 'disk', 'temperature'] as const;
export type HealthFigure = (typeof HEALTH_FIGURES)[number];

/**
 * Box health over time: one row per box per hour, folded from every report of that hour that carried
 * health figures (min, max, sum and count of each, so an average over any number of hours is exact).
 * Partitioned by month of `hour` and dropped with the status history.
 */
export const boxHealth = pgTable(
  'box_health',
  {
    boxId: integer('box_id').notNull(),
    /** The hour's start (UTC). */
    hour: timestamptz('hour').notNull(),
    /** Reports folded into the row. */
    reports: integer('reports').notNull(),
    // Per figure: min, max, sum, and how many reports of the hour carried it (0: a gap, not a zero).
    cpuMin: real('cpu_min'),
    cpuMax: real('cpu_max'),
    cpuSum: doublePrecision('cpu_sum'),
    cpuCount: integer('cpu_count').notNull().default(0),
    memoryMin: real('memory_min'),
    memoryMax: real('memory_max'),
    memorySum: doublePrecision('memory_sum'),
    memoryCount: integer('memory_count').notNull().default(0),
    diskMin: real('disk_min'),
    diskMax: real('disk_max'),
    diskSum: doublePrecision('disk_sum'),
    diskCount: integer('disk_count').notNull().default(0),
    temperatureMin: real('temperature_min'),
    temperatureMax: real('temperature_max'),
    temperatureSum: doublePrecision('temperature_sum'),
    temperatureCount: integer('temperature_count').notNull().default(0),
  },
  (t) => [primaryKey({ name: 'box_health_pkey', columns: [t.boxId, t.hour] })],
);

/**
 * What retention has dropped from each partitioned history table: everything before `dropped_before`,
 * and (status_events) every id up to `dropped_through_id`, so a cursor from before it is told so.
 */
export const historyHorizon = pgTable('history_horizon', {
  tableName: text('table_name').primaryKey(),
  droppedBefore: timestamptz('dropped_before').notNull(),
  droppedThroughId: bigint('dropped_through_id', { mode: 'number' }),
});

/** Outcomes of a configureBox attempt, as kept in the audit trail. */
export const CONFIG_OUTCOMES = ['applied', 'rejected', 'unreachable', 'timed_out', 'bad_answer', 'invalid', 'refused'] as const;
export type ConfigOutcome = (typeof CONFIG_OUTCOMES)[number];

/** What an audit row records: a call to the box's REST API, or an operator's change of its hardware binding. */
export const CONFIG_ACTIONS = ['setconfigs', 'addmediadevice', 'deletemediadevice', 'rebind_hardware'] as const;
export type ConfigAction = (typeof CONFIG_ACTIONS)[number];

/**
 * Every attempt to change a box through its REST API (settings, media devices) and every change of its
 * hardware binding: who, what, and what it answered.
 */
export const boxConfigChanges = pgTable(
  'box_config_changes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    boxId: integer('box_id')
      .notNull()
      .references(() => boxes.id, { onDelete: 'cascade' }),
    requestedBy: text('requested_by'),
    requestedAt: timestamptz('requested_at').notNull(),
    /** The `config_dict` sent. */
    request: jsonb('request').$type<Record<string, unknown>>().notNull(),
    /** The address and port called. */
    target: text('target'),
    outcome: text('outcome').$type<ConfigOutcome>().notNull(),
    httpStatus: integer('http_status'),
    /** The box's answer, parsed when JSON (bounded in size). */
    response: jsonb('response').$type<unknown>(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    durationMs: integer('duration_ms').notNull(),
    action: text('action').$type<ConfigAction>().notNull().default('setconfigs'),
    /** The rollout this call was part of (no foreign key: a rollout's audit rows outlive it). */
    rolloutId: bigint('rollout_id', { mode: 'number' }),
  },
  (t) => [
    index('box_config_changes_box_idx').on(t.boxId, t.id),
    check('box_config_changes_action_check', sql`${t.action} in ('setconfigs', 'addmediadevice', 'deletemediadevice', 'rebind_hardware')`),
  ],
);

/** Roles of API tokens, each allowing what the one before allows and more. */
export const API_ROLES = ['viewer', 'operator', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** SHA-256 digests of secrets; the secrets themselves are shown once and never stored. */
const digest = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * API tokens for GraphQL and websockets. Only the SHA-256 of a token is kept: tokens are 256 random
 * bits, so a plain digest is as strong as a slow password hash and costs a microsecond per request.
 */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    role: text('role').$type<ApiRole>().notNull(),
    tokenHash: digest('token_hash').notNull(),
    /** The first characters of the token (`fgt_` and 4 more), so people can tell tokens apart. */
    prefix: text('prefix').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    createdBy: text('created_by'),
    /** Roughly: updated at most once a minute per process. */
    lastUsedAt: timestamptz('last_used_at'),
    revokedAt: timestamptz('revoked_at'),
    revokedBy: text('revoked_by'),
  },
  (t) => [
    uniqueIndex('api_tokens_hash_idx').on(t.tokenHash),
    check('api_tokens_role_check', sql`${t.role} in ('viewer', 'operator', 'admin')`),
  ],
);

/**
 * Per-box ingest secrets for the `token` ingest policy: the box posts to `/DeviceStatus/<secret>`.
 * A box may hold two while pointBoxAtGateway changes its URL: the one it used and the one sent.
 */
export const boxIngestTokens = pgTable(
  'box_ingest_tokens',
  {
    tokenHash: digest('token_hash').primaryKey(),
    boxId: integer('box_id')
      .notNull()
      .references(() => boxes.id, { onDelete: 'cascade' }),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [index('box_ingest_tokens_box_idx').on(t.boxId)],
);

// The alert tables (rules, alerts, their change log, webhook channels and the outbox) are in
// alert-tables.ts, exported from here with the rest.
export * from './alert-tables';
// Media device requests and rollouts: onboarding-tables.ts.
export * from './onboarding-tables';

export type Box = typeof boxes.$inferSelect;
export type BoxConfigChange = typeof boxConfigChanges.$inferSelect;
export type Device = typeof devices.$inferSelect;
export type StatusEvent = typeof statusEvents.$inferSelect;
export type BoxHealth = typeof boxHealth.$inferSelect;
export type ApiToken = typeof apiTokens.$inferSelect;
