import type pg from 'pg';
import { validateConfigInput, type BoxConfigInput, type ConfigFieldError } from '../box-api/config-keys';
import { rollouts, rolloutTargets, type RolloutState, type RolloutTargetState } from '../db/schema';
import { fieldsOf, inTransaction, run, selectRows, sql, type Queryable, type SQL } from '../db/sql';
import { boxIdsMatchingQuery, type BoxFilter } from '../models/boxes';
import { and, oneOf, pagePerParentQuery, pageQuery, type Ordering, type PageWindow } from '../models/query-parts';

// Rollouts: one set of settings applied to many boxes. The rows are the whole state: a rollout and
// its targets (one per box, in the order they are called). Operators start, pause, resume and
// cancel here; ./runner.ts calls the boxes. Every change NOTIFYs ROLLOUTS_CHANNEL with the id, so
// the runner (on whichever replica holds it) and every replica's subscribers hear of it.

export const ROLLOUTS_CHANNEL = 'fleetgate_rollouts';

/** Most box calls of one rollout under way at once. */
export const CONCURRENCY_RANGE = { min: 1, max: 100, default: 10 } as const;

export interface RolloutRow {
  id: number;
  state: RolloutState;
  /** The configureBox input every target gets. */
  settings: BoxConfigInput;
  selection: Record<string, unknown>;
  concurrency: number;
  failureThreshold: number;
  failuresAtResume: number;
  pausedReason: 'failure_threshold' | 'operator' | null;
  createdAt: Date;
  createdBy: string | null;
  updatedAt: Date;
  finishedAt: Date | null;
}

