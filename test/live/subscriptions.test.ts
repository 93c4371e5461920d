import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { authorization } from '../helpers/auth';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { waitForSweeps } from '../helpers/sweeps';
import { until } from '../helpers/wait';

let gateway: TestGateway;
const clients: Array<{ dispose(): void | Promise<void> }> = [];

beforeAll(async () => {
  gateway = await startGateway({ sweepIntervalMs: 100, offlinePeriods: 1, offlineMinSeconds: 1, defaultReportPeriodSeconds: 1 });
});
afterAll(async () => {
  for (const client of clients) await client.dispose();
  await gateway?.close();
});

function client() {
  const c = wsClient(gateway.url);
  clients.push(c);
  return c;
}

type Dev = { id: string; status?: string; type?: string };
const report = (key: string, devices: Dev[]) => ({
  mq_license_key: key,
  media_devices: devices.map((d) => ({ media_device_id: d.id, media_device_status: d.status ?? 'online', media_device_type: d.type ?? 'rtsp', media_device_name: `cam ${d.id}` })),
});

async function post(key: string, devices: Dev[]) {
  const res = await postReport(gateway.url, report(key, devices));
  expect(res.status, res.text).toBe(200);
  return res.json as { boxId: string };
}

const EVENT = `id cursor subject fromStatus toStatus at box { id licenseKey status } device { id externalId type status stale box { licenseKey } }`;

async function deviceIdOf(key: string, externalId: string): Promise<string> {
  const res = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authorization(gateway.url) },
    body: JSON.stringify({ query: `query($k: String!) { box(licenseKey: $k) { devices(first: 50) { nodes { id externalId } } } }`, variables: { k: key } }),
  });
  const body = (await res.json()) as { data: { box: { devices: { nodes: Array<{ id: string; externalId: string }> } } } };
  return body.data.box.devices.nodes.find((d) => d.externalId === externalId)!.id;
}

