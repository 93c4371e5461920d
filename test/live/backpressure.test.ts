import http from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorization } from '../helpers/auth';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { metric } from '../helpers/metrics';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe, type Subscription } from '../helpers/subscriptions';
import { until, within } from '../helpers/wait';
import { eventNumber, storedEvents } from '../helpers/stored-events';

// A subscriber that stops reading must not hold up the others, nor make the gateway buffer without
// bound: once SUBSCRIPTION_BUFFER events wait for it, it is cut (websocket: closed 4009; SSE: a
// SLOW_CONSUMER error), while a subscriber of the same operation that reads gets every event.

/** `promise`'s value, or a failure naming `what` after `ms`: an end that never comes fails with a reason, not the test's timeout. */
const BUFFER = 16;
let gateway: TestGateway;
const closers: Array<() => unknown> = [];

beforeAll(async () => {
  gateway = await startGateway({ subscriptionBuffer: BUFFER });
});
afterAll(async () => {
  for (const close of closers) await close();
  await gateway?.close();
});

const DEVICES = 200;
const FLIPPED = 5;
/** A report of `licenseKey`'s 200 devices (long names and URLs), the first 5 offline on odd rounds. */
async function flip(licenseKey: string, round: number): Promise<string> {
  const response = await postReport(gateway.url, {
    mq_license_key: licenseKey,
    media_devices: Array.from({ length: DEVICES }, (_, i) => ({
      media_device_id: `cam${i}`,
      media_device_name: `camera number ${i} on the north gate of the depot, facing the loading bays`,
      media_device_url: `rtsp://10.0.${Math.floor(i / 250)}.${i % 250}/stream/main/av?channel=${i}&subtype=0`,
      media_device_type: 'rtsp',
      media_device_status: i < FLIPPED && round % 2 ? 'offline' : 'online',
    })),
  });
  expect(response.status, response.text).toBe(200);
  return (response.json as { boxId: string }).boxId;
}

// Each result carries the box's 200 devices three times (~130 kB), so a reader that stops fills the
// socket's buffers within a few reports.
const NODES = `nodes { id externalId name url status statusSince lastSeenAt }`;
const HEAVY = `subscription Heavy($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) {
  id toStatus device { externalId }
  one: box { devices(first: ${DEVICES}) { ${NODES} } } two: box { devices(first: ${DEVICES}) { ${NODES} } } three: box { devices(first: ${DEVICES}) { ${NODES} } }
} }`;

const LIVE_SUBSCRIPTIONS = 'fleetgate_live_subscriptions';

/**
 * Posts reports of `licenseKey` (from round `round` on), each once `reader` has every result so far,
 * until the gateway holds one subscription fewer than `running` (the stalled one was cut), or 40
 * reports; returns the next round. Pacing on the reader keeps its own queue under the buffer, however
 * slow the machine: only the subscriber that stopped reading can fall behind.
 */
async function floodUntilCut(licenseKey: string, round: number, running: number, reader: Subscription): Promise<number> {
  for (let posted = 0; posted < 40; posted++) {
    if ((await metric(gateway.url, LIVE_SUBSCRIPTIONS)) < running) return round;
    const count = reader.pending.length + FLIPPED;
    await flip(licenseKey, round++);
    await until(() => reader.pending.length >= count, () => `the reader to keep up: ${count} results; it has ${reader.pending.length}`, { timeoutMs: 10_000 });
  }
  return round;
}

/** A result as (event, status, devices in each copy of the box), for comparing with what was stored. */
function shown(result: any): string {
  const e = result.data.deviceStatusChanged;
  return `${eventNumber(e.id)}:${e.device.externalId}:${e.toStatus}:${e.one.devices.nodes.length}/${e.two.devices.nodes.length}/${e.three.devices.nodes.length}`;
}

/** What `sub` received, shown, once it has `count` results. */
async function received(sub: Subscription, count: number, what: string) {
  await until(() => sub.pending.length >= count, () => `${what}: ${count} results; it has ${sub.pending.length}`, { timeoutMs: 15_000 });
  return sub.pending.map(shown);
}

/** The events stored for `licenseKey` after the first `skip`, as `received` shows them. */
async function storedFor(boxId: string, skip: number) {
  const events = (await storedEvents(gateway.url, { box: [boxId], subject: 'DEVICE' })).slice(skip);
  return events.map((e) => `${eventNumber(e.id)}:${e.device!.externalId}:${e.toStatus}:${DEVICES}/${DEVICES}/${DEVICES}`);
}

/**
 * After a cut at flood round `next`, one more change: the reader of the same operation has every stored
 * event, and the stalled subscriber had been sent the first of them, in order, none twice, fewer than flooded.
 */
async function expectOnlyTheStalledCut(
  licenseKey: string,
  next: number,
  { boxId, before, fine, stalled }: { boxId: string; before: number; fine: Subscription; stalled: unknown[] },
): Promise<void> {
  await flip(licenseKey, next);
  const expected = await storedFor(boxId, before);
  expect(expected.length).toBe(FLIPPED * next);
  expect(await received(fine, expected.length, 'the reader')).toEqual(expected);
  expect(stalled.map(shown)).toEqual(expected.slice(0, stalled.length));
  expect(stalled.length).toBeLessThan(FLIPPED * (next - 1));
}

