import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send, query } from '../helpers/graphql';
import { graphql } from './generated';
import { DAY, HOUR, insertBox, insertDevice } from './history-fixture';

// Bad ranges on every history field: a GraphQL error whose extensions name the code and the
// argument, never an internal error.
let gateway: TestGateway;
let deviceId: string;
let boxId: string;

beforeAll(async () => {
  gateway = await startGateway();
  const box = await insertBox(gateway.sql, 'HR-BOX', [[new Date(Date.now() - DAY), null, 'online']]);
  boxId = encodeGlobalId('Box', box);
  deviceId = encodeGlobalId('Device', await insertDevice(gateway.sql, box, 'cam', [[new Date(Date.now() - DAY), null, 'online']]));
});
afterAll(() => gateway?.close());

const DeviceRange = graphql(`
  query HistoryRangeDevice($id: ID!, $since: DateTime!, $until: DateTime) {
    node(id: $id) { ... on Device { availability(since: $since, until: $until) { availability } } }
  }
`);
const BoxRange = graphql(`
  query HistoryRangeBox($id: ID!, $since: DateTime!, $until: DateTime) {
    node(id: $id) { ... on Box { availability(since: $since, until: $until) { availability } } }
  }
`);
const FleetRange = graphql(`
  query HistoryRangeFleet($since: DateTime!, $until: DateTime, $bucket: HistoryBucket!) {
    fleetAvailability(since: $since, until: $until, bucket: $bucket) { buckets { start } }
  }
`);
const RankingRange = graphql(`
  query HistoryRangeRanking($since: DateTime!, $until: DateTime) {
    devicesByTimeOffline(since: $since, until: $until) { totalCount }
  }
`);

const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

/** Sends `since`/`until` to every history field; each answers 200 with one error of `code` on `argument`. */
async function expectRefusedEverywhere(range: { since: string; until?: string }, code: string, argument: string, message: RegExp) {
  const responses = [
    await send(gateway.url, DeviceRange, { id: deviceId, ...range }),
    await send(gateway.url, BoxRange, { id: boxId, ...range }),
    await send(gateway.url, FleetRange, { ...range, bucket: 'DAY' }),
    await send(gateway.url, RankingRange, range),
  ];
  for (const response of responses) {
    expect(response.status).toBe(200);
    expect(response.body.errors, JSON.stringify(response.body)).toHaveLength(1);
    expect(response.body.errors![0]!.extensions).toMatchObject({ code, argument });
    expect(response.body.errors![0]!.message).toMatch(message);
  }
}

describe('bad history ranges', () => {
  it('`until` not after `since`: INVALID_RANGE on until', async () => {
    const since = ago(2 * HOUR);
    await expectRefusedEverywhere({ since, until: since }, 'INVALID_RANGE', 'until', /must be later than `since`/);
    await expectRefusedEverywhere({ since, until: ago(3 * HOUR) }, 'INVALID_RANGE', 'until', /must be later than `since`/);
    // Omitted `until` is now: a `since` in the future is a range that ends before it starts.
    await expectRefusedEverywhere({ since: new Date(Date.now() + HOUR).toISOString() }, 'INVALID_RANGE', 'until', /must be later/);
  });

  it('`since` older than the history kept: BEYOND_RETENTION on since, naming the oldest allowed and the setting', async () => {
    await expectRefusedEverywhere({ since: ago(401 * DAY) }, 'BEYOND_RETENTION', 'since', /HISTORY_RETENTION_DAYS is 400, so the oldest `since` allowed now is \d{4}-/);
    const response = await send(gateway.url, RankingRange, { since: ago(401 * DAY) });
    expect(response.body.errors![0]!.extensions).toMatchObject({ retentionDays: 400, oldestSince: expect.any(String) });
    // Just inside the retention is fine.
    await query(gateway.url, RankingRange, { since: ago(399 * DAY) });
  });

  it('more buckets than allowed: TOO_MANY_BUCKETS on bucket, naming the largest range', async () => {
    // 1,000 whole UTC hours are allowed; one more (or the same length not on the hour) is not.
    const hour = Math.floor(Date.now() / HOUR) * HOUR - 2 * DAY;
    const since = new Date(hour - 1000 * HOUR);
    const ok = await query(gateway.url, FleetRange, { since: since.toISOString(), until: new Date(hour).toISOString(), bucket: 'HOUR' });
    expect(ok.fleetAvailability.buckets).toHaveLength(1000);
    for (const range of [
      { since: new Date(hour - 1001 * HOUR).toISOString(), until: new Date(hour).toISOString() },
      { since: new Date(since.getTime() + 60_000).toISOString(), until: new Date(hour + 60_000).toISOString() },
    ]) {
      const response = await send(gateway.url, FleetRange, { ...range, bucket: 'HOUR' });
      expect(response.status).toBe(200);
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: 'TOO_MANY_BUCKETS', argument: 'bucket', maxBuckets: 1000 });
      expect(response.body.errors?.[0]?.message).toMatch(/at most 1000 UTC hours \(about 41 days\)/);
    }
    // 399 days by DAY are 400 buckets at most: allowed.
    const days = await query(gateway.url, FleetRange, { since: ago(399 * DAY), bucket: 'DAY' });
    expect(days.fleetAvailability.buckets.length).toBeLessThanOrEqual(400);
  });

  it('an unknown bucket is refused by validation, in the document or in variables', async () => {
    const literal = await send(gateway.url, `{ fleetAvailability(since: "${ago(DAY)}", bucket: WEEK) { availability } }`);
    expect(literal.status).toBe(400);
    expect(literal.body.errors?.[0]).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' }, message: expect.stringMatching(/"WEEK" does not exist in "HistoryBucket" enum/) });
    const variable = await send(gateway.url, FleetRange, { since: ago(DAY), bucket: 'WEEK' as 'DAY' });
    expect(variable.status).toBe(400);
    expect(variable.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringMatching(/Variable "\$bucket" got invalid value "WEEK"/) });
  });

  it('a time that is not a DateTime is refused with the variable named', async () => {
    const response = await send(gateway.url, RankingRange, { since: 'yesterday' });
    expect(response.status).toBe(400);
    expect(response.body.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' }, message: expect.stringMatching(/\$since/) });
  });
});
