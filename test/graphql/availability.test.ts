import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { isPartitioned, listPartitions, monthStart } from '../../src/history/partitions';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { recordStatements } from '../helpers/statements';
import { graphql } from './generated';
import { at, DAY, daysAgo, HOUR, insertBox, insertDevice } from './history-fixture';

// Device.availability and Box.availability against sums done by hand. T is a UTC midnight 20 days
// ago; most ranges are [T, T + 10 h). Histories are written by SQL with chosen times.
const T = daysAgo(20);
const RANGE = { since: T.toISOString(), until: at(T, 10 * HOUR).toISOString() };
const LONG_AGO = at(T, -5 * DAY);
/** The start of last month: an outage across it spans two partitions of the history. */
const MONTH = monthStart(new Date(), -1);

let gateway: TestGateway;
const devices: Record<string, string> = {};
const boxes: Record<string, string> = {};

beforeAll(async () => {
  gateway = await startGateway();
  const db = gateway.sql;
  const box = await insertBox(db, 'AV-BOX', [[LONG_AGO, null, 'online']]);
  const cases: Record<string, [Date, string | null, string][]> = {
    alwaysOnline: [[LONG_AGO, null, 'online']],
    oneOutage: [
      [LONG_AGO, null, 'online'],
      [at(T, 2 * HOUR), 'online', 'offline'],
      [at(T, 5 * HOUR), 'offline', 'online'],
    ],
    midOutage: [
      [LONG_AGO, null, 'online'],
      [at(T, -HOUR), 'online', 'offline'],
      [at(T, HOUR), 'offline', 'online'],
    ],
    // As midOutage, with everything before `since` gone (as retention drops it).
    midOutageNoPast: [[at(T, HOUR), 'offline', 'online']],
    outageAtUntil: [
      [LONG_AGO, null, 'online'],
      [at(T, 8 * HOUR), 'online', 'offline'],
    ],
    firstSeenInside: [
      [at(T, 4 * HOUR), null, 'online'],
      [at(T, 6 * HOUR), 'online', 'offline'],
    ],
    removedAndBack: [
      [LONG_AGO, null, 'online'],
      [at(T, 3 * HOUR), 'online', 'removed'],
      [at(T, 6 * HOUR), 'removed', 'offline'],
      [at(T, 7 * HOUR), 'offline', 'online'],
    ],
    unknownHour: [
      [LONG_AGO, null, 'online'],
      [at(T, HOUR), 'online', 'unknown'],
      [at(T, 2 * HOUR), 'unknown', 'online'],
    ],
    acrossMonths: [
      [at(MONTH, -10 * DAY), null, 'online'],
      [at(MONTH, -2 * HOUR), 'online', 'offline'],
      [at(MONTH, 3 * HOUR), 'offline', 'online'],
    ],
  };
  for (const [name, changes] of Object.entries(cases)) devices[name] = encodeGlobalId('Device', await insertDevice(db, box, name, changes));

  boxes.history = encodeGlobalId(
    'Box',
    await insertBox(db, 'AV-HISTORY', [
      [LONG_AGO, null, 'online'],
      [at(T, 2 * HOUR), 'online', 'offline'],
      [at(T, 4 * HOUR), 'offline', 'online'],
      [at(T, 6 * HOUR), 'online', 'removed'],
      [at(T, 8 * HOUR), 'removed', 'offline'],
      [at(T, 9 * HOUR), 'offline', 'online'],
    ]),
  );
  boxes.neverReported = encodeGlobalId('Box', await insertBox(db, 'AV-REGISTERED'));
  // For the statement count: 60 boxes of one device each, seen long ago and online since.
  await db.query(
    `with b as (insert into boxes (license_key, status, last_report_at) select 'AV-MANY-' || n, 'online', now() from generate_series(1, 60) n returning id),
     d as (insert into devices (box_id, external_id, name, type, status, status_since, first_seen_at, updated_at)
           select id, 'cam', 'cam', 'rtsp', 'online', $1, $1, $1 from b returning id, box_id)
     insert into status_events (box_id, device_id, from_status, to_status, at) select box_id, id, null, 'online', $1 from d`,
    [LONG_AGO],
  );
});
afterAll(() => gateway?.close());

const DeviceAvailability = graphql(`
  query DeviceAvailability($id: ID!, $since: DateTime!, $until: DateTime) {
    node(id: $id) {
      ... on Device {
        availability(since: $since, until: $until) {
          since until observedSeconds onlineSeconds offlineSeconds unknownSeconds availability outages longestOutageSeconds
        }
      }
    }
  }
`);