describe('deviceStatusChanged over websockets', () => {
  it('pushes a change the moment its report is stored, with its device and box', async () => {
    const { boxId } = await post('WS-ONE', [{ id: 'a' }]);
    const setUps = await subscriptionSetUps(gateway.url);
    const sub = wsSubscribe(client(), `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { ${EVENT} } }`, { b: [boxId] });
    await setUps.reach(1); // the subscription is registered before the change
    await post('WS-ONE', [{ id: 'a', status: 'offline' }]);
    const { data } = await sub.next();
    expect(data.deviceStatusChanged).toMatchObject({
      subject: 'DEVICE',
      fromStatus: 'ONLINE',
      toStatus: 'OFFLINE',
      box: { id: boxId, licenseKey: 'WS-ONE', status: 'ONLINE' },
      device: { externalId: 'a', type: 'RTSP', status: 'OFFLINE', stale: false, box: { licenseKey: 'WS-ONE' } },
    });
    sub.close();
  });

  it('every filter lets through only what it names', async () => {
    const a = await post('WS-F-A', [{ id: 'cam1', type: 'rtsp' }, { id: 'cam2', type: 'photo' }]);
    const b = await post('WS-F-B', [{ id: 'cam1', type: 'rtsp' }]);
    const cam2 = await deviceIdOf('WS-F-A', 'cam2');
    const c = client();
    const setUps = await subscriptionSetUps(gateway.url);
    const byBox = wsSubscribe(c, `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { box { licenseKey } device { externalId } toStatus } }`, { b: [b.boxId] });
    const byDevice = wsSubscribe(c, `subscription($d: [ID!]) { deviceStatusChanged(filter: { devices: $d }) { box { licenseKey } device { externalId } toStatus } }`, { d: [cam2] });
    const byType = wsSubscribe(c, `subscription { deviceStatusChanged(filter: { types: [PHOTO] }) { box { licenseKey } device { externalId } toStatus } }`);
    const byStatus = wsSubscribe(c, `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b, statuses: [ONLINE] }) { box { licenseKey } device { externalId } toStatus } }`, { b: [a.boxId, b.boxId] });
    const boxes = wsSubscribe(c, `subscription($b: [ID!]) { boxStatusChanged(boxes: $b) { box { licenseKey } toStatus } }`, { b: [a.boxId] });
    await setUps.reach(5);

    await post('WS-F-A', [{ id: 'cam1', type: 'rtsp', status: 'offline' }, { id: 'cam2', type: 'photo', status: 'offline' }]);
    await post('WS-F-B', [{ id: 'cam1', type: 'rtsp', status: 'offline' }]);
    await post('WS-F-A', [{ id: 'cam1', type: 'rtsp' }, { id: 'cam2', type: 'photo', status: 'offline' }]);
    // A sentinel change seen last, so "nothing else arrived" is checked, not assumed. The hub hands
    // events out in id order, so once a subscription has the sentinel it has had all before it; the two
    // it does not match (one device, box A's status) have had theirs by the time their neighbours on
    // the same socket have it.
    await post('WS-F-B', [{ id: 'cam1', type: 'rtsp' }, { id: 'cam9', type: 'photo' }]);
    const seen = (s: { pending: Array<{ data: any }> }) => s.pending.map((r) => Object.values(r.data)[0] as any).map((e) => `${e.box.licenseKey}/${e.device?.externalId ?? '-'}:${e.toStatus}`);
    for (const sub of [byBox, byType, byStatus]) await until(() => seen(sub).includes('WS-F-B/cam9:ONLINE'), () => `the sentinel; saw ${seen(sub)}`, { timeoutMs: 5_000 });
    expect(seen(byBox)).toEqual(['WS-F-B/cam1:OFFLINE', 'WS-F-B/cam1:ONLINE', 'WS-F-B/cam9:ONLINE']);
    expect(seen(byDevice)).toEqual(['WS-F-A/cam2:OFFLINE']);
    expect(seen(byType)).toEqual(['WS-F-A/cam2:OFFLINE', 'WS-F-B/cam9:ONLINE']);
    expect(seen(byStatus)).toEqual(['WS-F-A/cam1:ONLINE', 'WS-F-B/cam1:ONLINE', 'WS-F-B/cam9:ONLINE']);
    expect(seen(boxes)).toEqual([]); // box A neither went offline nor came back
  });

  it('an unsubscribe is let go at once, not when the next event comes', async () => {
    const c = client();
    const before = gateway.app.events.subscriberCount;
    const sub = wsSubscribe(c, `subscription { deviceStatusChanged(filter: { statuses: [UNKNOWN] }) { id } }`);
    await until(() => gateway.app.events.subscriberCount === before + 1, 'the subscription to be registered', { timeoutMs: 3_000 });
    sub.close();
    await until(() => gateway.app.events.subscriberCount === before, 'the subscription to be let go', { timeoutMs: 3_000 });
  });

  it('refuses a bad filter with a clear error, not an internal one', async () => {
    const sub = wsSubscribe(client(), `subscription { deviceStatusChanged(filter: { statuses: [SLEEPING] }) { id } }`);
    const error = (await sub.ended) as Array<{ message: string }>;
    expect(error[0]!.message).toMatch(/SLEEPING/);
    const bad = wsSubscribe(client(), `subscription { deviceStatusChanged(filter: { boxes: ["nope"] }) { id } }`);
    const next = await bad.next().catch((e) => e);
    expect(JSON.stringify(next)).toMatch(/BAD_USER_INPUT|not a valid|Invalid/i);
  });
});

describe('boxStatusChanged', () => {
  it('a box that falls silent produces exactly one offline event, and its next report one online event', async () => {
    const setUps = await subscriptionSetUps(gateway.url);
    const sub = wsSubscribe(client(), `subscription { boxStatusChanged { fromStatus toStatus box { licenseKey status } } }`);
    await setUps.reach(1);
    await post('WS-SILENT', [{ id: 'a' }]);
    const ofThisBox = async () => {
      for (;;) {
        const event = (await sub.next(5000)).data.boxStatusChanged;
        if (event.box.licenseKey === 'WS-SILENT') return { fromStatus: event.fromStatus, toStatus: event.toStatus, box: { status: event.box.status } };
      }
    };
    expect(await ofThisBox()).toEqual({ fromStatus: null, toStatus: 'ONLINE', box: expect.anything() });
    const offline = { data: { boxStatusChanged: await ofThisBox() } };
    expect(offline.data.boxStatusChanged).toEqual({ fromStatus: 'ONLINE', toStatus: 'OFFLINE', box: { status: 'OFFLINE' } });
    // More sweeps pass; a second offline event would come before the online one awaited below.
    await waitForSweeps(gateway.sql, 3);
    // Its devices keep their status and say it is stale.
    const res = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authorization(gateway.url) },
      body: JSON.stringify({ query: `{ box(licenseKey: "WS-SILENT") { devices(first: 5) { nodes { status stale } } } }` }),
    });
    expect(((await res.json()) as any).data.box.devices.nodes).toEqual([{ status: 'ONLINE', stale: true }]);
    await post('WS-SILENT', [{ id: 'a' }]);
    expect(await ofThisBox()).toEqual({ fromStatus: 'OFFLINE', toStatus: 'ONLINE', box: { status: 'ONLINE' } });
  });
});

