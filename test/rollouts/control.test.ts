import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { defaultFailureThreshold } from '../../src/rollouts/rollouts';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { wsClient, wsSubscribe } from '../helpers/subscriptions';
import { createToken } from '../helpers/tokens';
import { until, within } from '../helpers/wait';
import { allTargets, call, CancelRollout, RolloutQuery, PauseRollout, registerFleet, ResumeRollout, RolloutProgressSubscription, rolloutWhen, StartRollout, startFleet, type Fleet } from './fleet';

// Cancel and pause stop new calls at once (calls under way finish and are recorded), and every
// malformed request is answered with what is wrong, starting nothing and calling no box.

let gateway: TestGateway;
const fleets: Fleet[] = [];

beforeAll(async () => {
  gateway = await startGateway({ boxApiTimeoutMs: 10_000 });
});
afterEach(async () => {
  await Promise.all(fleets.splice(0).map((fleet) => fleet.close()));
});
afterAll(() => gateway?.close());

/** Boxes that hold their answer until `release()`: calls stay under way as long as the test wants. */
async function heldFleet(size: number): Promise<Fleet> {
  const fleet = await startFleet(Array.from({ length: size }, () => 'hold' as const));
  fleets.push(fleet);
  await registerFleet(gateway.url, fleet);
  return fleet;
}

async function start(fleet: Fleet, extra: Record<string, unknown> = {}) {
  const started = await call(gateway.url, StartRollout, { input: { boxIds: fleet.boxes.map((b) => b.globalId), settings: { reportPeriodSeconds: 20 }, concurrency: 5, ...extra } });
  expect(started.__typename).toBe('RolloutSuccess');
  return started.rollout.id as string;
}

const rolloutCount = async () => (await gateway.sql.query('select count(*)::int as n from rollouts')).rows[0].n as number;

describe('cancelRollout', () => {
  it('starts no call once committed; the calls under way finish and are recorded; the subscription ends after them', { timeout: 30_000 }, async () => {
    const fleet = await heldFleet(30);
    const id = await start(fleet);
    let answeredAt = 0;
    await until(() => fleet.active === 5, 'five calls under way at the boxes');

    const client = wsClient(gateway.url);
    try {
      const subscription = wsSubscribe(client, RolloutProgressSubscription, { id });
      expect((await subscription.next()).data.rolloutProgress).toMatchObject({ state: 'RUNNING', progress: { running: 5, pending: 25 } });

      const read = await call(gateway.url, RolloutQuery, { id, first: 0 });
    expect(read.selection).toEqual({ boxIds: fleet.boxes.map((box) => box.globalId) });
    const cancelled = await call(gateway.url, CancelRollout, { id });
      answeredAt = Date.now();
      expect(cancelled).toMatchObject({ __typename: 'RolloutSuccess', rollout: { state: 'CANCELLED', progress: { total: 30, pending: 0, running: 5, cancelled: 25 } } });
      expect(cancelled.rollout.finishedAt).not.toBeNull();

      fleet.release();
      const done = await rolloutWhen(gateway.url, id, (r) => r.progress.running === 0, 'the calls under way to be recorded');
      expect(done).toMatchObject({ state: 'CANCELLED', progress: { pending: 0, running: 0, applied: 5, failed: 0, cancelled: 25 } });
      // The subscription's last event is the rollout with nothing under way; then it completes.
      expect(await within(subscription.ended, 10_000, 'end of the subscription')).toBeUndefined();
      expect(subscription.pending.at(-1)?.data.rolloutProgress).toMatchObject({ state: 'CANCELLED', progress: { running: 0, applied: 5, cancelled: 25 } });
    } finally {
      await client.dispose();
    }

    // Only the five under way were called, each once, all before the cancel was answered.
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual(fleet.boxes.map((_, i) => (i < 5 ? 1 : 0)));
    expect(fleet.boxes.flatMap((box) => box.setconfigs).every((at) => at <= answeredAt)).toBe(true);
    const targets = await allTargets(gateway.url, id);
    expect(targets.map((t) => t.state)).toEqual(fleet.boxes.map((_, i) => (i < 5 ? 'APPLIED' : 'CANCELLED')));
    expect(targets.slice(5).every((t) => t.attempts === 0 && t.change === null)).toBe(true);

    // Twice: nothing changes, and the answer says why.
    expect(await call(gateway.url, CancelRollout, { id })).toEqual({
      __typename: 'RolloutWrongState',
      state: 'CANCELLED',
      message: 'The rollout is cancelled already; only a running or paused rollout can be cancelled.',
    });
    expect((await allTargets(gateway.url, id)).map((t) => t.state)).toEqual(targets.map((t) => t.state));
  });
});

