import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SingletonJob } from '../../src/db/leader';
import { createLogger } from '../../src/log';
import { createTestDatabase } from '../helpers/database';
import { until } from '../helpers/wait';

// SingletonJob.runSoon: a burst of "something changed" coalesces into one running and one queued round.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.drop();
});

class CountingJob extends SingletonJob {
  rounds = 0;
  release: (() => void) | undefined;
  constructor(url: string) {
    super({ databaseUrl: url, lockKey: 0x666c_67ff, name: 'counting job', applicationName: 'fleetgate-test', intervalMs: 60_000, log: createLogger('silent') });
  }
  protected async work(_client: pg.Client): Promise<void> {
    this.rounds++;
    await new Promise<void>((resolve) => (this.release = resolve));
  }
}

describe('SingletonJob.runSoon', () => {
  it('runs at once when idle, and once more after the running round however often it is asked', async () => {
    const job = new CountingJob(database.url);
    job.start(); // round 1 (the start's)
    await until(() => job.rounds === 1 && job.release, 'the first round');
    for (let i = 0; i < 50; i++) job.runSoon();
    const first = job.release!;
    job.release = undefined;
    first();
    await until(() => job.rounds === 2 && job.release, 'the one queued round');
    job.release!();
    job.release = undefined;
    job.runSoon(); // idle again: runs (after at most the last round's length)
    await until(() => job.rounds === 3 && job.release, 'a round on request');
    job.release!();
    await job.stop();
    expect(job.rounds).toBe(3); // the 50 requests made one round, not more

  });
});
