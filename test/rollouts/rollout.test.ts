import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { wsClient, wsSubscribe } from '../helpers/subscriptions';
import { until, within } from '../helpers/wait';
import { allTargets, call, REFUSAL, registerFleet, RolloutProgressSubscription, StartRollout, startFleet, type Behavior, type Fleet } from './fleet';

// A rollout over 200 real loopback boxes through a real gateway: some take the settings, some refuse,
// some never answer (BOX_API_TIMEOUT_MS 2 s), some are closed ports. Every box is called once through
// configureBox, no more than `concurrency` at a time, and ends with the outcome it earned and its
// audit row; a graphql-ws subscriber sees the progress to the end.

/** Long enough for the held box to wait for the subscriber (it is released at the first event). */
const TIMEOUT_MS = 2_000;
const CONCURRENCY = 10;

let gateway: TestGateway;
let fleet: Fleet;

/**
 * Every 20th box refuses, every 20th (offset 7) hangs, every 20th (offset 13) is a closed port: 10 of
 * each. The first box holds its answer (then takes the settings) until the subscriber has its first
 * event, so the rollout cannot end before anyone watches it.
 */
function behaviorOf(index: number): Behavior {
  if (index === 0) return 'hold';
  if (index % 20 === 3) return 'refuse';
  if (index % 20 === 7) return 'hang';
  if (index % 20 === 13) return 'closed';
  return 'ok';
}

beforeAll(async () => {
  gateway = await startGateway({ boxApiTimeoutMs: TIMEOUT_MS });
  fleet = await startFleet(Array.from({ length: 200 }, (_, i) => behaviorOf(i)));
  await registerFleet(gateway.url, fleet);
}, 60_000);
afterAll(async () => {
  await fleet?.close();
  await gateway?.close();
});

describe('a rollout over 200 boxes', () => {
  it('calls each box once, at most `concurrency` at a time, records each outcome and audit row, and streams its progress to the end', { timeout: 60_000 }, async () => {
    const input = {
      boxIds: fleet.boxes.map((box) => box.globalId),
      settings: { reportPeriodSeconds: 30, settings: { GATE_PASS_MODE: 'allpass' } },
      concurrency: CONCURRENCY,
      // 30 boxes fail: a threshold above that lets it run to the end (see threshold.test.ts for pauses).
      failureThreshold: 31,
    };
    const started = await call(gateway.url, StartRollout, { input });
    expect(started.__typename).toBe('RolloutSuccess');
    const rollout = started.rollout;
    expect(rollout).toMatchObject({
      state: 'RUNNING',
      pausedReason: null,
      concurrency: CONCURRENCY,
      failureThreshold: 31,
      createdBy: 'ADMIN_TOKEN (token #1)',
      finishedAt: null,
      settings: { monitorUrl: null, reportPeriodSeconds: 30, settings: { GATE_PASS_MODE: 'allpass' } },
    });
    expect(rollout.progress.total).toBe(200);

    const client = wsClient(gateway.url);
    try {
      const subscription = wsSubscribe(client, RolloutProgressSubscription, { id: rollout.id });
      await until(() => subscription.pending.length > 0, 'the first rolloutProgress event');
      fleet.release();
      // The stream ends by itself once the rollout is completed; its results wait in `pending`.
      expect(await within(subscription.ended, 45_000, 'end of the rolloutProgress subscription')).toBeUndefined();
      const events = subscription.pending.splice(0);
      expect(events.filter((event) => event.errors !== undefined)).toEqual([]);

      const progress = events.map((event) => event.data.rolloutProgress);
      const last = progress[progress.length - 1];
      expect(last).toMatchObject({ state: 'COMPLETED', progress: { total: 200, pending: 0, running: 0, applied: 170, failed: 30, cancelled: 0 } });
      expect(last.finishedAt).not.toBeNull();
      // Progress only moves forward, and a burst of calls comes as one event (200 calls, far fewer events).
      const done = progress.map((p) => p.progress.applied + p.progress.failed);
      expect(done).toEqual([...done].sort((a, b) => a - b));
      expect(progress.length).toBeGreaterThan(1);
      expect(progress.length).toBeLessThan(150);
    } finally {
      await client.dispose();
    }

    // Every box once; never more than `concurrency` requests at the boxes at once (read-backs included).
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual(fleet.boxes.map((box) => (box.behavior === 'closed' ? 0 : 1)));
    expect(fleet.maxActive).toBeLessThanOrEqual(CONCURRENCY);
    expect(fleet.maxActive).toBeGreaterThan(1);

    const targets = await allTargets(gateway.url, rollout.id);
    expect(targets.map((t) => t.box.id)).toEqual(fleet.boxes.map((box) => box.globalId));
    expect(targets.map((t) => t.position)).toEqual(fleet.boxes.map((_, i) => i + 1));
    for (const [i, target] of targets.entries()) {
      const behavior = fleet.boxes[i]!.behavior;
      expect(target.attempts).toBe(1);
      expect(target.startedAt).not.toBeNull();
      expect(target.finishedAt).not.toBeNull();
      expect(target.change).not.toBeNull();
      if (behavior === 'ok' || behavior === 'hold') expect(target).toMatchObject({ state: 'APPLIED', outcome: 'APPLIED', message: null, change: { outcome: 'APPLIED', errorCode: null } });
      if (behavior === 'refuse') {
        expect(target).toMatchObject({ state: 'FAILED', outcome: 'REJECTED', change: { outcome: 'REJECTED', errorCode: REFUSAL.code } });
        expect(target.message).toBe(`The box refused the settings with ${REFUSAL.code}: ${REFUSAL.message}.`);
      }
      if (behavior === 'hang') {
        expect(target).toMatchObject({ state: 'FAILED', outcome: 'TIMED_OUT', change: { outcome: 'TIMED_OUT', errorCode: 'TIMED_OUT' } });
        expect(target.message).toContain(`did not answer within ${TIMEOUT_MS} ms`);
      }
      if (behavior === 'closed') {
        expect(target).toMatchObject({ state: 'FAILED', outcome: 'UNREACHABLE', change: { outcome: 'UNREACHABLE', errorCode: 'REFUSED' } });
        expect(target.message).toContain(`Could not reach the box at 127.0.0.1:${fleet.boxes[i]!.port}`);
      }
    }

    // The audit trail: one row per box, with the rollout's id and who started it.
    const rolloutId = Number(Buffer.from(rollout.id, 'base64').toString('utf8').split(':')[1]);
    const { rows } = await gateway.sql.query('select box_id, rollout_id, requested_by, outcome from box_config_changes where rollout_id = $1 order by box_id', [rolloutId]);
    expect(rows.map((row) => row.box_id)).toEqual(fleet.boxes.map((box) => box.id).sort((a, b) => a - b));
    expect(new Set(rows.map((row) => row.requested_by))).toEqual(new Set([`ADMIN_TOKEN (token #1) (rollout ${rolloutId})`]));
    // The boxes that took the settings hold them, and their rows keep the period they confirmed.
    for (const box of fleet.boxes.filter((b) => b.behavior === 'ok' || b.behavior === 'hold')) expect(box.config).toMatchObject({ MEDIA_DEVICE_MONITOR_REPORT_PEROID: 30, GATE_PASS_MODE: 'allpass' });
    const periods = await gateway.sql.query('select count(*)::int as n from boxes where id = any($1) and report_period_seconds = 30', [fleet.boxes.map((b) => b.id)]);
    expect(periods.rows[0].n).toBe(170);
  });
});