describe('statusEvents: replay from a cursor, then live', () => {
  it('resumes after a disconnect with the events of the gap, then live ones, no gap, no duplicate', async () => {
    const { boxId } = await post('WS-RESUME', [{ id: 'a' }]);
    const query = `subscription($after: String, $b: [ID!]) { statusEvents(after: $after, filter: { box: $b }) { id cursor device { externalId } toStatus } }`;
    const first = client();
    const setUps = await subscriptionSetUps(gateway.url);
    const sub = wsSubscribe(first, query, { b: [boxId] });
    await setUps.reach(1);
    await post('WS-RESUME', [{ id: 'a', status: 'offline' }]);
    const seen = [(await sub.next()).data.statusEvents];
    await first.dispose();

    // While disconnected: three changes.
    await post('WS-RESUME', [{ id: 'a' }]);
    await post('WS-RESUME', [{ id: 'a' }, { id: 'b' }]);
    await post('WS-RESUME', [{ id: 'b' }]);

    const resumed = wsSubscribe(client(), query, { b: [boxId], after: seen[0].cursor });
    for (let i = 0; i < 3; i++) seen.push((await resumed.next()).data.statusEvents);
    // And live from there on.
    await post('WS-RESUME', [{ id: 'b', status: 'offline' }]);
    seen.push((await resumed.next()).data.statusEvents);

    // And then a last change: a duplicate of any of the above would arrive before it.
    await post('WS-RESUME', [{ id: 'b' }]);
    seen.push((await resumed.next()).data.statusEvents);

    expect(seen.map((e) => `${e.device.externalId}:${e.toStatus}`)).toEqual(['a:OFFLINE', 'a:ONLINE', 'b:ONLINE', 'a:REMOVED', 'b:OFFLINE', 'b:ONLINE']);
    const ids = seen.map((e) => Number(Buffer.from(e.id, 'base64').toString().split(':')[1]));
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('takes the cursor of an event from the history query', async () => {
    const { boxId } = await post('WS-HIST', [{ id: 'a' }]);
    await post('WS-HIST', [{ id: 'a', status: 'offline' }]);
    const res = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authorization(gateway.url) },
      body: JSON.stringify({ query: `query($b: [ID!]) { statusEvents(first: 10, filter: { box: $b }, orderBy: { field: ID, direction: ASC }) { edges { cursor node { toStatus } } } }`, variables: { b: [boxId] } }),
    });
    const edges = ((await res.json()) as any).data.statusEvents.edges;
    expect(edges).toHaveLength(3); // box first seen, device first seen, device offline
    const sub = wsSubscribe(client(), `subscription($after: String, $b: [ID!]) { statusEvents(after: $after, filter: { box: $b }) { toStatus } }`, { b: [boxId], after: edges[0].cursor });
    expect([(await sub.next()).data.statusEvents.toStatus, (await sub.next()).data.statusEvents.toStatus]).toEqual(['ONLINE', 'OFFLINE']);
  });

  it('refuses a malformed cursor with BAD_USER_INPUT', async () => {
    const sub = wsSubscribe(client(), `subscription { statusEvents(after: "garbage") { id } }`);
    const result = await Promise.race([sub.next().catch((e) => e), sub.ended]);
    expect(JSON.stringify(result)).toContain('BAD_USER_INPUT');
  });
});

describe('SSE (graphql-sse, distinct connections)', () => {
  it('delivers the same events with the same filters', async () => {
    const { boxId } = await post('SSE-ONE', [{ id: 'a' }]);
    const setUps = await subscriptionSetUps(gateway.url);
    const sub = sseSubscribe(gateway.url, `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { toStatus device { externalId } box { licenseKey } } }`, { b: [boxId] });
    clients.push(sub.client);
    await setUps.reach(1);
    await post('SSE-OTHER', [{ id: 'z' }]);
    await post('SSE-ONE', [{ id: 'a', status: 'offline' }]);
    expect((await sub.next()).data.deviceStatusChanged).toEqual({ toStatus: 'OFFLINE', device: { externalId: 'a' }, box: { licenseKey: 'SSE-ONE' } });
    sub.close();
  });
});
