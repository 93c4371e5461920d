import { sql } from '../../db/sql';
import { PartlyAppliedError, type AppliedReport, type ReceivedReport } from './outcome';
import type { Pipeline } from './pipeline';

/**
 * Where a batch stands with its transaction. A report is answered 2xx only once the phase that
 * wrote it is `committed` (or it was stored in `autocommit`), so an answer never outlives a crash.
 * - `autocommit`: no transaction open; a statement commits on its own. A batch whose reports all
 *   take the one-statement path stays here: one statement, no BEGIN, no COMMIT to wait for.
 * - `open`: BEGIN sent; what is sent now commits or rolls back together, with one WAL flush.
 * - `committed`: COMMIT answered (or nothing left to commit): every report applied is durable.
 * - `rolled-back`: something failed while open; nothing since BEGIN is kept.
 */
export type BatchPhase = 'autocommit' | 'open' | 'committed' | 'rolled-back';

/** The moves a batch may make; anything else is a bug in the store, and throws. */
const NEXT: Record<BatchPhase, readonly BatchPhase[]> = {
  autocommit: ['open', 'committed'],
  open: ['committed', 'rolled-back'],
  committed: [],
  'rolled-back': [],
};

/**
 * The transaction lifecycle of one batch on its pipeline. Every change of phase goes through
 * `moveTo`. Reports stored in `autocommit` stay stored if a transaction after them fails: `failed`
 * then says which (PartlyAppliedError), so the writer answers them and retries only the rest.
 */
export class BatchTransaction {
  private current: BatchPhase = 'autocommit';
  private readonly storedAlone = new Map<ReceivedReport, AppliedReport>();

  constructor(private readonly pipeline: Pipeline) {}

  get phase(): BatchPhase {
    return this.current;
  }

  /** autocommit → open: sends BEGIN; statements sent after it are in the transaction. */
  begin(): Promise<unknown> {
    this.moveTo('open');
    return this.pipeline.run(sql`begin`);
  }

  /** Notes reports that a statement sent in `autocommit` has committed. */
  committedAlone(applied: Iterable<[ReceivedReport, AppliedReport]>): void {
    if (this.current !== 'autocommit') throw new Error(`reports committed alone in phase ${this.current}`);
    for (const [received, result] of applied) this.storedAlone.set(received, result);
  }

  /**
   * → committed. When open, sends COMMIT at once (behind the writes already sent) and resolves once
   * Postgres confirmed it; an answer other than COMMIT means Postgres rolled back, and throws.
   */
  async commit(): Promise<void> {
    if (this.current === 'autocommit') return this.moveTo('committed');
    const { command } = await this.pipeline.run(sql`commit`);
    if (command !== 'COMMIT') throw new Error(`the ingest transaction ended with ${command}, not COMMIT`);
    this.moveTo('committed');
  }

  /**
   * After `error`, once the pipeline has ended: rolls back what is open, and returns the error to
   * throw (a PartlyAppliedError when some reports were committed alone before).
   */
  async failed(error: unknown): Promise<unknown> {
    if (this.current === 'open') {
      this.moveTo('rolled-back');
      await this.pipeline.client.query('rollback').catch(() => {});
    }
    return this.storedAlone.size > 0 ? new PartlyAppliedError(error, this.storedAlone) : error;
  }

  private moveTo(next: BatchPhase): void {
    if (!NEXT[this.current].includes(next)) throw new Error(`a batch cannot go from ${this.current} to ${next}`);
    this.current = next;
  }
}
