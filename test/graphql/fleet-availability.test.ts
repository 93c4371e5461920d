import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { recordStatements } from '../helpers/statements';
import { graphql } from './generated';
import { at, DAY, daysAgo, HOUR, insertBox, insertDevice } from './history-fixture';

// fleetAvailability against sums done by hand, and against the sum of every device's own
// availability (computed the other way: each device's history in order). T is a UTC midnight 20 days ago.
const T = daysAgo(20);
const MINUTE = 60_000;
const LONG_AGO = at(T, -DAY);

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startGateway();
  const db = gateway.sql;
  const box = await insertBox(db, 'FA-BOX', [[at(T, -10 * DAY), null, 'online']]);
  // d1 goes offline at 2:30; d2 is first seen at 2:15; d3 is removed at 1:45; d4 is UNKNOWN throughout;
  // d6 goes offline at 5:00, after every range below (its later event must be counted back).
  await insertDevice(db, box, 'd1', [
    [LONG_AGO, null, 'online'],
    [at(T, 2.5 * HOUR), 'online', 'offline'],
  ]);
  await insertDevice(db, box, 'd2', [[at(T, 2 * HOUR + 15 * MINUTE), null, 'online']]);
  await insertDevice(db, box, 'd3', [
    [LONG_AGO, null, 'online'],
    [at(T, HOUR + 45 * MINUTE), 'online', 'removed'],
  ]);
  await insertDevice(db, box, 'd4', [[LONG_AGO, null, 'unknown']]);
  await insertDevice(db, box, 'd6', [
    [LONG_AGO, null, 'online'],
    [at(T, 5 * HOUR), 'online', 'offline'],
  ]);
  // A removed box's device is left out, as all of a removed box's history is.
  const removed = await insertBox(db, 'FA-REMOVED', [
    [at(T, -10 * DAY), null, 'online'],
    [at(T, -HOUR), 'online', 'removed'],
  ]);
  await insertDevice(db, removed, 'd5', [[LONG_AGO, null, 'online']]);
});
afterAll(() => gateway?.close());

const FleetAvailability = graphql(`
  query FleetAvailability($since: DateTime!, $until: DateTime, $bucket: HistoryBucket!) {
    fleetAvailability(since: $since, until: $until, bucket: $bucket) {
      since until bucket observedSeconds onlineSeconds offlineSeconds unknownSeconds availability
      buckets { start end observedSeconds onlineSeconds offlineSeconds unknownSeconds availability }
    }
  }
`);

const EveryDevice = graphql(`
  query FleetAvailabilityEveryDevice($since: DateTime!, $until: DateTime) {
    devices(first: 50, filter: { removed: null }) {
      nodes { name availability(since: $since, until: $until) { observedSeconds onlineSeconds offlineSeconds unknownSeconds } }
    }
  }
`);

const H = 3600;
const iso = (ms: number) => at(T, ms).toISOString();

function expectClose(actual: Record<string, unknown>, expected: Record<string, number | string>) {
  for (const [key, value] of Object.entries(expected)) {
    if (typeof value === 'number') expect(actual[key], key).toBeCloseTo(value, 6);
    else expect(actual[key], key).toBe(value);
  }
}

