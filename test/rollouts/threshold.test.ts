import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { allTargets, call, registerFleet, ResumeRollout, rolloutWhen, StartRollout, startFleet, type Fleet } from './fleet';

// The failure threshold: failures since the start (or the last resume) that reach it pause the
// rollout, and no call starts while it is paused. One call at a time, so the counts are exact.

let gateway: TestGateway;
let fleet: Fleet;
/** Positions 5, 10, ..., 40 refuse: 8 of 40. */
const refuses = (index: number) => index % 5 === 4;

beforeAll(async () => {
  gateway = await startGateway({ boxApiTimeoutMs: 2_000 });
  fleet = await startFleet(Array.from({ length: 40 }, (_, i) => (refuses(i) ? 'refuse' : 'ok')));
  await registerFleet(gateway.url, fleet);
}, 60_000);
afterAll(async () => {
  await fleet?.close();
  await gateway?.close();
});

describe('the failure threshold', () => {
  it('pauses at the threshold, counts afresh after a resume, and retryFailed calls the failed boxes again', { timeout: 60_000 }, async () => {
    const started = await call(gateway.url, StartRollout, {
      input: { boxIds: fleet.boxes.map((box) => box.globalId), settings: { settings: { GATE_PASS_MODE: 'allpass' } }, concurrency: 1, failureThreshold: 3 },
    });
    const id = started.rollout.id;

    // The third failure is the box at position 15: it pauses there, with nothing under way.
    const first = await rolloutWhen(gateway.url, id, (r) => r.state === 'PAUSED', 'the first pause');
    expect(first).toMatchObject({ pausedReason: 'FAILURE_THRESHOLD', progress: { total: 40, pending: 25, running: 0, applied: 12, failed: 3, cancelled: 0 } });
    expect(fleet.calls).toBe(15);
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual(fleet.boxes.map((_, i) => (i < 15 ? 1 : 0)));

    // Resumed, the three earlier failures no longer count: three more (20, 25, 30) pause it again.
    // Had any call started while it was paused, these counts would be off.
    const resumed = await call(gateway.url, ResumeRollout, { id });
    expect(resumed).toMatchObject({ __typename: 'RolloutSuccess', rollout: { state: 'RUNNING', pausedReason: null } });
    const second = await rolloutWhen(gateway.url, id, (r) => r.state === 'PAUSED', 'the second pause');
    expect(second).toMatchObject({ pausedReason: 'FAILURE_THRESHOLD', progress: { pending: 10, running: 0, applied: 24, failed: 6 } });
    expect(fleet.calls).toBe(30);

    // The six failed boxes now take the settings; retried, they and the rest complete it (35 and 40
    // still refuse: two failures, under the threshold counted afresh).
    for (const box of fleet.boxes.slice(0, 30)) if (box.behavior === 'refuse') fleet.behave(box.index, 'ok');
    const retried = await call(gateway.url, ResumeRollout, { id, retryFailed: true });
    // The runner may have started (even finished) the first retried call before this answer read the progress.
    const { pending, running, applied, failed } = retried.rollout.progress;
    expect({ failed, notFailed: pending + running + applied }).toEqual({ failed: 0, notFailed: 40 });
    expect(applied).toBeGreaterThanOrEqual(24);
    const done = await rolloutWhen(gateway.url, id, (r) => r.state === 'COMPLETED', 'completion');
    expect(done.progress).toEqual({ total: 40, pending: 0, running: 0, applied: 38, failed: 2, cancelled: 0 });
    expect(fleet.calls).toBe(46);

    const targets = await allTargets(gateway.url, id);
    expect(targets.map((t) => t.attempts)).toEqual(fleet.boxes.map((_, i) => (refuses(i) && i < 30 ? 2 : 1)));
    expect(targets.map((t) => t.state)).toEqual(fleet.boxes.map((_, i) => (refuses(i) && i >= 30 ? 'FAILED' : 'APPLIED')));

    // A completed rollout is final.
    const again = await call(gateway.url, ResumeRollout, { id });
    expect(again).toEqual({
      __typename: 'RolloutWrongState',
      state: 'COMPLETED',
      message: 'The rollout is completed, which is final; start a new rollout for the boxes (select its failed targets with targets(states: [FAILED])).',
    });
  });
});
