import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe, wsSubscribeOperation, type Subscription } from '../helpers/subscriptions';
import { metric, waitForMetric } from '../helpers/metrics';
import { createToken, revokeToken } from '../helpers/tokens';
import { until, within } from '../helpers/wait';
import { storedEvents, withCursorsRead, type StoredEvent } from '../helpers/stored-events';

// Subscribers whose results are the same may share one execution per event; these check, from the
// outside, that each still receives exactly its own results: per variables, per selection set, aliases
// and operation name, per role (URL credentials masked for viewers, Device.url refused to them); that
// revoking one token of a group ends only that token's subscriptions; and that subscribers leaving a
// group end only their own, while late joiners get only what comes after they join.

let gateway: TestGateway;
const closers: Array<() => unknown> = [];

beforeAll(async () => {
  gateway = await startGateway({ tokenCheckMs: 200 });
});
afterAll(async () => {
  for (const close of closers) await close();
  await gateway?.close();
});

/** `promise`'s value, or a failure naming `what` after `ms`: an end that never comes fails with a reason, not the test's timeout. */
/** Subscriptions the gateway is running (websocket and SSE). */
const LIVE_SUBSCRIPTIONS = 'fleetgate_live_subscriptions';

const SECRET_URL = 'rtsp://admin:Hunter2@10.0.0.9/live';
const MASKED_URL = 'rtsp://***@10.0.0.9/live';
const SECRET_SNAP = 'http://10.0.0.10/snap.jpg?user=admin&password=Hunter2';

type Device = { id: string; status: string; type?: string; name?: string; url?: string };
async function post(licenseKey: string, devices: Device[]): Promise<string> {
  const response = await postReport(gateway.url, {
    mq_license_key: licenseKey,
    media_devices: devices.map((d) => ({
      media_device_id: d.id,
      media_device_status: d.status,
      media_device_type: d.type ?? 'rtsp',
      media_device_name: d.name ?? `cam ${d.id}`,
      media_device_url: d.url ?? `rtsp://10.9.9.9/${d.id}`,
    })),
  });
  expect(response.status, response.text).toBe(200);
  return (response.json as { boxId: string }).boxId;
}

function ws(token: string) {
  const client = wsClient(gateway.url, { token });
  closers.push(() => client.dispose());
  return client;
}
function sse(query: string, variables: Record<string, unknown>, token: string) {
  const subscription = sseSubscribe(gateway.url, query, variables, { token });
  closers.push(() => subscription.client.dispose());
  return subscription;
}

const SELECTION = `id cursor subject fromStatus toStatus at device { externalId name type } box { licenseKey }`;
const WATCH = `subscription Watch($b: [ID!], $s: [EventStatus!], $t: [DeviceType!]) { deviceStatusChanged(filter: { boxes: $b, statuses: $s, types: $t }) { ${SELECTION} } }`;

/** What a subscriber's filter lets through (the test's own reading of DeviceStatusChangedFilter). */
interface Filter {
  boxes: string[];
  statuses?: string[];
  types?: string[];
}
const passes = (event: StoredEvent, filter: Filter) =>
  event.subject === 'DEVICE' &&
  filter.boxes.includes(event.box.licenseKey) &&
  (!filter.statuses || filter.statuses.includes(event.toStatus)) &&
  (!filter.types || filter.types.includes(event.device!.type));

/** A device name as a role sees it: credentials in it masked for a viewer. */
const nameFor = (role: 'viewer' | 'operator', name: string | null) => (role === 'viewer' && name === SECRET_URL ? MASKED_URL : name);

/** The Watch selection of `event`, as `role` must see it. */
const watched = (event: StoredEvent, role: 'viewer' | 'operator') => ({
  id: event.id,
  cursor: event.cursor,
  subject: event.subject,
  fromStatus: event.fromStatus,
  toStatus: event.toStatus,
  at: event.at,
  device: { externalId: event.device!.externalId, name: nameFor(role, event.device!.name), type: event.device!.type },
  box: { licenseKey: event.box.licenseKey },
});

