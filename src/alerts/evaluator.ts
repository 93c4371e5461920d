import type pg from 'pg';
import { SingletonJob } from '../db/leader';
import { run, sql } from '../db/sql';
import type { Logger } from '../log';
import { queueRepeats, recordAlertChanges, type RecordedAlertChange } from './changes';
import { evaluateRules, lockEvaluation } from './evaluation';

/** Session-level advisory lock electing the one replica that evaluates; released when its session dies. */
const EVALUATOR_LOCK = 0x666c_6776; // "flgv"

export interface EvaluatorOptions {
  /** ALERT_EVALUATION_INTERVAL_MS: how often a round runs (a due time between rounds waits for the next). */
  intervalMs: number;
}

/**
 * One evaluation round, in one transaction on `client`: EVALUATION_LOCK first (rule writes take it
 * too), then every rule evaluated (fire due subjects, resolve cleared ones), repeats of alerts still
 * firing queued, and last the changes recorded (with their webhooks). Everything is recomputed from
 * the tables, so a restart or a takeover loses nothing and fires a pending condition at its time.
 */
export async function evaluationRound(client: pg.ClientBase, now?: Date): Promise<RecordedAlertChange[]> {
  // Most rounds of a gateway without rules find nothing to do: one indexed read says so, instead of
  // a transaction of five statements after every commit of status events.
  const { rows } = await run<{ idle: boolean }>(
    client,
    sql`select not exists (select 1 from alert_rules where enabled and deleted_at is null)
           and not exists (select 1 from alerts where state in ('firing', 'acknowledged')) as idle`,
    'fleetgate_alerts_idle',
  );
  if (rows[0]!.idle) return [];
  await run(client, sql`begin`);
  try {
    await lockEvaluation(client);
    // The clock is read once the lock is held, so a rule write that went first is judged before it.
    const at = now ?? new Date();
    const changes = await evaluateRules(client, at, { notDue: 'cleared' });
    await queueRepeats(client, at);
    const recorded = await recordAlertChanges(client, changes, at);
    await run(client, sql`commit`);
    return recorded;
  } catch (error) {
    await run(client, sql`rollback`).catch(() => {});
    throw error;
  }
}

/**
 * The alert evaluator: a round every `intervalMs` and as soon as status events commit (`runSoon`),
 * on exactly one replica at a time (a SingletonJob with its own lock); another replica takes over
 * when the holder's session dies. Holds nothing in memory between rounds.
 */
export class AlertEvaluator extends SingletonJob {
  constructor(
    databaseUrl: string,
    private readonly log: Logger,
    private readonly options: EvaluatorOptions,
  ) {
    super({ databaseUrl, lockKey: EVALUATOR_LOCK, name: 'alert evaluator', applicationName: 'fleetgate-alerts', intervalMs: options.intervalMs, log });
  }

  protected async work(client: pg.Client): Promise<void> {
    const started = performance.now();
    const recorded = await evaluationRound(client);
    const ms = Math.round(performance.now() - started);
    if (recorded.length > 0) {
      const fired = recorded.filter((c) => c.kind === 'fired').length;
      this.log.info({ fired, resolved: recorded.length - fired, ms }, 'alerts changed');
    }
    // A round longer than the interval delays alerts past "within one interval": say so.
    if (ms > this.options.intervalMs) this.log.warn({ ms, intervalMs: this.options.intervalMs }, 'an alert evaluation round took longer than ALERT_EVALUATION_INTERVAL_MS');
  }
}