describe('a websocket subscriber that stops reading', () => {
  it(`is closed with 4009 once ${BUFFER} events wait for it; a reader of the same operation gets every event`, { timeout: 30_000 }, async () => {
    const boxId = await flip('BACKPRESSURE-WS', 0);
    const before = (await storedEvents(gateway.url, { box: [boxId], subject: 'DEVICE' })).length;
    const variables = { b: [boxId] };
    const setUps = await subscriptionSetUps(gateway.url);

    const slow = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    closers.push(() => slow.terminate());
    const closed = new Promise<{ code: number; reason: string }>((resolve) => slow.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    const slowResults: unknown[] = [];
    slow.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'next') slowResults.push(message.payload);
    });
    await new Promise<void>((resolve, reject) => {
      slow.on('error', reject);
      slow.on('open', () => slow.send(JSON.stringify({ type: 'connection_init', payload: authorization(gateway.url) })));
      slow.on('message', (data) => {
        if (JSON.parse(data.toString()).type !== 'connection_ack') return;
        slow.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: HEAVY, variables } }));
        resolve();
      });
    });
    const reader = wsClient(gateway.url);
    closers.push(() => reader.dispose());
    const fine = wsSubscribe(reader, HEAVY, variables);
    await setUps.reach(2);
    const running = await metric(gateway.url, LIVE_SUBSCRIPTIONS);
    (slow as unknown as { _socket: Socket })._socket.pause(); // stops reading: the kernel's buffers fill

    const next = await floodUntilCut('BACKPRESSURE-WS', 1, running, fine);
    expect(FLIPPED * (next - 1), 'events posted while it did not read').toBeGreaterThan(BUFFER);
    expect(await metric(gateway.url, LIVE_SUBSCRIPTIONS)).toBe(running - 1); // the reader's goes on
    (slow as unknown as { _socket: Socket })._socket.resume();
    const close = await within(closed, 10_000, 'close of the stalled websocket');
    expect(close.code).toBe(4009);
    expect(close.reason).toMatch(/^Slow consumer: /);
    // One more change after the cut: the reader goes on.
    await expectOnlyTheStalledCut('BACKPRESSURE-WS', next, { boxId, before, fine, stalled: slowResults });
  });
});

/** A raw SSE request (graphql-sse's distinct connections mode) whose body is not read until `read()`. */
function stalledSse(query: string, variables: Record<string, unknown>) {
  return new Promise<{ read(): Promise<string>; destroy(): void }>((resolve, reject) => {
    const request = http.request(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', ...authorization(gateway.url) },
    });
    request.on('error', reject);
    request.on('response', (response) => {
      if (response.statusCode !== 200) reject(new Error(`SSE answered ${response.statusCode}`));
      // No 'data' listener: the body is not read, so the socket is not either once its buffer is full.
      resolve({
        read: () =>
          new Promise<string>((done, fail) => {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (text += chunk));
            response.on('end', () => done(text));
            response.on('error', fail);
          }),
        destroy: () => request.destroy(),
      });
    });
    request.end(JSON.stringify({ query, variables }));
  });
}

describe('an SSE subscriber that stops reading', () => {
  it(`ends with SLOW_CONSUMER once ${BUFFER} events wait for it; a reader of the same operation gets every event`, { timeout: 30_000 }, async () => {
    const boxId = await flip('BACKPRESSURE-SSE', 0);
    const before = (await storedEvents(gateway.url, { box: [boxId], subject: 'DEVICE' })).length;
    const variables = { b: [boxId] };
    const setUps = await subscriptionSetUps(gateway.url);
    const slow = await stalledSse(HEAVY, variables);
    closers.push(() => slow.destroy());
    const fine = sseSubscribe(gateway.url, HEAVY, variables);
    closers.push(() => fine.client.dispose());
    await setUps.reach(2);
    const running = await metric(gateway.url, LIVE_SUBSCRIPTIONS);

    const next = await floodUntilCut('BACKPRESSURE-SSE', 1, running, fine);
    expect(await metric(gateway.url, LIVE_SUBSCRIPTIONS)).toBe(running - 1); // the reader's goes on
    const stream = await within(slow.read(), 10_000, 'end of the stalled SSE stream');
    expect(FLIPPED * (next - 1), 'events posted while it did not read').toBeGreaterThan(BUFFER);
    const messages = stream.split('\n\n').filter((message) => message.startsWith('event: '));
    // What it had been sent before the cut, then the reason, then the end of the stream.
    expect(messages[messages.length - 1]).toBe('event: complete\ndata:');
    const results = messages.slice(0, -1).map((message) => {
      expect(message.startsWith('event: next\ndata: '), message.slice(0, 100)).toBe(true);
      return JSON.parse(message.slice('event: next\ndata: '.length));
    });
    const reason = results.pop();
    expect(reason).toEqual({ data: null, errors: [expect.objectContaining({ message: expect.any(String), extensions: { code: 'SLOW_CONSUMER' } })] });
    await expectOnlyTheStalledCut('BACKPRESSURE-SSE', next, { boxId, before, fine, stalled: results });
  });
});