const BoxAvailability = graphql(`
  query BoxAvailability($id: ID!, $since: DateTime!, $until: DateTime) {
    node(id: $id) {
      ... on Box {
        availability(since: $since, until: $until) { since until observedSeconds onlineSeconds offlineSeconds availability outages longestOutageSeconds }
      }
    }
  }
`);

async function deviceAvailability(name: string, range: { since: string; until?: string } = RANGE) {
  const { node } = await query(gateway.url, DeviceAvailability, { id: devices[name]!, ...range });
  if (!node || !('availability' in node)) throw new Error(`device ${name} not found`);
  return node.availability;
}

const H = 3600;

describe('Device.availability, by hand', () => {
  it('online for the whole range', async () => {
    expect(await deviceAvailability('alwaysOnline')).toMatchObject({
      since: RANGE.since,
      until: RANGE.until,
      observedSeconds: 10 * H,
      onlineSeconds: 10 * H,
      offlineSeconds: 0,
      unknownSeconds: 0,
      availability: 1,
      outages: 0,
      longestOutageSeconds: 0,
    });
  });

  it('one outage inside the range', async () => {
    expect(await deviceAvailability('oneOutage')).toMatchObject({
      observedSeconds: 10 * H,
      onlineSeconds: 7 * H,
      offlineSeconds: 3 * H,
      availability: 0.7,
      outages: 1,
      longestOutageSeconds: 3 * H,
    });
  });

  it('a range starting mid-outage counts the outage from `since`, with or without the history before it', async () => {
    const expected = { observedSeconds: 10 * H, onlineSeconds: 9 * H, offlineSeconds: H, outages: 1, longestOutageSeconds: H };
    expect(await deviceAvailability('midOutage')).toMatchObject(expected);
    expect(await deviceAvailability('midOutageNoPast')).toMatchObject(expected);
  });

  it('an outage still under way at `until`, and at now when `until` is omitted', async () => {
    expect(await deviceAvailability('outageAtUntil')).toMatchObject({ onlineSeconds: 8 * H, offlineSeconds: 2 * H, outages: 1, longestOutageSeconds: 2 * H });
    const before = Date.now();
    const open = await deviceAvailability('outageAtUntil', { since: RANGE.since });
    const until = Date.parse(open.until);
    expect(until).toBeGreaterThanOrEqual(before - 1000);
    expect(until).toBeLessThanOrEqual(Date.now());
    expect(open.offlineSeconds).toBeCloseTo((until - at(T, 8 * HOUR).getTime()) / 1000, 3);
    expect(open.longestOutageSeconds).toBeCloseTo(open.offlineSeconds, 6);
    expect(open.observedSeconds).toBeCloseTo((until - T.getTime()) / 1000, 3);
    // A later `until` is cut at now: the time to come is not observed.
    const future = await deviceAvailability('outageAtUntil', { since: RANGE.since, until: new Date(Date.now() + DAY).toISOString() });
    expect(Date.parse(future.until)).toBeLessThanOrEqual(Date.now());
    expect(future.observedSeconds).toBeCloseTo((Date.parse(future.until) - T.getTime()) / 1000, 3);
  });

  it('a device first seen inside the range is observed from then on', async () => {
    expect(await deviceAvailability('firstSeenInside')).toMatchObject({
      observedSeconds: 6 * H,
      onlineSeconds: 2 * H,
      offlineSeconds: 4 * H,
      availability: 1 / 3,
      outages: 1,
      longestOutageSeconds: 4 * H,
    });
    // A range wholly before it was first seen observes nothing.
    expect(await deviceAvailability('firstSeenInside', { since: RANGE.since, until: at(T, 4 * HOUR).toISOString() })).toMatchObject({
      observedSeconds: 0,
      availability: null,
      outages: 0,
    });
  });

  it('removed and back: not observed while removed', async () => {
    expect(await deviceAvailability('removedAndBack')).toMatchObject({
      observedSeconds: 7 * H,
      onlineSeconds: 6 * H,
      offlineSeconds: H,
      availability: 6 / 7,
      outages: 1,
      longestOutageSeconds: H,
    });
  });

  it('time in an unknown status is observed, neither online nor offline', async () => {
    expect(await deviceAvailability('unknownHour')).toMatchObject({ observedSeconds: 10 * H, onlineSeconds: 9 * H, unknownSeconds: H, availability: 0.9, outages: 0 });
  });

  it('an outage across a month boundary (two partitions of the history)', async () => {
    const client = await gateway.sql.connect();
    try {
      expect(await isPartitioned(client, 'status_events')).toBe(true);
      const partitions = await listPartitions(client, 'status_events');
      expect(partitions.some((p) => p.to.getTime() === MONTH.getTime()) && partitions.some((p) => p.from.getTime() === MONTH.getTime())).toBe(true);
    } finally {
      client.release();
    }
    const around = { since: at(MONTH, -DAY).toISOString(), until: at(MONTH, DAY).toISOString() };
    expect(await deviceAvailability('acrossMonths', around)).toMatchObject({ observedSeconds: 48 * H, offlineSeconds: 5 * H, outages: 1, longestOutageSeconds: 5 * H });
    // Starting at the boundary, mid-outage: the first event of the new month says it was offline.
    const after = { since: MONTH.toISOString(), until: at(MONTH, DAY).toISOString() };
    expect(await deviceAvailability('acrossMonths', after)).toMatchObject({ observedSeconds: 24 * H, offlineSeconds: 3 * H, outages: 1, longestOutageSeconds: 3 * H });
    // Ending at the boundary, mid-outage.
    const before = { since: at(MONTH, -DAY).toISOString(), until: MONTH.toISOString() };
    expect(await deviceAvailability('acrossMonths', before)).toMatchObject({ observedSeconds: 24 * H, offlineSeconds: 2 * H, outages: 1, longestOutageSeconds: 2 * H });
  });
});