export interface RolloutTargetRow {
  rolloutId: number;
  boxId: number;
  position: number;
  state: RolloutTargetState;
  outcome: string | null;
  changeId: number | null;
  message: string | null;
  attempts: number;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface RolloutProgress {
  total: number;
  pending: number;
  running: number;
  applied: number;
  failed: number;
  cancelled: number;
}

const ROLLOUT_FIELDS = fieldsOf(rollouts);
const TARGET_FIELDS = fieldsOf(rolloutTargets);

/** NOTIFY that rollout `id` changed; sent inside the transaction that changes it, so it goes out when that commits. */
export function notifyRolloutChanged(db: Queryable, id: number): Promise<unknown> {
  return run(db, sql`select pg_notify(${ROLLOUTS_CHANNEL}, ${String(id)})`, 'rollout_notify');
}

// ---------------------------------------------------------------------------------------------
// Starting one

export interface NewRollout {
  /** The boxes, in the order to call them; exactly one of boxIds and filter. */
  boxIds?: readonly number[] | null;
  filter?: BoxFilter | null;
  settings: BoxConfigInput;
  /** Default 10. */
  concurrency?: number | null;
  /** Default 10% of the targets (rounded up), at least 1. */
  failureThreshold?: number | null;
  createdBy: string | null;
}

export type StartOutcome =
  | { kind: 'started'; rollout: RolloutRow }
  | { kind: 'invalid'; problems: ConfigFieldError[] }
  /** Ids in `boxIds` that are no box (never registered, or removed). */
  | { kind: 'unknown_boxes'; boxIds: number[] };

/** Thrown inside the transaction to roll it back with an answer. */
class Refused {
  constructor(readonly outcome: StartOutcome) {}
}

function checkLimits(input: NewRollout): ConfigFieldError[] {
  const problems: ConfigFieldError[] = [];
  if ((input.boxIds == null) === (input.filter == null)) {
    problems.push({ field: 'boxIds', message: 'Give exactly one of boxIds and filter: the boxes by id, or the boxes a BoxFilter matches.' });
  } else if (input.boxIds && input.boxIds.length === 0) {
    problems.push({ field: 'boxIds', message: 'boxIds is empty: give at least one Box id.' });
  }
  for (const problem of validateConfigInput(input.settings)) problems.push({ field: `settings.${problem.field}`, message: problem.message });
  const { min, max } = CONCURRENCY_RANGE;
  if (input.concurrency != null && (!Number.isInteger(input.concurrency) || input.concurrency < min || input.concurrency > max)) {
    problems.push({ field: 'concurrency', message: `concurrency must be a whole number from ${min} to ${max} (box calls under way at once); it was ${input.concurrency}.` });
  }
  if (input.failureThreshold != null && (!Number.isInteger(input.failureThreshold) || input.failureThreshold < 1)) {
    problems.push({
      field: 'failureThreshold',
      message: `failureThreshold must be a whole number of at least 1 (failures that pause the rollout); it was ${input.failureThreshold}. Leave it out for 10% of the boxes.`,
    });
  }
  return problems;
}

/** The default failure threshold: 10% of the targets, rounded up, at least 1. */
export function defaultFailureThreshold(targets: number): number {
  return Math.max(1, Math.ceil(targets / 10));
}

/**
 * Checks the input as configureBox would, resolves the boxes and records the rollout with one target
 * per box (positions in the order given, or by id for a filter) in one transaction: all or nothing.
 */
export async function startRollout(pool: pg.Pool, input: NewRollout): Promise<StartOutcome> {
  const problems = checkLimits(input);
  if (problems.length > 0) return { kind: 'invalid', problems };
  const boxIds = input.boxIds ? [...new Set(input.boxIds)] : null;
  const selection = boxIds ? { boxIds } : { filter: { ...input.filter } };
  const settings = { monitorUrl: input.settings.monitorUrl ?? null, reportPeriodSeconds: input.settings.reportPeriodSeconds ?? null, settings: input.settings.settings ?? null };
  try {
    return await inTransaction(pool, async (client) => {
      const [created] = await selectRows<{ id: number }>(
        client,
        sql`insert into rollouts (state, settings, selection, concurrency, failure_threshold, created_by)
            values ('running', ${JSON.stringify(settings)}::jsonb, ${JSON.stringify(selection)}::jsonb,
                    ${input.concurrency ?? CONCURRENCY_RANGE.default}, ${input.failureThreshold ?? 1}, ${input.createdBy})
            returning id`,
      );
      const id = created!.id;
      const chosen: SQL = boxIds
        ? sql`select b.id, u.ord from unnest(${sql.param(boxIds)}::int4[]) with ordinality as u(id, ord)
              join boxes b on b.id = u.id and b.removed_at is null`
        : sql`select m.id, row_number() over (order by m.id) as ord from (${boxIdsMatchingQuery(input.filter!)}) m`;
      const { rowCount } = await run(
        client,
        sql`insert into rollout_targets (rollout_id, box_id, position)
            select ${id}, c.id, row_number() over (order by c.ord) from (${chosen}) c`,
      );
      const targets = rowCount ?? 0;
      if (boxIds && targets < boxIds.length) {
        const known = await selectRows<{ boxId: number }>(client, sql`select box_id as "boxId" from rollout_targets where rollout_id = ${id}`);
        const found = new Set(known.map((row) => row.boxId));
        throw new Refused({ kind: 'unknown_boxes', boxIds: boxIds.filter((boxId) => !found.has(boxId)) });
      }
      if (targets === 0) {
        throw new Refused({ kind: 'invalid', problems: [{ field: 'filter', message: 'The filter matches no box: nothing to roll out. Check it with the boxes query.' }] });
      }
      if (input.failureThreshold == null) {
        await run(client, sql`update rollouts set failure_threshold = ${defaultFailureThreshold(targets)} where id = ${id}`);
      }
      await notifyRolloutChanged(client, id);
      const [rollout] = await selectRows<RolloutRow>(client, sql`select ${ROLLOUT_FIELDS} from rollouts where id = ${id}`);
      return { kind: 'started', rollout: rollout! } as const;
    });
  } catch (error) {
    if (error instanceof Refused) return error.outcome;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Pause, resume, cancel

export type CommandOutcome = { kind: 'done'; rollout: RolloutRow } | { kind: 'not_found' } | { kind: 'wrong_state'; rollout: RolloutRow };

/**
 * Runs `change` on the rollout's row, locked, when its state is one of `from`; NOTIFYs. The runner
 * re-reads the state before each call, so no call starts once this commits.
 */
async function command(pool: pg.Pool, id: number, from: readonly RolloutState[], change: (client: pg.PoolClient) => Promise<void>): Promise<CommandOutcome> {
  return inTransaction(pool, async (client) => {
    const [before] = await selectRows<RolloutRow>(client, sql`select ${ROLLOUT_FIELDS} from rollouts where id = ${id} for update`);
    if (!before) return { kind: 'not_found' } as const;
    if (!from.includes(before.state)) return { kind: 'wrong_state', rollout: before } as const;
    await change(client);
    await notifyRolloutChanged(client, id);
    const [after] = await selectRows<RolloutRow>(client, sql`select ${ROLLOUT_FIELDS} from rollouts where id = ${id}`);
    return { kind: 'done', rollout: after! } as const;
  });
}

/** An operator's pause: no new call starts; calls under way finish and are recorded. */
export function pauseRollout(pool: pg.Pool, id: number): Promise<CommandOutcome> {
  return command(pool, id, ['running'], async (client) => {
    await run(client, sql`update rollouts set state = 'paused', paused_reason = 'operator', updated_at = now() where id = ${id}`);
  });
}

/**
 * Continues a paused rollout; failures are counted afresh from now for the threshold. With
 * `retryFailed`, failed targets wait their turn again (their calls are in the audit trail still).
 */
export function resumeRollout(pool: pg.Pool, id: number, retryFailed: boolean): Promise<CommandOutcome> {
  return command(pool, id, ['paused'], async (client) => {
    if (retryFailed) {
      await run(
        client,
        sql`update rollout_targets set state = 'pending', outcome = null, message = null, change_id = null, started_at = null, finished_at = null
            where rollout_id = ${id} and state = 'failed'`,
      );
    }
    await run(
      client,
      sql`update rollouts set state = 'running', paused_reason = null, updated_at = now(),
            failures_at_resume = (select count(*) from rollout_targets where rollout_id = ${id} and state = 'failed')
          where id = ${id}`,
    );
  });
}

/** No new call starts; targets still pending are cancelled; calls under way finish and are recorded. */
export function cancelRollout(pool: pg.Pool, id: number): Promise<CommandOutcome> {
  return command(pool, id, ['running', 'paused'], async (client) => {
    await run(client, sql`update rollout_targets set state = 'cancelled', finished_at = now() where rollout_id = ${id} and state = 'pending'`);
    await run(client, sql`update rollouts set state = 'cancelled', paused_reason = null, updated_at = now(), finished_at = now() where id = ${id}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Reads

export function rolloutsByIds(pool: Queryable, ids: readonly number[]): Promise<RolloutRow[]> {
  return selectRows<RolloutRow>(pool, sql`select ${ROLLOUT_FIELDS} from rollouts where id = any(${sql.param(ids)}::int8[])`);
}

/** Newest first. */
export const ROLLOUT_ORDERING: Ordering = { key: null, id: sql`r.id`, idType: 'int8', descending: true };

function stateCondition(column: SQL, states: readonly string[] | undefined): SQL[] {
  return states ? [oneOf(column, states, 'text')] : [];
}

export function rolloutsPage(pool: pg.Pool, states: readonly RolloutState[] | undefined, window: PageWindow): Promise<RolloutRow[]> {
  return selectRows<RolloutRow>(
    pool,
    pageQuery({ columns: ROLLOUT_FIELDS, from: sql`rollouts r`, where: stateCondition(sql`r.state`, states), ordering: ROLLOUT_ORDERING, window }),
  );
}

export function countRolloutsQuery(states: readonly RolloutState[] | undefined): SQL {
  return sql`select count(*)::int as count from rollouts r where ${and([sql`true`, ...stateCondition(sql`r.state`, states)])}`;
}

/** How many targets of each rollout are in each state. */
export async function progressByRolloutIds(pool: Queryable, ids: readonly number[]): Promise<Map<number, RolloutProgress>> {
  const rows = await selectRows<RolloutProgress & { rolloutId: number }>(
    pool,
    sql`select rollout_id as "rolloutId", count(*)::int as total,
               (count(*) filter (where state = 'pending'))::int as pending,
               (count(*) filter (where state = 'running'))::int as running,
               (count(*) filter (where state = 'applied'))::int as applied,
               (count(*) filter (where state = 'failed'))::int as failed,
               (count(*) filter (where state = 'cancelled'))::int as cancelled
        from rollout_targets where rollout_id = any(${sql.param(ids)}::int8[]) group by rollout_id`,
  );
  return new Map(rows.map(({ rolloutId, ...progress }) => [rolloutId, progress]));
}

/** Targets in call order. */
export const TARGET_ORDERING: Ordering = { key: null, id: sql`t.position`, idType: 'int4', descending: false };

export function targetsPagePerRollout(
  pool: pg.Pool,
  rolloutIds: readonly number[],
  states: readonly RolloutTargetState[] | undefined,
  window: PageWindow,
): Promise<RolloutTargetRow[]> {
  return selectRows<RolloutTargetRow>(
    pool,
    pagePerParentQuery({
      parentIds: rolloutIds,
      parentColumn: sql`t.rollout_id`,
      parentIdType: 'int8',
      columns: TARGET_FIELDS,
      from: sql`rollout_targets t`,
      where: stateCondition(sql`t.state`, states),
      ordering: TARGET_ORDERING,
      window,
    }),
  );
}

export async function countTargetsPerRollout(pool: pg.Pool, rolloutIds: readonly number[], states: readonly RolloutTargetState[] | undefined): Promise<Map<number, number>> {
  const rows = await selectRows<{ rolloutId: number; count: number }>(
    pool,
    sql`select t.rollout_id as "rolloutId", count(*)::int as count from rollout_targets t
        where ${and([sql`t.rollout_id = any(${sql.param(rolloutIds)}::int8[])`, ...stateCondition(sql`t.state`, states)])} group by t.rollout_id`,
  );
  return new Map(rows.map((row) => [row.rolloutId, row.count]));
}
