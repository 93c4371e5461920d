import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkStored, describeTally, ReportLoad } from '../../bench/lib/acknowledged-reports';
import { createTestDatabase } from '../helpers/database';
import { freePort } from '../helpers/net';
import { spawnGateway, type GatewayProcess } from '../helpers/process';

// Only the gateway process dies; the run's Postgres keeps serving this file's database.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let load: ReportLoad | undefined;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await load?.close();
  for (const gateway of gateways) if (gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill('SIGKILL');
  await database?.drop();
});

it('loses no report it answered 200 when killed with SIGKILL under load, twice', { timeout: 180_000 }, async () => {
  // One port for both lives of the gateway, so the boxes keep reporting to the same URL across the restart.
  const port = await freePort();
  const start = async () => {
    const gateway = await spawnGateway({ DATABASE_URL: database.url, PORT: String(port), LOG_LEVEL: 'warn' });
    gateways.push(gateway);
    return gateway;
  };
  let gateway = await start();
  load = new ReportLoad({ url: gateway.url, boxes: 24, devicesPerBox: 4, retryPauseMs: 100, timeoutMs: 20_000 });
  load.start();

  for (let round = 1; round <= 2; round++) {
    const tally = load.phase(`round ${round}`);
    // Killed while every box has a report in flight, some of them committing.
    await load.until(() => tally.acknowledged >= 400, 60_000, `400 reports acknowledged in round ${round}`);
    const inFlight = load.inFlight;
    gateway.child.kill('SIGKILL');
    await gateway.exited;
    load.phase(`round ${round}: killed${round < 2 ? ', starting again' : ''}`);
    console.info(`round ${round}: killed with ${inFlight} reports in flight`);
    expect(inFlight).toBeGreaterThan(0);
    if (round < 2) gateway = await start();
  }
  await load.stop();
  for (const [phase, tally] of load.phases) console.info(`${phase}: ${describeTally(tally)}`);

  const check = await checkStored(database.url, load);
  console.info(
    `${check.acknowledged} acknowledged, ${check.stored} of them stored, ${check.lost} lost; ` +
      `${check.unanswered} unanswered (marked boxes: ${check.unansweredStored} of ${check.unansweredMarked} stored)`,
  );
  expect(check.lostDetails).toEqual([]);
  expect(check.lost).toBe(0);
  expect(check.stored).toBe(check.acknowledged);
  expect(check.acknowledged).toBeGreaterThanOrEqual(800);
  // A gateway that is killed answers nothing wrong: its answers are 200s, the rest are broken connections.
  expect(load.total.otherAnswers, load.total.samples.join('\n')).toBe(0);
  expect(load.total.timeouts).toBe(0);
});