describe('fleetAvailability, by hand', () => {
  it('by HOUR: a first bucket cut at since, one with changes inside, one steady', async () => {
    const { fleetAvailability: fleet } = await query(gateway.url, FleetAvailability, { since: iso(1.5 * HOUR), until: iso(4 * HOUR), bucket: 'HOUR' });
    expect(fleet.bucket).toBe('HOUR');
    expect(fleet.buckets).toHaveLength(3);
    // 1:30-2:00: d1, d6 online 1800 each, d3 online until 1:45 (900); d4 unknown.
    expectClose(fleet.buckets[0]!, { start: iso(1.5 * HOUR), end: iso(2 * HOUR), onlineSeconds: 4500, offlineSeconds: 0, unknownSeconds: 1800, observedSeconds: 6300 });
    // 2:00-3:00: d1 online 1800 then offline 1800; d2 online from 2:15 (2700); d6 online; d4 unknown.
    expectClose(fleet.buckets[1]!, { start: iso(2 * HOUR), end: iso(3 * HOUR), onlineSeconds: 8100, offlineSeconds: 1800, unknownSeconds: H, observedSeconds: 13500 });
    expect(fleet.buckets[1]!.availability).toBeCloseTo(8100 / 13500, 9);
    // 3:00-4:00: d1 offline; d2, d6 online; d4 unknown.
    expectClose(fleet.buckets[2]!, { start: iso(3 * HOUR), end: iso(4 * HOUR), onlineSeconds: 2 * H, offlineSeconds: H, unknownSeconds: H, observedSeconds: 4 * H });
    expectClose(fleet, { onlineSeconds: 19800, offlineSeconds: 5400, unknownSeconds: 9000, observedSeconds: 34200 });
    expect(fleet.availability).toBeCloseTo(19800 / 34200, 9);
  });

  it('by DAY: a day cut at since, and a part of the next', async () => {
    const { fleetAvailability: fleet } = await query(gateway.url, FleetAvailability, { since: iso(-12 * HOUR), until: iso(4 * HOUR), bucket: 'DAY' });
    expect(fleet.buckets.map((b) => [b.start, b.end])).toEqual([
      [iso(-12 * HOUR), iso(0)],
      [iso(0), iso(4 * HOUR)],
    ]);
    // The 12 hours before T: d1, d3, d6 online, d4 unknown.
    expectClose(fleet.buckets[0]!, { onlineSeconds: 3 * 12 * H, offlineSeconds: 0, unknownSeconds: 12 * H, observedSeconds: 4 * 12 * H });
    // T to 4:00: d1 online 2.5 h, offline 1.5 h; d2 online 1:45; d3 online 1:45; d6 online 4 h; d4 unknown 4 h.
    expectClose(fleet.buckets[1]!, { onlineSeconds: 36000, offlineSeconds: 5400, unknownSeconds: 4 * H, observedSeconds: 55800 });
  });

  it('equals the sum of every device’s own availability, over any range', async () => {
    for (const [since, until] of [
      [iso(-12 * HOUR), iso(4 * HOUR)],
      [iso(2 * HOUR + 15 * MINUTE), iso(6 * HOUR)],
      [iso(HOUR), undefined],
    ] as const) {
      const { fleetAvailability: fleet } = await query(gateway.url, FleetAvailability, { since, until, bucket: 'HOUR' });
      const { devices } = await query(gateway.url, EveryDevice, { since, until: fleet.until });
      expect(devices.nodes.map((d) => d.name).sort()).toEqual(['d1', 'd2', 'd3', 'd4', 'd6']);
      for (const key of ['observedSeconds', 'onlineSeconds', 'offlineSeconds', 'unknownSeconds'] as const) {
        const sum = devices.nodes.reduce((total, d) => total + d.availability[key], 0);
        expect(fleet[key], `${key} from ${since}`).toBeCloseTo(sum, 3);
        expect(fleet.buckets.reduce((total, b) => total + b[key], 0)).toBeCloseTo(fleet[key], 3);
      }
    }
  });

  it('one statement for any number of buckets', async () => {
    for (const [since, bucket] of [
      [iso(3 * HOUR), 'HOUR'],
      [iso(-15 * DAY), 'HOUR'],
      [iso(-15 * DAY), 'DAY'],
    ] as const) {
      const statements = await recordStatements([gateway.app.apiPool, gateway.app.pool], async () => {
        const { fleetAvailability: fleet } = await query(gateway.url, FleetAvailability, { since, until: iso(4 * HOUR), bucket });
        expect(fleet.buckets.length).toBeGreaterThan(0);
      });
      // The response cache's snapshot, and the aggregate (its first run may also look up the token).
      expect(statements.filter((s) => /status_events/.test(s)), statements.join('\n---\n')).toHaveLength(1);
    }
  });
});
