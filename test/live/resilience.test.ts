import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { authorization } from '../helpers/auth';
import { subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { until } from '../helpers/wait';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let a: TestGateway;
let b: TestGateway;

beforeAll(async () => {
  database = await createTestDatabase();
  // The safety poll is slow on purpose: B must recover through its own reconnect, not by polling.
  a = await startGateway({ eventPollIntervalMs: 60_000, subscriptionBuffer: 3 }, database.url);
  b = await startGateway({ eventPollIntervalMs: 60_000 }, database.url);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
});

const flip = (key: string, n: number, devices = 1) => ({
  mq_license_key: key,
  media_devices: Array.from({ length: devices }, (_, i) => ({
    media_device_id: `cam${i}`,
    media_device_name: `camera number ${i} on the north gate`,
    media_device_url: `rtsp://10.0.${Math.floor(i / 250)}.${i % 250}/stream/main/av`,
    media_device_status: i === 0 && n % 2 ? 'offline' : 'online',
    media_device_type: 'rtsp',
  })),
});

describe('a replica whose LISTEN connection drops', () => {
  it('reconnects by itself and its subscribers miss nothing', async () => {
    const client = wsClient(b.url);
    const setUps = await subscriptionSetUps(b.url);
    const sub = wsSubscribe(client, `subscription { deviceStatusChanged { device { externalId } toStatus } }`);
    await setUps.reach(1);
    await postReport(a.url, flip('LISTEN-1', 0));
    expect((await sub.next()).data.deviceStatusChanged.toStatus).toBe('ONLINE');

    const { rowCount } = await a.sql.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'fleetgate-listen' and datname = current_database()`);
    expect(rowCount).toBe(2); // both replicas' listeners
    // Changes committed while B has no LISTEN connection.
    for (let n = 1; n <= 4; n++) expect((await postReport(a.url, flip('LISTEN-1', n))).status).toBe(200);
    const statuses = [];
    for (let n = 1; n <= 4; n++) statuses.push((await sub.next(10_000)).data.deviceStatusChanged.toStatus);
    expect(statuses).toEqual(['OFFLINE', 'ONLINE', 'OFFLINE', 'ONLINE']);
    await client.dispose();
  });
});

describe('a websocket subscriber that stops reading', () => {
  it('is closed with code 4009 and a reason, while others keep receiving', { timeout: 60_000 }, async () => {
    // 300 devices per event make each message large, so the socket's buffers fill quickly.
    await postReport(a.url, flip('SLOW-1', 0, 300));
    const heavy = `subscription { deviceStatusChanged { id box { devices(first: 300) { nodes { id externalId name url status statusSince } } } } }`;

    const before = a.app.events.subscriberCount;
    const beforeB = b.app.events.subscriberCount;
    const slow = new WebSocket(`${a.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const closed = new Promise<{ code: number; reason: string }>((resolve) => slow.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise<void>((resolve) => {
      slow.on('open', () => slow.send(JSON.stringify({ type: 'connection_init', payload: authorization(a.url) })));
      slow.on('message', (data) => {
        if (JSON.parse(data.toString()).type === 'connection_ack') {
          slow.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: heavy } }));
          resolve();
        }
      });
    });
    // On the other replica (default buffer): it must keep receiving whatever the slow one does.
    const healthy = wsClient(b.url);
    const fine = wsSubscribe(healthy, `subscription { deviceStatusChanged { device { externalId } toStatus } }`);
    // Both subscriptions are running (on a busy machine, authentication and setup take a while).
    const running = () => a.app.events.subscriberCount >= before + 1 && b.app.events.subscriberCount >= beforeB + 1;
    await until(running, 'both subscriptions to run');
    const subscribers = a.app.events.subscriberCount;
    expect(subscribers).toBe(before + 1);
    (slow as unknown as { _socket: import('node:net').Socket })._socket.pause(); // stop reading

    let n = 1;
    const deadline = Date.now() + 40_000;
    while (a.app.events.subscriberCount === subscribers && Date.now() < deadline) {
      expect((await postReport(a.url, flip('SLOW-1', n++, 300))).status).toBe(200);
    }
    expect(a.app.events.subscriberCount).toBe(subscribers - 1);
    (slow as unknown as { _socket: import('node:net').Socket })._socket.resume();
    const close = await closed;
    expect(close.code).toBe(4009);
    expect(close.reason).toMatch(/^Slow consumer: The subscriber fell 3 events behind and was disconnected; resubscribe from your last cursor\./);
    // The healthy subscriber got every change, in order.
    const received = [];
    for (let i = 1; i < n; i++) received.push((await fine.next(10_000)).data.deviceStatusChanged.toStatus);
    expect(received).toEqual(Array.from({ length: n - 1 }, (_, i) => ((i + 1) % 2 ? 'OFFLINE' : 'ONLINE')));
    await healthy.dispose();
  });
});

describe('shutdown', () => {
  it('closes websockets with 1001 (going away), so clients reconnect to another replica', async () => {
    const own = await startGateway({}, database.url);
    const client = wsClient(own.url);
    const sub = wsSubscribe(client, `subscription { deviceStatusChanged { id } }`);
    await until(() => own.app.events.subscriberCount === 1, 'the subscription to be registered');
    await own.close();
    expect((await client.closed).code).toBe(1001);
    sub.close();
  });
});
