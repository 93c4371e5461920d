import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluationRound } from '../../src/alerts/evaluator';
import { createAlertRule, deleteAlertRule, updateAlertRule } from '../../src/alerts/rules';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { until } from '../helpers/wait';
import { alertsOf, type AlertRow } from './fixtures';

// The evaluator in a started gateway, driven by real reports: each kind fires within one evaluation
// interval of its due time and resolves within one interval of clearing.

const INTERVAL_MS = 200;
/** Room for a round's own time and a busy machine (2 cores shared by parallel test files). */
const SLACK_MS = 400;
let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startGateway({
    alertEvaluationIntervalMs: INTERVAL_MS,
    sweepIntervalMs: 100,
    offlinePeriods: 1,
    offlineMinSeconds: 1,
    defaultReportPeriodSeconds: 1,
  });
  await until(() => gateway.app.alertEvaluator.isLeader, 'the gateway to hold the evaluator');
});
afterAll(async () => {
  await gateway?.close();
});

const newer = (key: string, devices: Array<[string, string]>) => ({
  mq_license_key: key,
  media_devices: devices.map(([id, status]) => ({ media_device_id: id, media_device_status: status, media_device_type: 'rtsp' })),
});

async function report(body: unknown): Promise<Date> {
  const answer = await postReport(gateway.url, body);
  expect(answer.status).toBe(200);
  return new Date();
}

async function boxId(key: string): Promise<number> {
  const { rows } = await gateway.sql.query<{ id: number }>(`select id from boxes where license_key = $1`, [key]);
  return rows[0]!.id;
}

function alertIn(ruleId: number, accept: (a: AlertRow) => boolean, what: string) {
  return until(async () => (await alertsOf(gateway.sql, ruleId)).find(accept), what, { timeoutMs: 30_000 });
}

function expectOnTime(alert: AlertRow) {
  const lateMs = alert.fired_at.getTime() - alert.fires_at.getTime();
  expect(lateMs).toBeGreaterThanOrEqual(0);
  expect(lateMs).toBeLessThan(INTERVAL_MS + SLACK_MS);
}

function expectResolvedSoonAfter(alert: AlertRow, cleared: Date) {
  expect(alert.resolved_at!.getTime() - cleared.getTime()).toBeLessThan(INTERVAL_MS + SLACK_MS);
}