interface Subscriber {
  what: string;
  sub: Subscription;
  filter: Filter;
  /** The result this subscriber must receive for a stored event it matches. */
  expected(event: StoredEvent): unknown;
  viewer: boolean;
}

/** Waits until each subscriber has its last expected result, then compares everything it received. */
async function expectExactly(subscribers: Subscriber[], events: StoredEvent[]): Promise<void> {
  for (const s of subscribers) {
    const expected = withCursorsRead(events.filter((e) => passes(e, s.filter)).map((e) => s.expected(e)));
    expect(expected.length, s.what).toBeGreaterThan(0);
    const last = JSON.stringify(expected[expected.length - 1]);
    await until(
      () => s.sub.pending.some((r) => JSON.stringify(withCursorsRead(r)) === last),
      () => `${s.what}: its last result ${last}; it has ${JSON.stringify(s.sub.pending)}`,
      { timeoutMs: 10_000 },
    );
    expect(withCursorsRead(s.sub.pending), s.what).toEqual(expected);
    if (s.viewer) expect(JSON.stringify(s.sub.pending), `${s.what} received an operator-only value`).not.toMatch(/Hunter2/);
  }
}

describe('subscribers of one gateway each receive exactly their own results', () => {
  it('same operation and variables, other variables, other selections, aliases and names, other roles', { timeout: 30_000 }, async () => {
    const [viewer, otherViewer, operator] = await Promise.all([
      createToken(gateway.url, 'viewer', 'viewer one'),
      createToken(gateway.url, 'viewer', 'viewer two'),
      createToken(gateway.url, 'operator', 'operator one'),
    ]);
    const A = await post('SHARE-A', [
      { id: 'cam1', status: 'online', name: SECRET_URL, url: SECRET_URL },
      { id: 'cam2', status: 'online', type: 'photo', name: 'yard photo', url: SECRET_SNAP },
    ]);
    const B = await post('SHARE-B', [{ id: 'cam1', status: 'online', name: 'gate' }]);
    // Box C's last change ends the run: every filter below lets it through (a photo device going offline).
    const C = await post('SHARE-C', [{ id: 'cam0', status: 'online', type: 'photo', name: 'sentinel' }]);
    const before = (await storedEvents(gateway.url)).length;
    const ids = { 'SHARE-A': A, 'SHARE-B': B, 'SHARE-C': C } as Record<string, string>;
    const vars = (f: Filter) => ({ b: f.boxes.map((k) => ids[k]), s: f.statuses, t: f.types });

    const subscribers: Subscriber[] = [];
    const watch = (what: string, filter: Filter, role: 'viewer' | 'operator', sub: Subscription) =>
      subscribers.push({ what, sub, filter, viewer: role === 'viewer', expected: (e) => ({ data: { deviceStatusChanged: watched(e, role) } }) });
    const setUps = await subscriptionSetUps(gateway.url);

    // (a) The same operation and variables: three websockets and an SSE stream of one viewer token, a
    // websocket of another viewer token.
    const AC: Filter = { boxes: ['SHARE-A', 'SHARE-C'] };
    for (let i = 1; i <= 3; i++) watch(`same #${i} (ws)`, AC, 'viewer', wsSubscribe(ws(viewer.token), WATCH, vars(AC)));
    watch('same (SSE)', AC, 'viewer', sse(WATCH, vars(AC), viewer.token));
    watch('same, other viewer token (ws)', AC, 'viewer', wsSubscribe(ws(otherViewer.token), WATCH, vars(AC)));

    // (b) The same operation, other variables: other boxes, statuses, types.
    const shared = ws(viewer.token);
    const filters: Filter[] = [
      { boxes: ['SHARE-B', 'SHARE-C'] },
      { boxes: ['SHARE-A', 'SHARE-B', 'SHARE-C'], statuses: ['OFFLINE'] },
      { boxes: ['SHARE-A', 'SHARE-B', 'SHARE-C'], types: ['PHOTO'] },
      { boxes: ['SHARE-A', 'SHARE-B', 'SHARE-C'], statuses: ['ONLINE', 'OFFLINE'], types: ['RTSP', 'PHOTO'] },
    ];
    for (const f of filters) watch(`variables ${JSON.stringify(f)} (ws)`, f, 'viewer', wsSubscribe(shared, WATCH, vars(f)));
    watch(`variables ${JSON.stringify(filters[0])} (SSE)`, filters[0]!, 'viewer', sse(WATCH, vars(filters[0]!), viewer.token));

    // (c) Other selection sets, aliases, operation names, and one operation picked out of a document of two.
    const slim = `subscription Slim($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { toStatus d: device { externalId } k: box { licenseKey } } }`;
    subscribers.push({
      what: 'other selection with aliases',
      sub: wsSubscribe(shared, slim, vars(AC)),
      filter: AC,
      viewer: true,
      expected: (e) => ({ data: { deviceStatusChanged: { toStatus: e.toStatus, d: { externalId: e.device!.externalId }, k: { licenseKey: e.box.licenseKey } } } }),
    });
    // The same operation name, another document: aliases on the root field and inside.
    const aliased = `subscription Watch($b: [ID!]) { change: deviceStatusChanged(filter: { boxes: $b }) { state: toStatus was: fromStatus device { label: name externalId } } }`;
    subscribers.push({
      what: 'same operation name, aliased document',
      sub: wsSubscribe(ws(viewer.token), aliased, vars(AC)),
      filter: AC,
      viewer: true,
      expected: (e) => ({ data: { change: { state: e.toStatus, was: e.fromStatus, device: { label: nameFor('viewer', e.device!.name), externalId: e.device!.externalId } } } }),
    });
    watch('same body, other operation name', AC, 'viewer', wsSubscribe(shared, WATCH.replace('Watch', 'Renamed'), vars(AC)));
    const two = `subscription First($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { toStatus } }\nsubscription Second($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { fromStatus box { licenseKey } } }`;
    subscribers.push({
      what: 'operation Second of a document of two',
      sub: wsSubscribeOperation(shared, { query: two, variables: vars(AC), operationName: 'Second' }),
      filter: AC,
      viewer: true,
      expected: (e) => ({ data: { deviceStatusChanged: { fromStatus: e.fromStatus, box: { licenseKey: e.box.licenseKey } } } }),
    });
    subscribers.push({
      what: 'operation First of the same document',
      sub: wsSubscribeOperation(shared, { query: two, variables: vars(AC), operationName: 'First' }),
      filter: AC,
      viewer: true,
      expected: (e) => ({ data: { deviceStatusChanged: { toStatus: e.toStatus } } }),
    });

    // (d) The same operation under an operator token: names with credentials in clear; and Device.url,
    // which a viewer may not read: refused to each viewer token in its own name, given to the operator.
    watch('operator (ws)', AC, 'operator', wsSubscribe(ws(operator.token), WATCH, vars(AC)));
    watch('operator (SSE)', AC, 'operator', sse(WATCH, vars(AC), operator.token));
    const urls = `subscription Urls($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { device { externalId url } } }`;
    const urlColumn = urls.indexOf('url }') + 1;
    const refused = (name: string) => (e: StoredEvent) => ({
      data: { deviceStatusChanged: { device: { externalId: e.device!.externalId, url: null } } },
      errors: [
        {
          message: `Device.url needs the operator role; token "${name}" has viewer.`,
          locations: [{ line: 1, column: urlColumn }],
          path: ['deviceStatusChanged', 'device', 'url'],
          extensions: { code: 'FORBIDDEN', requiredRole: 'operator' },
        },
      ],
    });
    subscribers.push({ what: 'viewer one, Device.url', sub: wsSubscribe(ws(viewer.token), urls, vars(AC)), filter: AC, viewer: true, expected: refused('viewer one') });
    subscribers.push({ what: 'viewer two, Device.url', sub: wsSubscribe(ws(otherViewer.token), urls, vars(AC)), filter: AC, viewer: true, expected: refused('viewer two') });
    subscribers.push({
      what: 'operator, Device.url',
      sub: wsSubscribe(ws(operator.token), urls, vars(AC)),
      filter: AC,
      viewer: false,
      expected: (e) => ({ data: { deviceStatusChanged: { device: { externalId: e.device!.externalId, url: e.device!.url } } } }),
    });
    await setUps.reach(subscribers.length);

    // Changes, through ingest.
    await post('SHARE-A', [
      { id: 'cam1', status: 'offline', name: SECRET_URL, url: SECRET_URL },
      { id: 'cam2', status: 'online', type: 'photo', name: 'yard photo', url: SECRET_SNAP },
    ]);
    await post('SHARE-B', [{ id: 'cam1', status: 'offline', name: 'gate' }]);
    await post('SHARE-A', [
      { id: 'cam1', status: 'offline', name: SECRET_URL, url: SECRET_URL },
      { id: 'cam2', status: 'offline', type: 'photo', name: 'yard photo', url: SECRET_SNAP },
    ]);
    await post('SHARE-B', [
      { id: 'cam1', status: 'online', name: 'gate' },
      { id: 'cam2', status: 'online', type: 'photo', name: 'gate photo' },
    ]);
    await post('SHARE-A', [
      { id: 'cam1', status: 'online', name: SECRET_URL, url: SECRET_URL },
      { id: 'cam2', status: 'online', type: 'photo', name: 'yard photo', url: SECRET_SNAP },
    ]);
    await post('SHARE-C', [{ id: 'cam0', status: 'offline', type: 'photo', name: 'sentinel' }]);

    const events = (await storedEvents(gateway.url)).slice(before);
    // What the reports above changed: the check below is against these, not against whatever came.
    expect(events.map((e) => `${e.box.licenseKey}/${e.device?.externalId}:${e.fromStatus}->${e.toStatus}`)).toEqual([
      'SHARE-A/cam1:ONLINE->OFFLINE',
      'SHARE-B/cam1:ONLINE->OFFLINE',
      'SHARE-A/cam2:ONLINE->OFFLINE',
      'SHARE-B/cam1:OFFLINE->ONLINE',
      'SHARE-B/cam2:null->ONLINE',
      'SHARE-A/cam1:OFFLINE->ONLINE',
      'SHARE-A/cam2:OFFLINE->ONLINE',
      'SHARE-C/cam0:ONLINE->OFFLINE',
    ]);
    await expectExactly(subscribers, events);
  });
});

