import { createClient } from 'graphql-sse';
import { createYoga } from 'graphql-yoga';
import { schema } from '../../src/graphql/schema';
import { useSingleConnectionSSE } from '../../src/graphql/sse-single-connection';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorization } from '../helpers/auth';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { createToken } from '../helpers/tokens';
import { until } from '../helpers/wait';

// graphql-sse's single connection mode (one event stream, operations POSTed onto it) as its own client
// uses it, with the same token, limits and refusals as the other transports.

let gateway: TestGateway;
const clients: Array<{ dispose(): void }> = [];

beforeAll(async () => {
  gateway = await startGateway({ wsMaxConnectionsPerToken: 2 });
});
afterAll(async () => {
  for (const client of clients) client.dispose();
  await gateway?.close();
});

function singleConnectionClient(token?: string | null) {
  const client = createClient({ url: `${gateway.url}/graphql`, singleConnection: true, retryAttempts: 0, headers: authorization(gateway.url, token) });
  clients.push(client);
  return client;
}

/** The first result of `query` on `client`, or what ended it. */
function firstResult(client: ReturnType<typeof createClient>, query: string, variables?: Record<string, unknown>) {
  return new Promise<{ result?: any; error?: unknown }>((resolve) => {
    const stop = client.subscribe(
      { query, variables },
      {
        next: (result) => {
          resolve({ result });
          stop();
        },
        error: (error) => resolve({ error }),
        complete: () => resolve({}),
      },
    );
  });
}

/** Waits, with a deadline, until the gateway has `count` subscribers. */
async function subscribersReach(count: number): Promise<void> {
  await until(() => gateway.app.events.subscriberCount >= count, () => `${count} subscribers; there are ${gateway.app.events.subscriberCount}`, { timeoutMs: 5_000, intervalMs: 10 });
}

describe('graphql-sse single connection mode', () => {
  it('delivers a subscription event over the one stream', async () => {
    const stored = await postReport(gateway.url, { mq_license_key: 'SSE-SINGLE', media_devices: [{ media_device_id: 'gate', media_device_status: 'online' }] });
    expect(stored.status, stored.text).toBe(200);
    const { boxId } = stored.json as { boxId: string };

    const client = singleConnectionClient();
    const before = gateway.app.events.subscriberCount;
    const event = firstResult(client, `subscription($b: [ID!]) { deviceStatusChanged(filter: { boxes: $b }) { toStatus device { externalId } } }`, { b: [boxId] });
    await subscribersReach(before + 1);
    await postReport(gateway.url, { mq_license_key: 'SSE-SINGLE', media_devices: [{ media_device_id: 'gate', media_device_status: 'offline' }] });
    const { result, error } = await event;
    expect(error).toBeUndefined();
    expect(result.data.deviceStatusChanged).toEqual({ toStatus: 'OFFLINE', device: { externalId: 'gate' } });
    // Queries work over the stream too.
    const query = await firstResult(client, `{ box(licenseKey: "SSE-SINGLE") { licenseKey } }`);
    expect(query.result?.data).toEqual({ box: { licenseKey: 'SSE-SINGLE' } });
  });

  it('needs an API token, like every GraphQL request', async () => {
    const { error } = await firstResult(singleConnectionClient(null), `{ __typename }`);
    expect(String(error)).toMatch(/401/);
  });

  it('applies the document limits', async () => {
    const deep = `{ devices(first: 1) { nodes { box { devices(first: 1) { nodes { box { devices(first: 1) { nodes { box { devices(first: 1) { nodes { box { licenseKey } } } } } } } } } } } } }`;
    const { error } = await firstResult(singleConnectionClient(), deep);
    expect((error as { response: Response }).response.status).toBe(400);
    // What the client was told, read from the same requests it makes.
    const streamToken = await (await fetch(`${gateway.url}/graphql`, { method: 'PUT', headers: authorization(gateway.url) })).text();
    const refused = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { ...authorization(gateway.url), 'content-type': 'application/json', 'x-graphql-event-stream-token': streamToken },
      body: JSON.stringify({ query: deep, extensions: { operationId: '1' } }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as any).errors[0].extensions.code).toBe('QUERY_TOO_DEEP');
  });

  it('keeps a stream to the API token that reserved it, and caps streams per token', async () => {
    const put = (token: string) => fetch(`${gateway.url}/graphql`, { method: 'PUT', headers: authorization(gateway.url, token) });
    const mine = await put(gateway.token);
    expect(mine.status).toBe(201);
    const streamToken = await mine.text();

    const other = await createToken(gateway.url, 'viewer', 'another');
    const foreign = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { ...authorization(gateway.url, other.token), 'content-type': 'application/json', 'x-graphql-event-stream-token': streamToken },
      body: JSON.stringify({ query: '{ __typename }', extensions: { operationId: '1' } }),
    });
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as any).errors[0].extensions.code).toBe('STREAM_NOT_FOUND');

    // The cap (WS_MAX_CONNECTIONS_PER_TOKEN, 2 here) counts reserved streams.
    expect((await put(other.token)).status).toBe(201);
    expect((await put(other.token)).status).toBe(201);
    const over = await put(other.token);
    expect(over.status).toBe(429);
    expect(((await over.json()) as any).errors[0].message).toMatch(/limit/);
  });

  it('refuses an operation body over the limit before reading it', async () => {
    const reserved = await fetch(`${gateway.url}/graphql`, { method: 'PUT', headers: authorization(gateway.url) });
    const streamToken = await reserved.text();
    const big = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { ...authorization(gateway.url), 'content-type': 'application/json', 'x-graphql-event-stream-token': streamToken },
      body: JSON.stringify({ query: `{ __typename } # ${'x'.repeat(256 * 1024)}`, extensions: { operationId: '1' } }),
    });
    expect(big.status).toBe(413);
  });
});

describe('a reservation never opened', () => {
  it('is dropped after its time, and its place under the cap given back', async () => {
    const yoga = createYoga({ schema, logging: false, plugins: [useSingleConnectionSSE({ streamsPerToken: 1, maxBodyBytes: 1024, reservationTtlMs: 50 })] });
    const put = () => yoga.fetch('http://localhost/graphql', { method: 'PUT' });
    const first = await put();
    expect(first.status).toBe(201);
    const streamToken = await first.text();
    expect((await put()).status).toBe(429);
    // The reservation expires after the test's 50 ms; until then every PUT is refused.
    const again = await until(async () => {
      const answer = await put();
      return answer.status === 429 ? undefined : answer;
    }, 'the unopened reservation to expire', { timeoutMs: 5_000, intervalMs: 10 });
    expect(again.status).toBe(201);
    const stale = await yoga.fetch('http://localhost/graphql', { headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': streamToken } });
    expect(stale.status).toBe(404);
  });
});
