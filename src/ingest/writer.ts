import type pg from 'pg';
import { isDatabaseUnavailable } from '../db/connection';
import type { Logger } from '../log';
import { ReportError } from './errors';
import { GroupCommit, type GroupCommitOptions } from './group-commit';
import { applyReports, type AppliedReport, type ReceivedReport, type RecordedEvent } from './store';

/** Postgres asks the transaction to be run again: deadlock between replicas, serialization. */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 3;

export class DatabaseUnavailableError extends ReportError {
  constructor(cause: unknown) {
    super(503, 'DATABASE_UNAVAILABLE', 'The database is unreachable; the report was not stored. Retry later.');
    this.cause = cause;
  }
}

/**
 * Durable writes of reports: group commit in front of `applyReports`. A report's promise resolves
 * only after its transaction committed. A group that fails for a reason other than an outage is
 * re-run one report at a time, so one unstorable report cannot take its neighbours down with it.
 */
export class ReportWriter {
  private readonly group: GroupCommit<ReceivedReport, AppliedReport>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    options: GroupCommitOptions,
    private readonly onCommitted: (events: RecordedEvent[]) => void = () => {},
  ) {
    this.group = new GroupCommit((batch) => this.commitGroup(batch), options);
  }

  write(report: ReceivedReport): Promise<AppliedReport> {
    return this.group.submit(report);
  }

  /** Waits for every accepted report to be committed or answered. */
  drain(): Promise<void> {
    return this.group.drain();
  }

  private async commitGroup(batch: ReceivedReport[]): Promise<Array<AppliedReport | Error>> {
    try {
      return await this.transaction(batch);
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw new DatabaseUnavailableError(error);
      if (batch.length === 1) {
        this.log.error({ err: error, licenseKey: batch[0]!.report.licenseKey }, 'report could not be stored');
        return [error instanceof Error ? error : new Error(String(error))];
      }
      this.log.warn({ err: error, size: batch.length }, 'batch failed; storing its reports one by one');
      const results: Array<AppliedReport | Error> = [];
      for (const report of batch) {
        const [result] = await this.commitGroup([report]);
        results.push(result!);
      }
      return results;
    }
  }

  private async transaction(batch: ReceivedReport[]): Promise<AppliedReport[]> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query('begin');
        const { applied, events } = await applyReports(client, batch);
        await client.query('commit');
        this.onCommitted(events);
        return applied;
      } catch (error) {
        await client.query('rollback').catch(() => {
          broken = true;
        });
        const code = (error as { code?: string }).code;
        if (attempt < ATTEMPTS && code && RETRYABLE.has(code)) continue;
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }
}