describe('pauseRollout', () => {
  it('starts no call while paused; the calls under way finish; resume completes it', { timeout: 30_000 }, async () => {
    const fleet = await heldFleet(20);
    const id = await start(fleet);
    await until(() => fleet.active === 5, 'five calls under way at the boxes');
    const paused = await call(gateway.url, PauseRollout, { id });
    expect(paused).toMatchObject({ __typename: 'RolloutSuccess', rollout: { state: 'PAUSED', pausedReason: 'OPERATOR', progress: { running: 5, pending: 15 } } });
    expect(await call(gateway.url, PauseRollout, { id })).toMatchObject({ __typename: 'RolloutWrongState', state: 'PAUSED' });

    fleet.release();
    const settled = await rolloutWhen(gateway.url, id, (r) => r.progress.running === 0, 'the calls under way to be recorded');
    expect(settled).toMatchObject({ state: 'PAUSED', progress: { applied: 5, pending: 15 } });
    expect(fleet.calls).toBe(5);

    expect(await call(gateway.url, ResumeRollout, { id })).toMatchObject({ __typename: 'RolloutSuccess', rollout: { state: 'RUNNING' } });
    const done = await rolloutWhen(gateway.url, id, (r) => r.state === 'COMPLETED', 'completion');
    expect(done.progress).toMatchObject({ applied: 20, failed: 0 });
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual(fleet.boxes.map(() => 1));
    expect(fleet.maxActive).toBeLessThanOrEqual(5);
  });
});

