import type pg from 'pg';
import { configureBox, type BoxConfigDeps, type ConfigureOutcome } from '../box-api/configure';
import type { RolloutTargetState } from '../db/schema';
import { SingletonJob } from '../db/leader';
import { inTransaction, run, selectRows, sql } from '../db/sql';
import type { Logger } from '../log';
import type { RolloutChangeHub } from './change-hub';
import { notifyRolloutChanged, type RolloutRow } from './rollouts';

// The rollout runner: on the one replica holding its advisory lock, it calls the pending targets of
// every running rollout through configureBox (the audited, per-box serialized path an operator's
// configureBox takes), at most `concurrency` at once per rollout, and records each outcome.

const RUNNER_LOCK = 0x666c_676f; // "flgo"

/** Calls made by this runner, by rollout id: the box ids under way. */
type UnderWay = Map<number, Set<number>>;

export interface RolloutRunnerOptions {
  databaseUrl: string;
  /** Where targets are claimed and recorded (not the leader's session: calls record concurrently). */
  pool: pg.Pool;
  log: Logger;
  /** configureBox's deps: the same SerialQueue as GraphQL's, so a rollout's call and an operator's never interleave. */
  boxes: BoxConfigDeps;
  changes: RolloutChangeHub;
  /** A round every so often, besides one on every change heard. */
  intervalMs: number;
  /** How long stop() lets calls under way finish; the rest are abandoned (their targets stay `running`, re-run by the next runner). */
  stopDeadlineMs: number;
  /** Told each recorded call's outcome kind (metrics). */
  onCall?: (outcome: string) => void;
}

/** What a target's call came to: `applied` only when the box confirmed every key. */
export function targetVerdict(outcome: ConfigureOutcome): { state: Extract<RolloutTargetState, 'applied' | 'failed'>; message: string | null } {
  switch (outcome.kind) {
    case 'applied':
      if (outcome.unconfirmedKeys.length === 0) return { state: 'applied', message: null };
      return {
        state: 'failed',
        message: `The box answered success but did not confirm ${outcome.unconfirmedKeys.join(', ')}; see the change's errorMessage, and check with boxConfig.`,
      };
    case 'rejected':
      return { state: 'failed', message: `The box refused the settings with ${outcome.code}${outcome.message ? `: ${outcome.message}` : ''}.` };
    case 'unreachable':
      return { state: 'failed', message: `Could not reach the box at ${outcome.target}: ${outcome.message}` };
    case 'timed_out':
      return {
        state: 'failed',
        message: `The box at ${outcome.target} did not answer within ${outcome.timeoutMs} ms.${outcome.requestSent ? ' The request was sent, so it may have applied it; check with boxConfig.' : ''}`,
      };
    case 'bad_answer':
    case 'address_refused':
      return { state: 'failed', message: outcome.message };
    case 'invalid':
      return { state: 'failed', message: outcome.problems.map((p) => `${p.field}: ${p.message}`).join(' ') };
  }
}

export class RolloutRunner extends SingletonJob {
  private readonly underWay: UnderWay = new Map();
  private readonly calls = new Set<Promise<void>>();
  private stopping = false;
  private unwatch: (() => void) | undefined;

  constructor(private readonly options: RolloutRunnerOptions) {
    super({ databaseUrl: options.databaseUrl, lockKey: RUNNER_LOCK, name: 'rollout runner', applicationName: 'fleetgate-rollouts', intervalMs: options.intervalMs, log: options.log });
  }

  override start(): void {
    this.stopping = false;
    // Any replica's change (a start, a resume, a call recorded) may free work for the runner.
    this.unwatch = this.options.changes.watchAll(() => {
      if (this.isLeader) this.runSoon();
    });
    super.start();
  }

  /** Calls under way on this replica. */
  get callsUnderWay(): number {
    return this.calls.size;
  }