describe('revoking one token of a shared group', () => {
  it('ends that token’s websocket (4403) and SSE stream (TOKEN_REVOKED); the other token’s go on', { timeout: 30_000 }, async () => {
    const [doomed, kept] = await Promise.all([createToken(gateway.url, 'viewer', 'revoked dashboard'), createToken(gateway.url, 'viewer', 'kept dashboard')]);
    const D = await post('SHARE-D', [{ id: 'cam1', status: 'online', name: SECRET_URL }]);
    const before = (await storedEvents(gateway.url)).length;
    const variables = { b: [D] };
    const setUps = await subscriptionSetUps(gateway.url);
    const doomedSocket = ws(doomed.token);
    const doomedWs = wsSubscribe(doomedSocket, WATCH, variables);
    const doomedSse = sse(WATCH, variables, doomed.token);
    const keptWs = wsSubscribe(ws(kept.token), WATCH, variables);
    const keptSse = sse(WATCH, variables, kept.token);
    await setUps.reach(4);

    await post('SHARE-D', [{ id: 'cam1', status: 'offline', name: SECRET_URL }]);
    const [first] = (await storedEvents(gateway.url)).slice(before);
    for (const sub of [doomedWs, doomedSse, keptWs, keptSse]) expect(withCursorsRead(await sub.next())).toEqual(withCursorsRead({ data: { deviceStatusChanged: watched(first!, 'viewer') } }));

    await revokeToken(gateway.url, doomed.id);
    expect(await within(doomedSocket.closed, 5_000, 'close of the revoked token’s websocket')).toEqual(expect.objectContaining({ code: 4403, reason: 'The API token was revoked' }));
    expect(await doomedSse.next()).toEqual({
      data: null,
      errors: [expect.objectContaining({ message: 'The API token of this subscription was revoked.', extensions: { code: 'TOKEN_REVOKED' } })],
    });
    expect(await within(doomedSse.ended, 5_000, 'end of the revoked token’s SSE stream')).toBeUndefined();

    await post('SHARE-D', [{ id: 'cam1', status: 'online', name: SECRET_URL }]);
    await post('SHARE-D', [{ id: 'cam1', status: 'offline', name: SECRET_URL }]);
    const [, second, third] = (await storedEvents(gateway.url)).slice(before);
    for (const sub of [keptWs, keptSse]) {
      expect(withCursorsRead(await sub.next())).toEqual(withCursorsRead({ data: { deviceStatusChanged: watched(second!, 'viewer') } }));
      expect(withCursorsRead(await sub.next())).toEqual(withCursorsRead({ data: { deviceStatusChanged: watched(third!, 'viewer') } }));
    }
    expect(doomedWs.pending).toEqual([]);
    expect(doomedSse.pending).toEqual([]);
  });
});

