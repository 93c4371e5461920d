import type pg from 'pg';
import { createPool } from '../../src/db/connection';
import { ReportWriter } from '../../src/ingest/writer';
import { createLogger } from '../../src/log';
import { createTestDatabase } from './database';

export interface TestWriter {
  pool: pg.Pool;
  writer: ReportWriter;
  /** Sizes of the batches the writer committed, re-runs included. */
  batches: number[];
  close(): Promise<void>;
}

/** A ReportWriter on a fresh database of the run's Postgres; reports submitted within 50 ms share a batch. */
export async function startWriter(): Promise<TestWriter> {
  const log = createLogger('silent');
  const database = await createTestDatabase();
  const pool = createPool(database.url, 4, log);
  const batches: number[] = [];
  const writer = new ReportWriter(pool, log, { windowMs: 50, maxItems: 100, maxInFlight: 2 }, undefined, (size) => batches.push(size));
  return {
    pool,
    writer,
    batches,
    async close() {
      await writer.drain();
      await pool.end();
      await database.drop();
    },
  };
}