describe('bad input starts nothing and calls no box', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet(['ok', 'ok']);
    await registerFleet(gateway.url, fleet);
  });
  afterAll(() => fleet?.close());

  const settings = { reportPeriodSeconds: 30 };
  const cases: Array<[string, () => Record<string, unknown>, Array<{ field: string; message: string }>]> = [
    [
      'both boxIds and filter',
      () => ({ boxIds: [fleet.boxes[0]!.globalId], filter: { status: ['ONLINE'] }, settings }),
      [{ field: 'boxIds', message: 'Give exactly one of boxIds and filter: the boxes by id, or the boxes a BoxFilter matches.' }],
    ],
    ['neither boxIds nor filter', () => ({ settings }), [{ field: 'boxIds', message: 'Give exactly one of boxIds and filter: the boxes by id, or the boxes a BoxFilter matches.' }]],
    ['empty boxIds', () => ({ boxIds: [], settings }), [{ field: 'boxIds', message: 'boxIds is empty: give at least one Box id.' }]],
    [
      'an unknown box id among known ones',
      () => ({ boxIds: [fleet.boxes[0]!.globalId, encodeGlobalId('Box', 999_999)], settings }),
      [{ field: 'boxIds', message: `No box has the id ${encodeGlobalId('Box', 999_999)} (never registered, or removed): leave it out of boxIds.` }],
    ],
    [
      'an id that is not a box id',
      () => ({ boxIds: [encodeGlobalId('Device', 1)], settings }),
      [{ field: 'boxIds.0', message: `${JSON.stringify(encodeGlobalId('Device', 1))} is not a Box id; use the \`id\` of a Box this API returned.` }],
    ],
    [
      'a filter matching no box',
      () => ({ filter: { search: 'no-such-box-anywhere' }, settings }),
      [{ field: 'filter', message: 'The filter matches no box: nothing to roll out. Check it with the boxes query.' }],
    ],
    [
      'invalid settings',
      () => ({ boxIds: [fleet.boxes[0]!.globalId], settings: { reportPeriodSeconds: 2.5, settings: { lower_case: 1 } } }),
      [
        { field: 'settings.reportPeriodSeconds', message: 'The report period must be a whole number of seconds from 1 to 3600.' },
        { field: 'settings.settings.lower_case', message: '"lower_case" is not a box setting name: upper-case letters, digits and _ , starting with a letter.' },
      ],
    ],
    ['no settings at all', () => ({ boxIds: [fleet.boxes[0]!.globalId], settings: {} }), [{ field: 'settings.input', message: 'Nothing to set: give monitorUrl, reportPeriodSeconds or settings.' }]],
    [
      'concurrency 0',
      () => ({ boxIds: [fleet.boxes[0]!.globalId], settings, concurrency: 0 }),
      [{ field: 'concurrency', message: 'concurrency must be a whole number from 1 to 100 (box calls under way at once); it was 0.' }],
    ],
    [
      'concurrency 1000',
      () => ({ boxIds: [fleet.boxes[0]!.globalId], settings, concurrency: 1000 }),
      [{ field: 'concurrency', message: 'concurrency must be a whole number from 1 to 100 (box calls under way at once); it was 1000.' }],
    ],
    [
      'failureThreshold 0',
      () => ({ boxIds: [fleet.boxes[0]!.globalId], settings, failureThreshold: 0 }),
      [{ field: 'failureThreshold', message: 'failureThreshold must be a whole number of at least 1 (failures that pause the rollout); it was 0. Leave it out for 10% of the boxes.' }],
    ],
  ];

  it.each(cases)('%s', async (_name, input, problems) => {
    const before = await rolloutCount();
    const result = await call(gateway.url, StartRollout, { input: input() });
    expect(result).toEqual({ __typename: 'InvalidRolloutInput', problems, message: `${problems.map((p) => p.message).join(' ')} Nothing was started.` });
    expect(await rolloutCount()).toBe(before);
    expect(fleet.calls).toBe(0);
  });

  it('a filter selects the boxes it matches, in id order, and the default threshold is 10% of them', async () => {
    const before = await rolloutCount();
    // The licence keys end in ".": "<fleet>-1." matches that box alone, "<fleet>-" both.
    const fleetPrefix = fleet.boxes[0]!.licenseKey.replace(/-0\.$/, '-');
    const started = await call(gateway.url, StartRollout, { input: { filter: { search: fleetPrefix }, settings } });
    expect(started.__typename).toBe('RolloutSuccess');
    expect(started.rollout).toMatchObject({ failureThreshold: 1, progress: { total: 2 }, selection: { filter: { search: fleetPrefix } } });
    expect(await rolloutCount()).toBe(before + 1);
    const targets = await allTargets(gateway.url, started.rollout.id);
    expect(targets.map((t) => t.box.id)).toEqual([...fleet.boxes].sort((a, b) => a.id - b.id).map((b) => b.globalId));
    await rolloutWhen(gateway.url, started.rollout.id, (r) => r.state === 'COMPLETED', 'completion');
    expect(fleet.boxes.map((box) => box.setconfigs.length)).toEqual([1, 1]);

    // Ten boxes or fewer: 1; 11 to 20: 2; and so on (10%, rounded up).
    expect(defaultFailureThreshold(10)).toBe(1);
    expect(defaultFailureThreshold(11)).toBe(2);
    expect(defaultFailureThreshold(200)).toBe(20);
  });

  it('unknown and malformed rollout ids are RolloutNotFound; rollout(id) is null', async () => {
    const unknown = encodeGlobalId('Rollout', 987_654);
    for (const document of [PauseRollout, ResumeRollout, CancelRollout]) {
      expect(await call(gateway.url, document, { id: unknown })).toEqual({
        __typename: 'RolloutNotFound',
        id: unknown,
        message: `There is no rollout with id ${JSON.stringify(unknown)}; use the \`id\` of a Rollout this API returned (see the rollouts query).`,
      });
      expect(await call(gateway.url, document, { id: encodeGlobalId('Box', 1) })).toMatchObject({ __typename: 'RolloutNotFound' });
    }
    const { body } = await graphql<any, any>(gateway.url, 'query($id: ID!) { rollout(id: $id) { id } }', { id: unknown });
    expect(body).toEqual({ data: { rollout: null } });
    const client = wsClient(gateway.url);
    try {
      const subscription = wsSubscribe(client, RolloutProgressSubscription, { id: unknown });
      // The refusal is the stream's one result, then it completes.
      expect(await within(subscription.ended, 5_000, 'the refusal of the subscription')).toBeUndefined();
      expect(subscription.pending).toEqual([
        {
          errors: [expect.objectContaining({ message: `There is no rollout with id ${JSON.stringify(unknown)}; use the \`id\` of a Rollout this API returned (see the rollouts query).`, extensions: { code: 'NOT_FOUND' } })],
        },
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('a viewer may read rollouts but not start one', async () => {
    const viewer = await createToken(gateway.url, 'viewer', 'rollout-viewer');
    const before = await rolloutCount();
    const { body } = await graphql<any, any>(gateway.url, StartRollout, { input: { boxIds: [fleet.boxes[0]!.globalId], settings } }, { token: viewer.token });
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await rolloutCount()).toBe(before);
    const read = await graphql<any, any>(gateway.url, 'query { rollouts(first: 5) { totalCount nodes { id state } } }', undefined, { token: viewer.token });
    expect(read.body.errors).toBeUndefined();
    expect(read.body.data.rollouts.totalCount).toBeGreaterThanOrEqual(0);
  });
});