describe('Box.availability, by hand', () => {
  it('its own status: online, silent, removed and restored', async () => {
    const data = await query(gateway.url, BoxAvailability, { id: boxes.history!, ...RANGE });
    expect(data.node).toMatchObject({
      availability: {
        observedSeconds: 8 * H,
        onlineSeconds: 5 * H,
        offlineSeconds: 3 * H,
        availability: 5 / 8,
        outages: 2,
        longestOutageSeconds: 2 * H,
      },
    });
  });

  it('a registered box that never reported observed nothing', async () => {
    const data = await query(gateway.url, BoxAvailability, { id: boxes.neverReported!, ...RANGE });
    expect(data.node).toMatchObject({ availability: { observedSeconds: 0, availability: null, outages: 0 } });
  });
});

const DevicesWithAvailability = graphql(`
  query DevicesWithAvailability($first: Int!, $since: DateTime!, $until: DateTime) {
    devices(first: $first, filter: { search: "cam" }) {
      nodes { id availability(since: $since, until: $until) { availability outages } }
    }
  }
`);

const BoxesWithAvailability = graphql(`
  query BoxesWithAvailability($first: Int!, $since: DateTime!, $until: DateTime) {
    boxes(first: $first, filter: { search: "AV-MANY" }) {
      nodes { id availability(since: $since, until: $until) { availability outages } }
    }
  }
`);

describe('N+1-free', () => {
  const pools = () => [gateway.app.apiPool, gateway.app.pool];
  // A token is looked up once, on its first request: that statement is the token's, not a response's.
  beforeAll(() => query(gateway.url, graphql(`query AvailabilityWarmUp { __typename }`)));

  it('a page of 50 devices with their availability costs the statements a page of 1 does', async () => {
    const one = await recordStatements(pools(), () => query(gateway.url, DevicesWithAvailability, { first: 1, ...RANGE }));
    const fifty = await recordStatements(pools(), async () => {
      const data = await query(gateway.url, DevicesWithAvailability, { first: 50, ...RANGE });
      expect(data.devices.nodes).toHaveLength(50);
      for (const node of data.devices.nodes) expect(node.availability).toEqual({ availability: 1, outages: 0 });
    });
    // snapshot; devices page; their availability.
    expect(fifty, fifty.join('\n---\n')).toHaveLength(3);
    expect(one).toHaveLength(fifty.length);
  });

  it('a page of 50 boxes with their availability costs the statements a page of 1 does', async () => {
    const one = await recordStatements(pools(), () => query(gateway.url, BoxesWithAvailability, { first: 1, since: RANGE.since }));
    const fifty = await recordStatements(pools(), async () => {
      const data = await query(gateway.url, BoxesWithAvailability, { first: 50, since: RANGE.since });
      expect(data.boxes.nodes).toHaveLength(50);
    });
    // snapshot; boxes page; their availability.
    expect(fifty, fifty.join('\n---\n')).toHaveLength(3);
    expect(one).toHaveLength(fifty.length);
  });
});
