import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorization } from '../helpers/auth';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { metric } from '../helpers/metrics';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe, type Subscription } from '../helpers/subscriptions';
import { createToken } from '../helpers/tokens';

// How much work an event costs, counted by the gateway itself: one execution per distinct payload
// (operation, the variables its selection uses, role), one match per distinct filter, one read of a
// page of history for every client replaying it. The results themselves are checked exactly.

let gateway: TestGateway;
const clients: Array<{ dispose(): void | Promise<void> }> = [];

beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(async () => {
  for (const client of clients) await client.dispose();
  await gateway?.close();
});

function client(token?: string) {
  const c = wsClient(gateway.url, token ? { token } : {});
  clients.push(c);
  return c;
}

async function post(key: string, devices: Array<{ id: string; status?: string }>): Promise<string> {
  const res = await postReport(gateway.url, {
    mq_license_key: key,
    media_devices: devices.map((d) => ({ media_device_id: d.id, media_device_status: d.status ?? 'online', media_device_type: 'rtsp', media_device_name: `cam ${d.id}` })),
  });
  expect(res.status, res.text).toBe(200);
  return (res.json as { boxId: string }).boxId;
}

const EXECUTIONS = 'fleetgate_live_executions_total';
const SHARED = 'fleetgate_live_shared_results_total';

describe('subscribers with the same payload share one execution of each event', () => {
  it('one execution per distinct selection and role; filters that only pick events do not split them', async () => {
    const boxId = await post('SHARE-A', [{ id: 'cam' }]);
    const otherBox = await post('SHARE-B', [{ id: 'cam' }]);
    const viewer = await createToken(gateway.url, 'viewer', 'share viewer');
    const byBox = `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { toStatus device { externalId url } box { licenseKey } } }`;
    const narrow = `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { toStatus } }`;
    const setUps = await subscriptionSetUps(gateway.url);
    const c = client();
    const same: Subscription[] = [];
    for (let i = 0; i < 10; i++) same.push(wsSubscribe(i % 2 ? c : client(), byBox, { b: [boxId] }));
    // The same selection, with a filter that also lets the other box through: still the same payload.
    const wider = wsSubscribe(c, byBox, { b: [boxId, otherBox] });
    const sse = sseSubscribe(gateway.url, byBox, { b: [boxId] });
    const other = wsSubscribe(c, narrow, { b: [boxId] });
    const asViewer = wsSubscribe(client(viewer.token), byBox, { b: [boxId] });
    await setUps.reach(14);

    const executionsBefore = await metric(gateway.url, EXECUTIONS);
    const sharedBefore = await metric(gateway.url, SHARED);
    await post('SHARE-A', [{ id: 'cam', status: 'offline' }]);
    const expected = { deviceStatusChanged: { toStatus: 'OFFLINE', device: { externalId: 'cam', url: null }, box: { licenseKey: 'SHARE-A' } } };
    for (const sub of [...same, wider, sse]) expect((await sub.next()).data).toEqual(expected);
    expect((await other.next()).data).toEqual({ deviceStatusChanged: { toStatus: 'OFFLINE' } });
    expect((await asViewer.next()).data).toEqual(expected);

    // Three payloads: the wide selection as operator, as viewer, and the narrow one.
    expect((await metric(gateway.url, EXECUTIONS)) - executionsBefore).toBe(3);
    expect((await metric(gateway.url, SHARED)) - sharedBefore).toBe(11);
    for (const sub of [...same, wider, sse, other, asViewer]) sub.close();
  });

  it('matches an event once per distinct filter, however many subscribers hold it', async () => {
    const boxId = await post('SHARE-F', [{ id: 'cam' }]);
    const before = await metric(gateway.url, 'fleetgate_live_filters');
    const setUps = await subscriptionSetUps(gateway.url);
    const c = client();
    const subs = [
      ...Array.from({ length: 6 }, () => wsSubscribe(c, `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { toStatus } }`, { b: [boxId] })),
      // The same conditions written another way: the same filter.
      wsSubscribe(c, `subscription($b: [ID!]) { statusEvents(filter: { box: $b, subject: DEVICE }) { toStatus } }`, { b: [boxId] }),
      wsSubscribe(c, `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b, statuses: [OFFLINE] }) { toStatus } }`, { b: [boxId] }),
    ];
    await setUps.reach(subs.length);
    expect((await metric(gateway.url, 'fleetgate_live_filters')) - before).toBe(2);
    for (const sub of subs) sub.close();
  });
});

describe('clients replaying overlapping ranges share reads', () => {
  it('twenty clients resuming at once read the stored pages about once, and each gets exactly its events', async () => {
    const boxId = await post('SHARE-R', [{ id: 'a' }, { id: 'b' }]);
    for (let i = 0; i < 30; i++) await post('SHARE-R', [{ id: 'a', status: i % 2 ? 'online' : 'offline' }, { id: 'b' }]);
    const history = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authorization(gateway.url) },
      body: JSON.stringify({
        query: `query($b: [ID!]) { statusEvents(first: 100, filter: { box: $b }, orderBy: { field: ID, direction: ASC }) { edges { cursor node { id toStatus } } } }`,
        variables: { b: [boxId] },
      }),
    });
    const edges = ((await history.json()) as { data: { statusEvents: { edges: Array<{ cursor: string; node: { id: string; toStatus: string } }> } } }).data.statusEvents.edges;
    expect(edges.length).toBe(33); // the box and two devices first seen, then 30 changes of a
    const readsBefore = await metric(gateway.url, 'fleetgate_live_replay_reads_total');
    const query = `subscription($after: String, $b: [ID!]) { statusEvents(after: $after, filter: { box: $b }) { id toStatus } }`;
    const resumes = Array.from({ length: 20 }, (_, i) => ({ from: i % 5, sub: wsSubscribe(client(), query, { b: [boxId], after: edges[i % 5]!.cursor }) }));
    for (const { from, sub } of resumes) {
      const expected = edges.slice(from + 1).map((e) => e.node);
      const got = [];
      for (let k = 0; k < expected.length; k++) got.push((await sub.next()).data.statusEvents);
      expect(got).toEqual(expected);
    }
    // Then live, with no duplicate of the replayed ones in between.
    await post('SHARE-R', [{ id: 'a' }, { id: 'b', status: 'offline' }]);
    for (const { sub } of resumes) {
      expect((await sub.next()).data.statusEvents.toStatus).toBe('OFFLINE');
      expect(sub.pending).toEqual([]);
    }
    // Twenty replays of one range: one read, or a few when some start after others finished theirs.
    expect((await metric(gateway.url, 'fleetgate_live_replay_reads_total')) - readsBefore).toBeLessThanOrEqual(5);
    for (const { sub } of resumes) sub.close();
  });
});
