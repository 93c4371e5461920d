import type pg from 'pg';
import { isDatabaseUnavailable } from '../db/connection';
import type { Logger } from '../log';
import { ReportError } from './errors';
import { maskLicenseKey } from './license-key';
import { GroupCommit, type GroupCommitOptions } from './group-commit';
import { StatisticsKeeper } from './statistics';
import { applyReports, type CommittedHashes, type RecordedEvent } from './store/apply-reports';
import { PartlyAppliedError, type AppliedReport, type ReceivedReport } from './store/outcome';

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
 * only after its transaction committed. Several batches commit at once, but never two holding the
 * same box: a box's next report waits for its previous one, so reports apply in arrival order.
 * A batch that fails for a reason other than an outage is retried (deadlocks between replicas) or
 * re-run one report at a time, so one unstorable report cannot take its neighbours down with it.
 */
export class ReportWriter {
  private readonly group: GroupCommit<ReceivedReport, AppliedReport>;
  /** Body and device-list hashes last committed per box by this process (see CommittedHashes). */
  private readonly committed: CommittedHashes = new Map();
  private readonly statistics: StatisticsKeeper;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    options: Omit<GroupCommitOptions<ReceivedReport>, 'keyOf'>,
    private readonly onCommitted: (events: RecordedEvent[]) => void = () => {},
    /** Told the size of each batch as it starts committing, for metrics. */
    private readonly onBatch: (size: number) => void = () => {},
  ) {
    this.statistics = new StatisticsKeeper(pool, log);
    this.group = new GroupCommit((batch) => this.commitBatch(batch), { ...options, keyOf: (r) => r.report.licenseKey });
  }

  write(report: ReceivedReport): Promise<AppliedReport> {
    return this.group.submit(report);
  }

  /** Waits for every accepted report to be committed or answered (and for an ANALYZE they started). */
  async drain(): Promise<void> {
    await this.group.drain();
    await this.statistics.drain();
  }

  private async commitBatch(batch: ReceivedReport[]): Promise<Array<AppliedReport | Error>> {
    this.onBatch(batch.length);
    const results = new Map<ReceivedReport, AppliedReport | Error>();
    let rerun = batch;
    for (let attempt = 1; rerun.length > 0; attempt++) {
      try {
        const applied = await this.apply(rerun);
        rerun.forEach((report, i) => results.set(report, applied[i]!));
        break;
      } catch (thrown) {
        let error = thrown;
        if (error instanceof PartlyAppliedError) {
          for (const [report, result] of error.applied) results.set(report, result);
          error = error.cause;
        }
        const left = rerun.filter((r) => !results.has(r));
        if (isDatabaseUnavailable(error)) {
          for (const report of left) results.set(report, new DatabaseUnavailableError(error));
          break;
        }
        const code = (error as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < ATTEMPTS) {
          rerun = left;
          continue;
        }
        if (left.length <= 1) {
          if (left.length === 1) {
            this.log.error({ err: error, licenseKey: maskLicenseKey(left[0]!.report.licenseKey) }, 'report could not be stored');
            results.set(left[0]!, error instanceof Error ? error : new Error(String(error)));
          }
          break;
        }
        this.log.warn({ err: error, size: left.length }, 'batch failed; storing its reports one by one');
        for (const report of left) {
          const [result] = await this.commitBatch([report]);
          results.set(report, result!);
        }
        break;
      }
    }
    return batch.map((report) => results.get(report)!);
  }

  private async apply(batch: ReceivedReport[]): Promise<Array<AppliedReport | ReportError>> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      const { applied, events, created } = await applyReports(client, batch, this.committed);
      batch.forEach(({ report }, i) => {
        if (!(applied[i] instanceof ReportError)) this.committed.set(report.licenseKey, { rawHash: report.rawHash, devicesHash: report.devicesHash });
      });
      this.onCommitted(events);
      this.statistics.boxesCreated(created);
      return applied;
    } catch (error) {
      broken = isDatabaseUnavailable(error instanceof PartlyAppliedError ? error.cause : error);
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
