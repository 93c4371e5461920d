import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe, type Subscription } from '../helpers/subscriptions';
import { until } from '../helpers/wait';
import { eventNumber, storedEvents, withCursorsRead, type StoredEvent } from '../helpers/stored-events';

// statusEvents(after:) replays stored events, then live ones. Many clients replaying overlapping ranges
// at once (which the gateway may serve from shared reads) must each get exactly the stored events after
// its own cursor that match its own filter, in id order, then the live ones: no gap, no duplicate.

let gateway: TestGateway;
const closers: Array<() => unknown> = [];

beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(async () => {
  for (const close of closers) await close();
  await gateway?.close();
});

const DEVICES = 20;
const ROUNDS = 18;
const STORED = 3 + 3 * DEVICES * (1 + ROUNDS);
/** A report of `licenseKey` with every device offline on odd rounds, online on even ones; cam0 as `cam0`. */
async function flip(licenseKey: string, round: number, cam0?: 'online' | 'offline'): Promise<string> {
  const status = round % 2 ? 'offline' : 'online';
  const response = await postReport(gateway.url, {
    mq_license_key: licenseKey,
    media_devices: Array.from({ length: DEVICES }, (_, i) => ({
      media_device_id: `cam${i}`,
      media_device_name: `camera ${i} of ${licenseKey}`,
      media_device_type: i % 2 ? 'photo' : 'rtsp',
      media_device_status: i === 0 && cam0 ? cam0 : status,
    })),
  });
  expect(response.status, response.text).toBe(200);
  return (response.json as { boxId: string }).boxId;
}

const REPLAY = `subscription Replay($after: String, $filter: StatusEventFilter) {
  statusEvents(after: $after, filter: $filter) { id cursor subject fromStatus toStatus at device { externalId name type } box { licenseKey } }
}`;

const result = (e: StoredEvent) => ({
  data: {
    statusEvents: {
      id: e.id,
      cursor: e.cursor,
      subject: e.subject,
      fromStatus: e.fromStatus,
      toStatus: e.toStatus,
      at: e.at,
      device: e.device && { externalId: e.device.externalId, name: e.device.name, type: e.device.type },
      box: { licenseKey: e.box.licenseKey },
    },
  },
});

/** A client's filter: as the test reads it, and as variables for the gateway. */
interface Filter {
  boxes?: string[];
  subject?: 'DEVICE';
  toStatus?: string[];
}
const passes = (e: StoredEvent, f: Filter) =>
  (!f.boxes || f.boxes.includes(e.box.licenseKey)) && (!f.subject || e.subject === f.subject) && (!f.toStatus || f.toStatus.includes(e.toStatus));

// Every filter lets the last live event through (R1's cam0 going offline), so it ends every stream.
const FILTERS: Filter[] = [{}, { boxes: ['REPLAY-R1'] }, { boxes: ['REPLAY-R1', 'REPLAY-R2'] }, { subject: 'DEVICE' }, { toStatus: ['OFFLINE'] }, { boxes: ['REPLAY-R1'], toStatus: ['OFFLINE'] }];

describe('statusEvents(after:) replayed by many clients at once', () => {
  it('gives each exactly the stored events after its cursor that match its filter, then the live ones', { timeout: 30_000 }, async () => {
    const boxIds: Record<string, string> = {};
    // 3 boxes of 20 devices, first seen (63 events), then flipped 18 times (1080 more): ends all online.
    // More than one page of a replay (500 events a read before this change).
    for (const key of ['REPLAY-R1', 'REPLAY-R2', 'REPLAY-R3']) boxIds[key] = await flip(key, 0);
    for (let round = 1; round <= ROUNDS; round++) for (const key of ['REPLAY-R1', 'REPLAY-R2', 'REPLAY-R3']) await flip(key, round);
    const stored = await storedEvents(gateway.url);
    expect(stored.length).toBe(STORED);

    // 20 clients: overlapping cursors (some equal), filters none, by box, subject, status; two pairs
    // identical in cursor and filter; one without a cursor (live only); three of them over SSE.
    const variables = (f: Filter, after: string | null) => ({
      after,
      filter: { box: f.boxes?.map((k) => boxIds[k]), subject: f.subject, toStatus: f.toStatus },
    });
    const clients: Array<{ what: string; sub: Subscription; filter: Filter; afterId: number }> = [];
    const setUps = await subscriptionSetUps(gateway.url);
    for (let k = 0; k < 20; k++) {
      // Clients 17 and 18 repeat clients 0 and 6 exactly; 19 has no cursor.
      const like = k === 17 ? 0 : k === 18 ? 6 : k;
      const filter = FILTERS[like % FILTERS.length]!;
      const from = k === 19 ? null : stored[Math.floor(like / 2) * 113]!;
      const vars = variables(filter, from?.cursor ?? null);
      const over = k % 7 === 3 ? 'SSE' : 'ws';
      let sub: Subscription;
      if (over === 'SSE') {
        const s = sseSubscribe(gateway.url, REPLAY, vars);
        closers.push(() => s.client.dispose());
        sub = s;
      } else {
        const client = wsClient(gateway.url);
        closers.push(() => client.dispose());
        sub = wsSubscribe(client, REPLAY, vars);
      }
      const afterId = from ? eventNumber(from.id) : eventNumber(stored[stored.length - 1]!.id);
      clients.push({ what: `client ${k} (${over}) after #${from ? afterId : 'none'} ${JSON.stringify(filter)}`, sub, filter, afterId });
    }
    await setUps.reach(clients.length);

    // Live events while the replays run: R2 and R3 flip (40 events), then R1's cam0 goes offline.
    await flip('REPLAY-R2', ROUNDS + 1);
    await flip('REPLAY-R3', ROUNDS + 1);
    await flip('REPLAY-R1', ROUNDS, 'offline');
    const all = await storedEvents(gateway.url);
    expect(all.length).toBe(STORED + 41);
    expect(all[all.length - 1]).toMatchObject({ box: { licenseKey: 'REPLAY-R1' }, device: { externalId: 'cam0' }, toStatus: 'OFFLINE' });

    for (const c of clients) {
      const expected = withCursorsRead(all.filter((e) => eventNumber(e.id) > c.afterId && passes(e, c.filter)).map(result));
      const last = JSON.stringify(expected[expected.length - 1]);
      await until(
        () => c.sub.pending.some((r) => JSON.stringify(withCursorsRead(r)) === last),
        () => `${c.what}: the last live event; it has ${c.sub.pending.length} of ${expected.length}`,
        { timeoutMs: 15_000 },
      );
      const received = withCursorsRead(c.sub.pending);
      // Ids first (a short message if one is missing or repeated), then every field of every result.
      expect(received.map((r: any) => eventNumber(r.data.statusEvents.id)), c.what).toEqual(expected.map((r) => eventNumber(r.data.statusEvents.id)));
      expect(received, c.what).toEqual(expected);
    }
  });
});