describe('subscribers leaving and joining a shared group', () => {
  it('one that leaves ends only its own subscription; one that joins gets only what comes after', { timeout: 30_000 }, async () => {
    const token = (await createToken(gateway.url, 'viewer', 'wall of screens')).token;
    const E = await post('SHARE-E', [{ id: 'cam1', status: 'online', name: SECRET_URL }]);
    const before = (await storedEvents(gateway.url)).length;
    const variables = { b: [E] };
    const result = (event: StoredEvent | undefined) => withCursorsRead({ data: { deviceStatusChanged: watched(event!, 'viewer') } });
    const nextOf = async (sub: Subscription) => withCursorsRead(await sub.next());
    const setUps = await subscriptionSetUps(gateway.url);
    const socket = ws(token);
    const unsubscribed = wsSubscribe(socket, WATCH, variables);
    const sameSocket = wsSubscribe(socket, WATCH, variables);
    const disconnecting = ws(token);
    const disconnected = wsSubscribe(disconnecting, WATCH, variables);
    const aborted = sse(WATCH, variables, token);
    const staying = wsSubscribe(ws(token), WATCH, variables);
    await setUps.reach(5);
    const running = await metric(gateway.url, LIVE_SUBSCRIPTIONS);

    await post('SHARE-E', [{ id: 'cam1', status: 'offline', name: SECRET_URL }]);
    const [first] = (await storedEvents(gateway.url)).slice(before);
    for (const sub of [unsubscribed, sameSocket, disconnected, aborted, staying]) expect(await nextOf(sub)).toEqual(result(first));

    // Three leave, each its own way: unsubscribe (complete) on a socket that stays, a closed socket, an aborted SSE request.
    unsubscribed.close();
    await disconnecting.dispose();
    aborted.close();
    await waitForMetric(gateway.url, LIVE_SUBSCRIPTIONS, (value) => value === running - 3);

    await post('SHARE-E', [{ id: 'cam1', status: 'online', name: SECRET_URL }]);
    const [, second] = (await storedEvents(gateway.url)).slice(before);
    for (const sub of [sameSocket, staying]) expect(await nextOf(sub)).toEqual(result(second));

    // Two join the group late: the first thing each receives is the next change, nothing from before.
    const joins = await subscriptionSetUps(gateway.url);
    const lateWs = wsSubscribe(ws(token), WATCH, variables);
    const lateSse = sse(WATCH, variables, token);
    await joins.reach(2);
    await post('SHARE-E', [{ id: 'cam1', status: 'offline', name: SECRET_URL }]);
    const [, , third] = (await storedEvents(gateway.url)).slice(before);
    for (const sub of [sameSocket, staying, lateWs, lateSse]) expect(await nextOf(sub)).toEqual(result(third));
    for (const sub of [unsubscribed, disconnected, aborted, sameSocket, staying, lateWs, lateSse]) expect(sub.pending).toEqual([]);
  });
});