describe('the evaluator in a gateway', () => {
  it('DEVICE_OFFLINE fires forSeconds after the device went offline and resolves when it is back', async () => {
    await report(newer('EVAL-DEV', [['cam', 'online']]));
    const rule = await createAlertRule(gateway.app.pool, { name: 'cam down', kind: 'device_offline', severity: 'major', forSeconds: 1, boxIds: [await boxId('EVAL-DEV')] }, 'op');
    const offlineAt = await report(newer('EVAL-DEV', [['cam', 'offline']]));
    const fired = await alertIn(rule.id, (a) => a.state === 'firing', 'the device alert to fire');
    expect(fired.fires_at.getTime()).toBe(fired.condition_since.getTime() + 1000);
    expect(Math.abs(fired.condition_since.getTime() - offlineAt.getTime())).toBeLessThan(1000);
    expectOnTime(fired);
    const backAt = await report(newer('EVAL-DEV', [['cam', 'online']]));
    const resolved = await alertIn(rule.id, (a) => a.state === 'resolved', 'the device alert to resolve');
    expect(resolved).toMatchObject({ id: fired.id, resolution: 'cleared' });
    expectResolvedSoonAfter(resolved, backAt);
  });

  it('BOX_OFFLINE fires forSeconds after the sweep marked the silent box offline, and resolves on its next report', async () => {
    await report(newer('EVAL-BOX', [['cam', 'online']]));
    const rule = await createAlertRule(gateway.app.pool, { name: 'box down', kind: 'box_offline', severity: 'critical', forSeconds: 1, boxIds: [await boxId('EVAL-BOX')] }, 'op');
    const fired = await alertIn(rule.id, (a) => a.state === 'firing', 'the box alert to fire'); // silent: offline after ~1 s, fires 1 s later
    expectOnTime(fired);
    const backAt = await report(newer('EVAL-BOX', [['cam', 'online']]));
    const resolved = await alertIn(rule.id, (a) => a.state === 'resolved', 'the box alert to resolve');
    expectResolvedSoonAfter(resolved, backAt);
  });

  it('DEVICE_FLAPPING fires as the N-th change commits and resolves when the window holds fewer', async () => {
    await report(newer('EVAL-FLAP', [['cam', 'online']]));
    const rule = await createAlertRule(
      gateway.app.pool,
      { name: 'flapping', kind: 'device_flapping', severity: 'warning', flapChanges: 3, flapWindowSeconds: 10, boxIds: [await boxId('EVAL-FLAP')] },
      'op',
    );
    await report(newer('EVAL-FLAP', [['cam', 'offline']]));
    await report(newer('EVAL-FLAP', [['cam', 'online']]));
    await report(newer('EVAL-FLAP', [['cam', 'offline']]));
    const fired = await alertIn(rule.id, (a) => a.state === 'firing', 'the flapping alert to fire');
    expect(fired.value).toBe(3);
    expectOnTime(fired);
    // The first change leaves the 10 s window 10 s after it happened: 2 remain.
    const resolved = await alertIn(rule.id, (a) => a.state === 'resolved', 'the flapping alert to resolve');
    expect(resolved.resolved_at!.getTime() - (resolved.condition_since.getTime() + 10_000)).toBeLessThan(INTERVAL_MS + SLACK_MS);
  }, 60_000);

  it('BOX_HEALTH fires forSeconds after the first report above the threshold and resolves on one below', async () => {
    const older = (temperature: unknown) => ({ dev_sno: 'EVAL-HOT', gateway_ext_data: { temperature }, sub_devices: [{ ep_id: 'cam', ep_status: 'online', ep_type: 'rtsp' }] });
    await report(older('60℃'));
    const rule = await createAlertRule(
      gateway.app.pool,
      { name: 'hot', kind: 'box_health', severity: 'major', healthFigure: 'temperature', healthThreshold: 80, forSeconds: 1, boxIds: [await boxId('EVAL-HOT')] },
      'op',
    );
    const hotAt = await report(older('91.5℃'));
    const fired = await alertIn(rule.id, (a) => a.state === 'firing', 'the health alert to fire');
    expect(fired.value).toBe(91.5);
    expect(Math.abs(fired.condition_since.getTime() - hotAt.getTime())).toBeLessThan(1000);
    expectOnTime(fired);
    const coolAt = await report(older(70));
    const resolved = await alertIn(rule.id, (a) => a.state === 'resolved', 'the health alert to resolve');
    expectResolvedSoonAfter(resolved, coolAt);
  });

  it('a rule change resolves what no longer holds (rule_changed), disabling and deleting resolve the rest', async () => {
    await report(newer('EVAL-RULE', [['a', 'offline'], ['b', 'offline']]));
    const box = await boxId('EVAL-RULE');
    const rule = await createAlertRule(gateway.app.pool, { name: 'any down', kind: 'device_offline', severity: 'minor', boxIds: [box] }, 'op');
    expect((await alertsOf(gateway.sql, rule.id)).map((a) => a.state)).toEqual(['firing', 'firing']); // forSeconds 0: at once
    // 1 h: neither has held that long; their alerts resolve as the rule changes.
    await updateAlertRule(gateway.app.pool, rule.id, { forSeconds: 3600 }, 'op');
    expect(await alertsOf(gateway.sql, rule.id)).toMatchObject([{ state: 'resolved', resolution: 'rule_changed' }, { state: 'resolved', resolution: 'rule_changed' }]);
    await updateAlertRule(gateway.app.pool, rule.id, { forSeconds: 0 }, 'op');
    const open = await alertsOf(gateway.sql, rule.id);
    expect(open.slice(2).map((a) => [a.state, a.severity])).toEqual([['firing', 'minor'], ['firing', 'minor']]);
    // Still due under the new severity: the same alerts stay open, now critical.
    await updateAlertRule(gateway.app.pool, rule.id, { severity: 'critical' }, 'op');
    expect((await alertsOf(gateway.sql, rule.id)).slice(2).map((a) => [a.id, a.state, a.severity])).toEqual(open.slice(2).map((a) => [a.id, 'firing', 'critical']));
    await updateAlertRule(gateway.app.pool, rule.id, { enabled: false }, 'op');
    expect((await alertsOf(gateway.sql, rule.id)).slice(2)).toMatchObject([{ resolution: 'rule_disabled' }, { resolution: 'rule_disabled' }]);
    await updateAlertRule(gateway.app.pool, rule.id, { enabled: true }, 'op');
    await deleteAlertRule(gateway.app.pool, rule.id, 'op');
    const all = await alertsOf(gateway.sql, rule.id);
    expect(all.slice(4)).toMatchObject([{ resolution: 'rule_deleted' }, { resolution: 'rule_deleted' }]);
    // A round after the delete changes nothing (run here, so no waiting for the timer's).
    const client = await gateway.app.pool.connect();
    await evaluationRound(client).finally(() => client.release());
    expect(await alertsOf(gateway.sql, rule.id)).toHaveLength(6);
  });
});
