import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { metric } from '../helpers/metrics';
import { spawnGateway, type GatewayProcess } from '../helpers/process';
import { until } from '../helpers/wait';
import { allTargets, call, registerFleet, rolloutWhen, StartRollout, startFleet, type Fleet } from './fleet';

// Rollouts outlive the gateway that runs them: the rows are the state. A gateway stopped mid-rollout
// starts no call after the stop began and lets those under way be recorded; one killed leaves them
// `running`, and the next runner calls those boxes again. Of two gateways on one database, one runs it.

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function database() {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  return db;
}
async function gatewayOn(url: string, overrides: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const gateway = await startGateway(overrides, url);
  cleanups.push(() => gateway.close());
  return gateway;
}
async function fleetOf(size: number, behavior: 'ok' | 'hold', url: string): Promise<Fleet> {
  const fleet = await startFleet(Array.from({ length: size }, () => behavior));
  cleanups.push(() => fleet.close());
  await registerFleet(url, fleet);
  return fleet;
}
async function start(url: string, fleet: Fleet, concurrency: number): Promise<string> {
  const started = await call(url, StartRollout, { input: { boxIds: fleet.boxes.map((b) => b.globalId), settings: { reportPeriodSeconds: 45 }, concurrency, failureThreshold: 100 } });
  expect(started.__typename).toBe('RolloutSuccess');
  return started.rollout.id;
}
const dbId = (globalId: string) => Number(Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]);

describe('a rollout across a restart', () => {
  it('a stopped gateway starts no call after the stop began; the next one completes the rollout, every box called once', { timeout: 60_000 }, async () => {
    const db = await database();
    const first = await startGateway({ boxApiTimeoutMs: 1_000 }, db.url);
    let stopped = false;
    cleanups.push(async () => stopped || first.close());
    const fleet = await fleetOf(40, 'hold', first.url);
    const id = await start(first.url, fleet, 5);
    await until(() => fleet.active === 5, 'five calls under way at the boxes');

    // The five held calls end at the box deadline (timed out) and are recorded before the stop ends.
    await first.close();
    stopped = true;
    expect(fleet.calls).toBe(5);
    fleet.release();
    // The next gateway continues the rollout on its first round.
    const next = await gatewayOn(db.url, { boxApiTimeoutMs: 1_000 });
    const done = await rolloutWhen(next.url, id, (r) => r.state === 'COMPLETED', 'completion on the next gateway');
    expect(done.progress).toEqual({ total: 40, pending: 0, running: 0, applied: 35, failed: 5, cancelled: 0 });
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual(fleet.boxes.map(() => 1));
    const targets = await allTargets(next.url, id);
    expect(targets.slice(0, 5).map((t) => [t.state, t.outcome])).toEqual(Array.from({ length: 5 }, () => ['FAILED', 'TIMED_OUT']));
    expect(targets.every((t) => t.attempts === 1)).toBe(true);
    expect(fleet.maxActive).toBeLessThanOrEqual(5);
  });

  it('a killed gateway leaves its calls running: the next one calls those boxes again (at most twice) and completes it', { timeout: 90_000 }, async () => {
    const db = await database();
    const killed: GatewayProcess = await spawnGateway({ PORT: '0', DATABASE_URL: db.url, BOX_API_TIMEOUT_MS: '10000', LOG_LEVEL: 'warn' });
    cleanups.push(async () => {
      if (killed.child.exitCode === null) killed.child.kill('SIGKILL');
      await killed.exited;
    });
    const fleet = await fleetOf(30, 'hold', killed.url);
    const id = await start(killed.url, fleet, 5);
    await until(() => fleet.active === 5, 'five calls under way at the boxes');
    killed.child.kill('SIGKILL');
    await killed.exited;
    await until(() => fleet.active === 0, 'the killed gateway’s connections to close');

    const next = await gatewayOn(db.url, { boxApiTimeoutMs: 10_000 });
    fleet.release();
    const done = await rolloutWhen(next.url, id, (r) => r.state === 'COMPLETED', 'completion on the next gateway');
    expect(done.progress).toMatchObject({ total: 30, applied: 30, failed: 0 });
    // The five under way at the kill were called again; the others once.
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual(fleet.boxes.map((_, i) => (i < 5 ? 2 : 1)));
    const targets = await allTargets(next.url, id);
    expect(targets.map((t) => t.attempts)).toEqual(fleet.boxes.map((_, i) => (i < 5 ? 2 : 1)));
    expect(fleet.maxActive).toBeLessThanOrEqual(5);
    // Every call answered is in the audit trail; the five the kill cut off never got an answer to audit.
    const { rows } = await next.sql.query('select box_id, count(*)::int as n from box_config_changes where rollout_id = $1 group by box_id order by box_id', [dbId(id)]);
    expect(rows).toEqual([...fleet.boxes].sort((x, y) => x.id - y.id).map((b) => ({ box_id: b.id, n: 1 })));
  });
});

describe('two gateways on one database', () => {
  it('only one runs the rollout: every box is called once', { timeout: 60_000 }, async () => {
    const db = await database();
    const a = await gatewayOn(db.url);
    const b = await gatewayOn(db.url);
    await until(() => a.app.rolloutRunner.isLeader || b.app.rolloutRunner.isLeader, 'a runner to hold the lock');
    const fleet = await fleetOf(60, 'ok', b.url);
    const id = await start(b.url, fleet, 10);
    const done = await rolloutWhen(a.url, id, (r) => r.state === 'COMPLETED', 'completion');
    expect(done.progress).toMatchObject({ total: 60, applied: 60 });
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual(fleet.boxes.map(() => 1));
    expect(fleet.maxActive).toBeLessThanOrEqual(10);
    expect([a.app.rolloutRunner.isLeader, b.app.rolloutRunner.isLeader].filter(Boolean)).toHaveLength(1);
    const counted = async (gateway: TestGateway) => metric(gateway.url, 'fleetgate_rollout_calls_total{outcome="applied"}');
    const calls = [await counted(a), await counted(b)].sort((x, y) => x - y);
    expect(calls).toEqual([0, 60]);
  });
});
