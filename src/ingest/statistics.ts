import type pg from 'pg';
import type { Logger } from '../log';

/** Transaction-level advisory lock: one replica analyzes at a time; the others skip. */
const ANALYZE_LOCK = 0x666c_676e; // "flgn"

/** Autovacuum's own rule for analyzing a table: 50 rows plus 10% of it changed since it was last analyzed. */
const THRESHOLD_ROWS = 50;
const THRESHOLD_FRACTION = 0.1;

/**
 * Keeps the planner's statistics of `boxes` and `devices` current while a fleet arrives.
 *
 * Autovacuum analyzes a table once 10% of it changed, but looks only once a minute
 * (autovacuum_naptime). A fleet pointed at a gateway creates its boxes within a few seconds, and
 * until the next look the planner believes the tables hold what they held before: with no statistics
 * it guessed that few boxes are online and ran the ingest's one-statement update through
 * boxes_status_idx, testing every online box against every licence key of the batch (quadratic in
 * the fleet). So the ingest applies autovacuum's
 * rule at once: after the boxes it created pass 50 plus 10% of those counted at the last ANALYZE, it
 * runs `ANALYZE boxes, devices` in the background (milliseconds for thousands of boxes; Postgres then
 * re-plans the prepared statements). In steady state no box is created and this never runs.
 */
export class StatisticsKeeper {
  private created = 0;
  /** Boxes in the table at the last ANALYZE, as Postgres estimated them. */
  private boxesAtAnalyze = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  /** The ingest committed `count` new boxes. */
  boxesCreated(count: number): void {
    if (count === 0) return;
    this.created += count;
    this.maybeAnalyze();
  }

  /** Waits for an ANALYZE under way. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private maybeAnalyze(): void {
    if (this.running || this.created < THRESHOLD_ROWS + THRESHOLD_FRACTION * this.boxesAtAnalyze) return;
    const counted = this.created;
    this.running = this.analyze()
      .then((boxes) => {
        this.created -= counted;
        if (boxes !== null) this.boxesAtAnalyze = boxes;
      })
      .catch((error: unknown) => {
        // Statistics only guide plans: autovacuum catches up within a minute. Counted again only after new boxes.
        this.created -= counted;
        this.log.warn({ err: error }, 'ANALYZE after new boxes failed; autovacuum will analyze them later');
      })
      .finally(() => {
        this.running = undefined;
        this.maybeAnalyze(); // boxes created meanwhile
      });
  }

  /** Runs ANALYZE unless another replica is; returns the number of boxes Postgres now estimates, or null if skipped. */
  private async analyze(): Promise<number | null> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('begin');
      const { rows } = await client.query('select pg_try_advisory_xact_lock($1) as locked', [ANALYZE_LOCK]);
      if (!rows[0].locked) {
        await client.query('commit');
        return null;
      }
      const started = Date.now();
      await client.query('analyze boxes, devices');
      const estimate = await client.query(`select reltuples::float8 as boxes from pg_class where oid = 'boxes'::regclass`);
      await client.query('commit');
      const boxes = Math.max(0, Number(estimate.rows[0].boxes));
      this.log.debug({ boxes, ms: Date.now() - started }, 'analyzed boxes and devices after new boxes');
      return boxes;
    } catch (error) {
      broken = true;
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
