import type pg from 'pg';
import { isDatabaseUnavailable } from '../db/connection';
import type { Logger } from '../log';
import { ReportError } from './errors';
import { GroupCommit, type GroupCommitOptions } from './group-commit';
import { applyReports, PartlyAppliedError, type AppliedReport, type ReceivedReport, type RecordedEvent, type StoredBodies } from './store';

/** Postgres asks the transaction to be run again: deadlock between replicas, serialization. */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 3;

export class DatabaseUnavailableError extends ReportError {
  constructor(cause: unknown) {
    super(503, 'DATABASE_UNAVAILABLE', 'The database is unreachable; the report was not stored. Retry later.');
    this.cause = cause;
  }
}

/** A report that cannot be re-run after its batch failed, because a newer report of its box is already applied. */
function overtaken(): ReportError {
  return new ReportError(503, 'RETRY', 'The report was not stored because its batch failed; send it again.');
}

interface StartedBatch {
  seq: number;
  licenseKeys: Set<string>;
  done: boolean;
}

/**
 * Durable writes of reports: group commit in front of `applyReports`. A report's promise resolves
 * only after its transaction committed. Batches overlap (pipelining): the next one starts once the
 * previous one holds its boxes' row locks, so a box's reports still apply in arrival order.
 * A batch that fails for a reason other than an outage is re-run without the reports whose box a
 * newer batch already touched (those get 503 and the box resends), one report at a time when the
 * failure was not a deadlock, so one unstorable report cannot take its neighbours down with it.
 */
export class ReportWriter {
  private readonly group: GroupCommit<ReceivedReport, AppliedReport>;
  private seq = 0;
  private started: StartedBatch[] = [];
  /** Body hash last committed per box by this process, so equal bodies are not sent again. */
  private readonly stored: StoredBodies = new Map();

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    options: GroupCommitOptions,
    private readonly onCommitted: (events: RecordedEvent[]) => void = () => {},
  ) {
    this.group = new GroupCommit((batch, startNext) => this.commitBatch(batch, startNext), options);
  }

  write(report: ReceivedReport): Promise<AppliedReport> {
    return this.group.submit(report);
  }

  /** Waits for every accepted report to be committed or answered. */
  drain(): Promise<void> {
    return this.group.drain();
  }

  private async commitBatch(batch: ReceivedReport[], startNext: () => void): Promise<Array<AppliedReport | Error>> {
    const me: StartedBatch = { seq: ++this.seq, licenseKeys: new Set(batch.map((r) => r.report.licenseKey)), done: false };
    this.started.push(me);
    try {
      return await this.commitWithRecovery(batch, me, startNext);
    } finally {
      me.done = true;
      while (this.started[0]?.done) this.started.shift();
    }
  }

  /** Licence keys of batches started after `me`: their reports are newer than any of mine. */
  private newerKeys(me: StartedBatch): Set<string> {
    const keys = new Set<string>();
    for (const batch of this.started) if (batch.seq > me.seq) for (const key of batch.licenseKeys) keys.add(key);
    return keys;
  }

  private async commitWithRecovery(batch: ReceivedReport[], me: StartedBatch, startNext: () => void): Promise<Array<AppliedReport | Error>> {
    const results = new Map<ReceivedReport, AppliedReport | Error>();
    let rerun = batch;
    for (let attempt = 1; rerun.length > 0; attempt++) {
      try {
        const applied = await this.apply(rerun, startNext);
        rerun.forEach((report, i) => results.set(report, applied[i]!));
        break;
      } catch (thrown) {
        let error = thrown;
        if (error instanceof PartlyAppliedError) {
          for (const [report, result] of error.applied) results.set(report, result);
          error = error.cause;
        }
        let left = rerun.filter((r) => !results.has(r));
        if (isDatabaseUnavailable(error)) {
          for (const report of left) results.set(report, new DatabaseUnavailableError(error));
          break;
        }
        // A newer report of the same box may already be applied: re-running an older one would undo it.
        const newer = this.newerKeys(me);
        for (const report of left) if (newer.has(report.report.licenseKey)) results.set(report, overtaken());
        left = left.filter((r) => !results.has(r));
        const code = (error as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < ATTEMPTS) {
          rerun = left;
          continue;
        }
        if (rerun.length === 1 || left.length <= 1) {
          if (left.length === 1) {
            this.log.error({ err: error, licenseKey: left[0]!.report.licenseKey }, 'report could not be stored');
            results.set(left[0]!, error instanceof Error ? error : new Error(String(error)));
          }
          break;
        }
        this.log.warn({ err: error, size: left.length }, 'batch failed; storing its reports one by one');
        for (const report of left) {
          const [result] = await this.commitWithRecovery([report], me, () => {});
          results.set(report, result!);
        }
        break;
      }
    }
    return batch.map((report) => results.get(report)!);
  }

  private async apply(batch: ReceivedReport[], locked: () => void): Promise<AppliedReport[]> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      const { applied, events } = await applyReports(client, batch, this.stored, locked);
      for (const { report } of batch) this.stored.set(report.licenseKey, report.rawHash);
      this.onCommitted(events);
      return applied;
    } catch (error) {
      broken = isDatabaseUnavailable(error instanceof PartlyAppliedError ? error.cause : error);
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
