import { afterAll, beforeAll, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { poolIsIdle, watchStatements } from '../helpers/statements';
import { until } from '../helpers/wait';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.close());

/** ANALYZE runs on `boxes` that were not autovacuum's (autovacuum counts in autoanalyze_count). */
async function analyzes(): Promise<number> {
  const { rows } = await gateway.sql.query(`select analyze_count::int as n from pg_stat_user_tables where relname = 'boxes'`);
  return rows[0].n;
}

async function reportNewBoxes(prefix: string, count: number): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      postReport(gateway.url, { mq_license_key: `${prefix}${String(i).padStart(4, '0')}`, media_devices: [{ media_device_id: 'cam', media_device_status: 'online' }] }),
    ),
  );
  expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
}

/**
 * The ANALYZE statements the gateway sent during `run`. An ANALYZE is decided as a batch commits, before
 * its reports are answered, and holds a client of the pool until it is done: once the pool is idle
 * after the answers, any it decided has been sent and has finished.
 */
async function analyzesSent(run: () => Promise<void>): Promise<string[]> {
  const sent = watchStatements(gateway.app.pool);
  try {
    await run();
    await until(() => poolIsIdle(gateway.app.pool), 'the ingest to give its connections back');
  } finally {
    sent.stop();
  }
  return sent.statements.filter((text) => /^\s*analyze/i.test(text));
}

it('analyzes boxes and devices once a burst of new boxes passes 50 plus 10% of the table, not before', async () => {
  expect(await analyzesSent(() => reportNewBoxes('FEW', 40))).toEqual([]);
  expect(await analyzes()).toBe(0);

  await reportNewBoxes('MANY', 30); // 70 new boxes in all
  await expect.poll(analyzes, { timeout: 10_000, interval: 200 }).toBeGreaterThanOrEqual(1);
  const { rows } = await gateway.sql.query(`select reltuples::int as boxes from pg_class where relname = 'boxes'`);
  expect(rows[0].boxes).toBeGreaterThanOrEqual(40); // the planner now knows the fleet is there

  // Reports from boxes it knows create none: no further ANALYZE.
  const before = await analyzes();
  expect(await analyzesSent(() => reportNewBoxes('MANY', 30))).toEqual([]);
  expect(await analyzes()).toBe(before);
});
