import { sql } from 'drizzle-orm';
import { bigint, bigserial, check, index, integer, jsonb, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { timestamptz } from './columns';
import { boxConfigChanges, boxes } from './schema';

// Onboarding and fleet-wide changes: media devices an operator asked a box to add or delete (shown
// as requested until a report reflects them), and rollouts of settings over many boxes.

/** What a media device request asked the box to do (its `addmediadevice` or `deletemediadevice`). */
export const MEDIA_DEVICE_ACTIONS = ['add', 'delete'] as const;
export type MediaDeviceAction = (typeof MEDIA_DEVICE_ACTIONS)[number];

/**
 * A media device the box accepted to add or delete, kept so that reads can show it as requested until
 * the box's reports reflect it. The call itself (and every refused one) is in `box_config_changes`.
 */
export const mediaDeviceRequests = pgTable(
  'media_device_requests',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    boxId: integer('box_id')
      .notNull()
      .references(() => boxes.id, { onDelete: 'cascade' }),
    action: text('action').$type<MediaDeviceAction>().notNull(),
    /** The box's `media_device_id` for the device (as it answered, for an add). */
    mediaDeviceId: text('media_device_id').notNull(),
    name: text('name'),
    type: text('type'),
    url: text('url'),
    permissionId: text('permission_id'),
    /** The audit row of the call. */
    changeId: bigint('change_id', { mode: 'number' })
      .notNull()
      .references(() => boxConfigChanges.id, { onDelete: 'cascade' }),
    requestedBy: text('requested_by'),
    /** When the box answered that it took the request. */
    requestedAt: timestamptz('requested_at').notNull(),
  },
  (t) => [
    index('media_device_requests_box_idx').on(t.boxId, t.id),
    check('media_device_requests_action_check', sql`${t.action} in ('add', 'delete')`),
  ],
);

/** `running` and `paused` are open; `cancelled` and `completed` are final. */
export const ROLLOUT_STATES = ['running', 'paused', 'cancelled', 'completed'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** A rollout's settings applied to many boxes, each through the audited configureBox path. */
export const rollouts = pgTable(
  'rollouts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    state: text('state').$type<RolloutState>().notNull(),
    /** The configureBox input every box gets (monitorUrl, reportPeriodSeconds, settings). */
    settings: jsonb('settings').$type<Record<string, unknown>>().notNull(),
    /** How the boxes were chosen (ids or a filter), as asked; the boxes themselves are its targets. */
    selection: jsonb('selection').$type<Record<string, unknown>>().notNull(),
    /** Most box calls under way at once. */
    concurrency: integer('concurrency').notNull(),
    /** Failures (since it started or was last resumed) that pause it. */
    failureThreshold: integer('failure_threshold').notNull(),
    /** Failures counted when it was last resumed: the threshold counts those after. */
    failuresAtResume: integer('failures_at_resume').notNull().default(0),
    /** Why it is paused: `failure_threshold` or `operator`; null when not paused. */
    pausedReason: text('paused_reason'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    createdBy: text('created_by'),
    updatedAt: timestamptz('updated_at').notNull().defaultNow(),
    finishedAt: timestamptz('finished_at'),
  },
  (t) => [
    index('rollouts_open_idx').on(t.id).where(sql`${t.state} in ('running', 'paused')`),
    check('rollouts_state_check', sql`${t.state} in ('running', 'paused', 'cancelled', 'completed')`),
    check('rollouts_limits_check', sql`${t.concurrency} >= 1 and ${t.failureThreshold} >= 1`),
  ],
);

/** `pending` waits its turn; `running` is being called; the rest are final. */
export const ROLLOUT_TARGET_STATES = ['pending', 'running', 'applied', 'failed', 'cancelled'] as const;
export type RolloutTargetState = (typeof ROLLOUT_TARGET_STATES)[number];

/** One box of a rollout and what its call did. */
export const rolloutTargets = pgTable(
  'rollout_targets',
  {
    rolloutId: bigint('rollout_id', { mode: 'number' })
      .notNull()
      .references(() => rollouts.id, { onDelete: 'cascade' }),
    boxId: integer('box_id')
      .notNull()
      .references(() => boxes.id, { onDelete: 'cascade' }),
    /** The order boxes are called in. */
    position: integer('position').notNull(),
    state: text('state').$type<RolloutTargetState>().notNull().default('pending'),
    /** configureBox's outcome kind (applied, rejected, unreachable, timed_out, bad_answer, address_refused, invalid). */
    outcome: text('outcome'),
    /** The audit row of its call. */
    changeId: bigint('change_id', { mode: 'number' }).references(() => boxConfigChanges.id, { onDelete: 'set null' }),
    message: text('message'),
    attempts: integer('attempts').notNull().default(0),
    startedAt: timestamptz('started_at'),
    finishedAt: timestamptz('finished_at'),
  },
  (t) => [
    primaryKey({ columns: [t.rolloutId, t.boxId] }),
    index('rollout_targets_state_idx').on(t.rolloutId, t.state, t.position),
    // The runner's every round looks for targets under way (few, or none) across all rollouts.
    index('rollout_targets_running_idx').on(t.rolloutId, t.boxId).where(sql`${t.state} = 'running'`),
    check('rollout_targets_state_check', sql`${t.state} in ('pending', 'running', 'applied', 'failed', 'cancelled')`),
  ],
);