  /**
   * Starts no more calls, gives those under way until the deadline to finish and be recorded, then
   * gives up the lock. An abandoned call's target stays `running`: the next runner calls it again.
   */
  override async stop(): Promise<void> {
    this.stopping = true;
    this.unwatch?.();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.stopDeadlineMs)));
    await Promise.race([Promise.all(this.calls), deadline]);
    clearTimeout(timer);
    if (this.calls.size > 0) this.options.log.warn({ calls: this.calls.size }, 'rollout calls still under way at stop were abandoned; the next runner calls those boxes again');
    await super.stop();
  }

  protected async work(client: pg.Client): Promise<void> {
    if (this.stopping) return;
    // Idle (no rollout running, no call under way anywhere): one read of two partial indexes, every round.
    const [{ busy }] = (await selectRows<{ busy: boolean }>(
      client,
      sql`select exists (select 1 from rollouts where state = 'running') or exists (select 1 from rollout_targets where state = 'running') as busy`,
    )) as [{ busy: boolean }];
    if (!busy) return;
    await this.recoverOrphans(client);
    await this.completeFinished(client);
    const open = await selectRows<Pick<RolloutRow, 'id' | 'concurrency' | 'settings' | 'createdBy'>>(
      client,
      sql`select id, concurrency, settings, created_by as "createdBy" from rollouts where state = 'running' order by id`,
    );
    for (const rollout of open) {
      if (this.stopping) return;
      const mine = this.underWay.get(rollout.id) ?? new Set<number>();
      const free = rollout.concurrency - mine.size;
      if (free <= 0) continue;
      // Claimed targets count as under way from now: a rollout never has more than `concurrency` `running`.
      const claimed = await selectRows<{ boxId: number }>(
        client,
        sql`update rollout_targets t set state = 'running', started_at = now()
            where t.rollout_id = ${rollout.id} and t.box_id in (
              select p.box_id from rollout_targets p join rollouts r on r.id = p.rollout_id and r.state = 'running'
              where p.rollout_id = ${rollout.id} and p.state = 'pending' order by p.position limit ${free} for update of p skip locked)
            returning t.box_id as "boxId"`,
      );
      if (claimed.length === 0) continue;
      this.underWay.set(rollout.id, mine);
      for (const { boxId } of claimed) {
        mine.add(boxId);
        const call = this.call(rollout, boxId).finally(() => {
          this.calls.delete(call);
          mine.delete(boxId);
          if (mine.size === 0 && this.underWay.get(rollout.id) === mine) this.underWay.delete(rollout.id);
          this.runSoon();
        });
        this.calls.add(call);
      }
      await notifyRolloutChanged(this.options.pool, rollout.id);
    }
  }

  /**
   * Targets left `running` by a runner that is gone (stopped past its deadline, killed, lost its
   * lock): this runner holds the lock now, so every `running` target it did not start is one. In an
   * open rollout it is called again (configureBox sets the same values again: harmless); in a
   * cancelled one it is not, and says so.
   */
  private async recoverOrphans(client: pg.Client): Promise<void> {
    const rolloutIds: number[] = [];
    const boxIds: number[] = [];
    for (const [rolloutId, boxes] of this.underWay) for (const boxId of boxes) rolloutIds.push(rolloutId), boxIds.push(boxId);
    const recovered = await selectRows<{ rolloutId: number }>(
      client,
      sql`update rollout_targets t set
            state = case when r.state = 'cancelled' then 'cancelled' else 'pending' end,
            finished_at = case when r.state = 'cancelled' then now() end,
            message = case when r.state = 'cancelled'
              then 'Its call was under way when the gateway running the rollout stopped, and the rollout was cancelled: not called again. Check the box''s configChanges.'
              else t.message end
          from rollouts r
          where r.id = t.rollout_id and t.state = 'running'
            and (t.rollout_id, t.box_id) not in (select * from unnest(${sql.param(rolloutIds)}::int8[], ${sql.param(boxIds)}::int4[]))
          returning t.rollout_id as "rolloutId"`,
    );
    for (const id of new Set(recovered.map((row) => row.rolloutId))) {
      this.options.log.info({ rolloutId: id }, 'rollout targets left running by a stopped runner wait to be called again');
      await notifyRolloutChanged(client, id);
    }
  }

  /** Running rollouts with no target left to call are completed (e.g. resumed with nothing pending). */
  private async completeFinished(client: pg.Client): Promise<void> {
    const completed = await selectRows<{ id: number }>(
      client,
      sql`update rollouts r set state = 'completed', finished_at = now(), updated_at = now()
          where r.state = 'running' and not exists (select 1 from rollout_targets t where t.rollout_id = r.id and t.state in ('pending', 'running'))
          returning r.id`,
    );
    for (const { id } of completed) await notifyRolloutChanged(client, id);
  }

  private async call(rollout: Pick<RolloutRow, 'id' | 'settings' | 'createdBy'>, boxId: number): Promise<void> {
    const { pool, log } = this.options;
    try {
      // The state is read again right before the call: a pause or cancel committed since the claim
      // (on any replica) stops it here. attempts counts the calls actually made.
      const [begun] = this.stopping
        ? []
        : await selectRows<{ attempts: number }>(
            pool,
            sql`update rollout_targets t set attempts = t.attempts + 1, started_at = now()
                from rollouts r
                where r.id = t.rollout_id and r.state = 'running' and t.rollout_id = ${rollout.id} and t.box_id = ${boxId} and t.state = 'running'
                returning t.attempts`,
          );
      if (!begun) return void (await this.release(rollout.id, boxId));
      const outcome = await configureBox(this.options.boxes, {
        boxId,
        input: rollout.settings,
        requestedBy: `${rollout.createdBy ?? 'unknown'} (rollout ${rollout.id})`,
        rolloutId: rollout.id,
      });
      await this.record(rollout.id, boxId, begun.attempts, outcome);
      this.options.onCall?.(outcome.kind);
    } catch (error) {
      // A database fault: the target stays `running`; the next round finds it not under way and calls it again.
      log.warn({ err: (error as Error).message, rolloutId: rollout.id, boxId }, 'a rollout call could not be made or recorded; it will be made again');
    }
  }

  /** A claimed target not called after all: back to pending, or cancelled with its rollout. */
  private async release(rolloutId: number, boxId: number): Promise<void> {
    await inTransaction(this.options.pool, async (client) => {
      await run(
        client,
        sql`update rollout_targets t set
              state = case when r.state = 'cancelled' then 'cancelled' else 'pending' end,
              started_at = case when r.state = 'cancelled' then t.started_at end,
              finished_at = case when r.state = 'cancelled' then now() end
            from rollouts r
            where r.id = t.rollout_id and t.rollout_id = ${rolloutId} and t.box_id = ${boxId} and t.state = 'running'`,
      );
      await notifyRolloutChanged(client, rolloutId);
    });
  }

  /**
   * Records the call and, in the same transaction (the rollout's row locked, so concurrent records
   * count each other's failures), pauses the rollout at its failure threshold or completes it.
   * Only the attempt that is still the target's current one is recorded.
   */
  private async record(rolloutId: number, boxId: number, attempt: number, outcome: ConfigureOutcome): Promise<void> {
    const verdict = targetVerdict(outcome);
    await inTransaction(this.options.pool, async (client) => {
      await run(client, sql`select 1 from rollouts where id = ${rolloutId} for update`);
      await run(
        client,
        sql`update rollout_targets set state = ${verdict.state}, outcome = ${outcome.kind}, change_id = ${outcome.change?.id ?? null},
              message = ${verdict.message}, finished_at = now()
            where rollout_id = ${rolloutId} and box_id = ${boxId} and state = 'running' and attempts = ${attempt}`,
      );
      const paused = await selectRows<{ id: number }>(
        client,
        sql`update rollouts r set state = 'paused', paused_reason = 'failure_threshold', updated_at = now()
            where r.id = ${rolloutId} and r.state = 'running'
              and (select count(*) from rollout_targets t where t.rollout_id = r.id and t.state = 'failed') - r.failures_at_resume >= r.failure_threshold
            returning r.id`,
      );
      if (paused.length > 0) this.options.log.warn({ rolloutId }, 'rollout paused: its failures reached the failure threshold');
      await run(
        client,
        sql`update rollouts r set state = 'completed', finished_at = now(), updated_at = now()
            where r.id = ${rolloutId} and r.state = 'running'
              and not exists (select 1 from rollout_targets t where t.rollout_id = r.id and t.state in ('pending', 'running'))`,
      );
      await notifyRolloutChanged(client, rolloutId);
    });
  }
}
