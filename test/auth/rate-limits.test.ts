import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/auth/tokens';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { waitForMetric, waitForWebsockets } from '../helpers/metrics';
import { storedState } from '../helpers/snapshot';
import { subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { createToken } from '../helpers/tokens';

// Rates per token and per address (429 with Retry-After), and caps on websockets and subscriptions.
// Each limit is set low here so a test can reach it with a few requests.

const report = (key: string) => ({ mq_license_key: key, media_devices: [{ media_device_id: 'cam', media_device_status: 'online' }] });

describe('ingest, per address', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ rateLimitIngestPerAddress: 5 });
  });
  afterAll(() => gateway?.close());

  it('answers 429 with Retry-After past the rate, stores nothing of the refused, and takes reports again a second later', async () => {
    // Sent together, so they fall in one window of a second however slowly they are answered.
    const keys = Array.from({ length: 8 }, (_, i) => `RATE-${i}`);
    const answers = await Promise.all(keys.map((key) => postReport(gateway.url, report(key))));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.json).toEqual({ error: { code: 'RATE_LIMITED', message: 'Too many reports from this address; retry in 1 s.', path: null } });
    const { boxes } = await storedState(gateway.sql);
    expect(boxes.map((b) => b.license_key).sort()).toEqual(keys.filter((_, i) => answers[i]!.status === 200));
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await postReport(gateway.url, report('RATE-8'))).status).toBe(200);
  });
});

describe('GraphQL, per token and per address', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ rateLimitGraphqlPerToken: 4, rateLimitGraphqlPerAddress: 9 });
  });
  afterAll(() => gateway?.close());

  it('limits each token on its own, then the address as a whole', async () => {
    // Made in the database, and each used once (its lookup and the first query's compilation are slow
    // on a busy machine); then the rate windows, a second long, start afresh: time is the event here.
    const token = async (name: string) => (await createApiToken(gateway.sql, { name, role: 'viewer', createdBy: 'rate-limits.test' })).token;
    const [one, two, three] = await Promise.all(['one', 'two', 'three'].map(async (name) => ({ token: await token(name) })));
    const ask = (token: string) => graphql(gateway.url, '{ fleetSummary { boxes { total } } }', undefined, { token });
    expect((await Promise.all([one, two, three].map((t) => ask(t!.token)))).map((r) => r.status)).toEqual([200, 200, 200]);
    await new Promise((r) => setTimeout(r, 1_100));
    // Sent together, so they fall in one window however slowly they are answered.
    const first = await Promise.all(Array.from({ length: 5 }, () => ask(one!.token)));
    expect(first.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 429]);
    const refused = first.find((r) => r.status === 429)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toEqual({ errors: [{ message: `Too many requests for token ${one!.token.slice(0, 8)}…; retry in 1 s.`, extensions: { code: 'RATE_LIMITED' } }] });
    // Another token is not held back by the first one's rate...
    const second = await Promise.all(Array.from({ length: 4 }, () => ask(two!.token)));
    expect(second.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    // ... but the address is: 9 requests a second from it, whatever the token (and without one).
    const third = await ask(three!.token);
    expect(third.status).toBe(429);
    expect(third.body.errors?.[0]?.message).toBe('Too many requests from 127.0.0.1; retry in 1 s.');
    const anonymous = await graphql(gateway.url, '{ fleetSummary { boxes { total } } }', undefined, { token: null });
    expect(anonymous.status).toBe(429);
  });
});

describe('websockets and subscriptions', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ wsMaxConnectionsPerToken: 2, wsMaxConnectionsPerAddress: 4, maxSubscriptionsPerToken: 3 });
  });
  afterAll(() => gateway?.close());

  it('closes a token’s socket past its cap with 4429, and takes a new one when an old one closes', async () => {
    const { token } = await createToken(gateway.url, 'viewer', 'sockets');
    const ask = (client: ReturnType<typeof wsClient>) =>
      new Promise((resolve, reject) => client.subscribe({ query: '{ currentToken { name } }' }, { next: resolve, error: reject, complete: () => {} }));
    const a = wsClient(gateway.url, { token });
    const b = wsClient(gateway.url, { token });
    expect(await ask(a)).toEqual({ data: { currentToken: { name: 'sockets' } } });
    expect(await ask(b)).toEqual({ data: { currentToken: { name: 'sockets' } } });
    const c = wsClient(gateway.url, { token });
    expect(await c.closed).toEqual(expect.objectContaining({ code: 4429, reason: 'Token has 2 websockets open, its limit' }));
    await a.dispose();
    await a.closed;
    await waitForWebsockets(gateway.url, 1); // the gateway has seen a close and given its slot back
    const d = wsClient(gateway.url, { token });
    expect(await ask(d)).toEqual({ data: { currentToken: { name: 'sockets' } } });
    await b.dispose();
    await d.dispose();
  });

  it('refuses sockets past the address cap at the upgrade, with 429, before any GraphQL work', async () => {
    const held: WebSocket[] = [];
    const open = () =>
      new Promise<{ ok: boolean; status?: number; socket: WebSocket }>((resolve) => {
        const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
        socket.once('open', () => resolve({ ok: true, socket }));
        socket.once('unexpected-response', (_req, res) => resolve({ ok: false, status: res.statusCode, socket }));
      });
    await waitForWebsockets(gateway.url, 0); // sockets of the test before are gone
    for (let i = 0; i < 4; i++) {
      const opened = await open();
      expect(opened.ok).toBe(true);
      held.push(opened.socket);
    }
    const refused = await open();
    expect(refused).toMatchObject({ ok: false, status: 429 });
    // Unauthenticated sockets do not linger: graphql-ws closes them 3 s after opening without connection_init.
    const closed = await new Promise<number>((resolve) => held[0]!.once('close', (code) => resolve(code)));
    expect(closed).toBe(4408);
    for (const socket of held) socket.close();
  });

  it('refuses a token’s subscription past its cap with TOO_MANY_SUBSCRIPTIONS, over any socket, and counts ended ones out', async () => {
    await waitForWebsockets(gateway.url, 0); // the held sockets of the test before are closed
    const { token } = await createToken(gateway.url, 'viewer', 'subscriptions');
    const a = wsClient(gateway.url, { token });
    const b = wsClient(gateway.url, { token });
    const setUps = await subscriptionSetUps(gateway.url);
    const subs = [wsSubscribe(a, 'subscription { statusEvents { id } }'), wsSubscribe(a, 'subscription { statusEvents { id } }'), wsSubscribe(b, 'subscription { boxStatusChanged { id } }')];
    await setUps.reach(3);
    const over = wsSubscribe(b, 'subscription { deviceStatusChanged { id } }');
    expect((await over.next()).errors).toEqual([
      expect.objectContaining({
        message: 'Token "subscriptions" has 3 subscriptions running, its limit (MAX_SUBSCRIPTIONS_PER_TOKEN); end one first.',
        extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
      }),
    ]);
    expect(await over.ended).toBeUndefined();
    subs[0]!.close();
    await waitForMetric(gateway.url, 'fleetgate_live_subscriptions', (running) => running === 2); // its slot is given back
    const setUpAgain = await subscriptionSetUps(gateway.url);
    const again = wsSubscribe(b, 'subscription { deviceStatusChanged { toStatus } }');
    await setUpAgain.reach(1);
    await postReport(gateway.url, report('SUBS-CAP-1'));
    expect((await again.next()).data.deviceStatusChanged.toStatus).toBe('ONLINE');
    await a.dispose();
    await b.dispose();
  });
});
