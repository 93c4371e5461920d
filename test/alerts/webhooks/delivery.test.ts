import { createHmac, timingSafeEqual } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDeliverer, type DelivererOptions } from '../../../src/alerts/webhooks/deliverer';
import { backoffMs } from '../../../src/alerts/webhooks/outbox';
import { redeliverNotification } from '../../../src/alerts/webhooks/redeliver';
import { WebhookNetworks } from '../../../src/alerts/webhooks/webhook-networks';
import { createLogger } from '../../../src/log';
import { createTestDatabase } from '../../helpers/database';
import { freePort } from '../../helpers/net';
import { until } from '../../helpers/wait';
import { alertFixture, answer200, insertChannel, recordChanges, startReceiver, type Receiver } from '../../helpers/webhooks';

// The deliverer against real receivers on loopback: what it sends, and what it does when a receiver
// is down, fails, redirects, answers too much or hangs.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;
const running: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 6 });
});
afterEach(async () => {
  for (const thing of running.splice(0).reverse()) await thing.stop();
  // Each test's channels go with their notifications, so the next test's deliverer finds none.
  await pool.query('delete from webhook_channels');
});
afterAll(async () => {
  await pool.end();
  await database.drop();
});

const FAST: DelivererOptions = {
  timeoutMs: 2_000,
  retry: { maxAttempts: 4, baseMs: 40, maxMs: 200 },
  channelConcurrency: 4,
  concurrency: 32,
  pollIntervalMs: 50,
  networks: new WebhookNetworks(),
  stopGraceMs: 200,
};

async function deliverer(options: Partial<DelivererOptions> = {}): Promise<WebhookDeliverer> {
  const d = new WebhookDeliverer(pool, database.url, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), { ...FAST, ...options });
  await d.start();
  running.push(d);
  return d;
}

async function receiver(behavior = answer200): Promise<Receiver> {
  const r = await startReceiver(behavior);
  running.push({ stop: () => r.close() });
  return r;
}

async function notifications(channelId: number) {
  const { rows } = await pool.query(
    `select id::int, alert_id::int as "alertId", kind, status, attempts, idempotency_key as "key", payload, delivered_at as "deliveredAt"
     from alert_notifications where channel_id = $1 order by id`,
    [channelId],
  );
  return rows;
}

async function attempts(notificationId: number) {
  const { rows } = await pool.query(
    `select attempt, outcome, http_status as "httpStatus", latency_ms as "latencyMs", error from webhook_attempts where notification_id = $1 order by id`,
    [notificationId],
  );
  return rows;
}

/** The README's recipe, by hand: HMAC-SHA256(secret, "<t>.<raw body>") in hex, compared in constant time, t within 5 minutes. */
function verifiesByRecipe(secret: string, rawBody: Buffer, header: string): boolean {
  const { t, v1 } = Object.fromEntries(header.split(',').map((part) => part.split('='))) as { t: string; v1: string };
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  const given = Buffer.from(v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(Date.now() / 1000 - Number(t)) <= 300;
}

describe('webhook delivery', () => {
  it('POSTs the JSON body with the documented headers and a signature the README recipe verifies; records the attempt', async () => {
    const r = await receiver();
    const secret = 'whsec_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde';
    const channel = await insertChannel(pool, r.url, secret);
    const f = await alertFixture(pool, [channel]);
    await deliverer();
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);

    await until(() => r.received.length === 1, 'the webhook');
    const [sent] = r.received;
    const [row] = await notifications(channel);
    expect(sent!.headers['content-type']).toBe('application/json');
    expect(sent!.headers['user-agent']).toBe('fleetgate');
    expect(sent!.headers['idempotency-key']).toBe(row.key);
    expect(sent!.headers['fleetgate-event']).toBe('FIRED');
    expect(verifiesByRecipe(secret, sent!.body, sent!.headers['fleetgate-signature'] as string)).toBe(true);
    expect(verifiesByRecipe('whsec_wrong', sent!.body, sent!.headers['fleetgate-signature'] as string)).toBe(false);
    expect(sent!.json).toEqual(row.payload);
    expect(sent!.json).toMatchObject({ idempotencyKey: row.key, event: 'FIRED', alert: { databaseId: f.alertIds[0], state: 'FIRING' }, rule: { name: 'cam down' } });

    await until(async () => (await notifications(channel))[0].status === 'delivered', 'delivered status');
    const [done] = await notifications(channel);
    expect(done).toMatchObject({ attempts: 1, deliveredAt: expect.any(Date) });
    expect(await attempts(done.id)).toEqual([{ attempt: 1, outcome: 'delivered', httpStatus: 200, latencyMs: expect.any(Number), error: null }]);
  });

  it('a receiver that is down (connection refused) gets everything once it is up, in order per alert', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const channel = await insertChannel(pool, `http://127.0.0.1:${port}/hook`, 'whsec_x', true);
    const f = await alertFixture(pool, [channel], 3);
    await deliverer({ retry: { maxAttempts: 1000, baseMs: 50, maxMs: 300 } });
    await recordChanges(pool, f.alertIds.map((alertId) => ({ alertId, kind: 'fired' as const })));
    await recordChanges(pool, f.alertIds.map((alertId) => ({ alertId, kind: 'acknowledged' as const })));
    await recordChanges(pool, f.alertIds.map((alertId) => ({ alertId, kind: 'resolved' as const })));
    const queued = await notifications(channel);
    expect(queued).toHaveLength(9);

    // Down: attempts fail as unreachable, and no alert's later notification is tried before its first.
    await until(async () => (await attempts(queued[0].id)).length >= 3, 'three failed attempts');
    expect((await attempts(queued[0].id)).every((a) => a.outcome === 'unreachable' && /ECONNREFUSED/.test(a.error))).toBe(true);
    const { rows: tried } = await pool.query(`select distinct n.kind from webhook_attempts a join alert_notifications n on n.id = a.notification_id where n.channel_id = $1`, [channel]);
    expect(tried.map((t) => t.kind)).toEqual(['fired']);

    const r = await startReceiver(answer200, port);
    running.push({ stop: () => r.close() });
    await until(async () => (await notifications(channel)).every((n) => n.status === 'delivered'), 'every notification delivered', { timeoutMs: 15_000 });
    for (const alertId of f.alertIds) {
      const events = r.received.filter((w) => w.json.alert.databaseId === alertId).map((w) => w.headers['fleetgate-event']);
      expect(events).toEqual(['FIRED', 'ACKNOWLEDGED', 'RESOLVED']);
    }
    expect(new Set(r.received.map((w) => w.headers['idempotency-key'])).size).toBe(9);
  });

  it('500s are retried with backoff, then the notification is dead with every attempt recorded; redeliver sends it again', { timeout: 30_000 }, async () => {
    const r = await receiver((_req, res) => {
      res.statusCode = 500;
      res.end('boom');
    });
    const channel = await insertChannel(pool, r.url);
    const f = await alertFixture(pool, [channel]);
    await deliverer();
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);

    await until(async () => (await notifications(channel))[0].status === 'dead', 'a dead notification');
    const [dead] = await notifications(channel);
    expect(dead.attempts).toBe(4);
    const log = await attempts(dead.id);
    expect(log.map((a) => [a.attempt, a.outcome, a.httpStatus])).toEqual([1, 2, 3, 4].map((n) => [n, 'http_error', 500]));
    expect(log[0].error).toMatch(/HTTP 500/);
    expect(r.received).toHaveLength(4);
    expect(new Set(r.received.map((w) => w.headers['idempotency-key']))).toEqual(new Set([dead.key]));

    r.behavior = answer200;
    const again = await redeliverNotification(pool, dead.id);
    expect(again).toMatchObject({ status: 'pending', attempts: 0 });
    await until(async () => (await notifications(channel))[0].status === 'delivered', 'delivered after redelivery');
    expect((await attempts(dead.id)).map((a) => [a.attempt, a.outcome])).toContainEqual([5, 'delivered']);
    expect(r.received.at(-1)!.headers['idempotency-key']).toBe(dead.key);
    expect((await notifications(channel))[0].attempts).toBe(1);
  });

  it('does not follow a redirect', async () => {
    const elsewhere = await receiver();
    const r = await receiver((_req, res) => {
      res.writeHead(307, { location: elsewhere.url });
      res.end();
    });
    const channel = await insertChannel(pool, r.url);
    const f = await alertFixture(pool, [channel]);
    await deliverer({ retry: { maxAttempts: 1, baseMs: 10, maxMs: 10 } });
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
    await until(async () => (await notifications(channel))[0].status === 'dead', 'the attempt');
    expect(await attempts((await notifications(channel))[0].id)).toEqual([expect.objectContaining({ outcome: 'redirect', httpStatus: 307 })]);
    expect(elsewhere.received).toHaveLength(0);
  });

  it('a 50 MB answer ends the attempt as too_large quickly, without reading it (memory stays flat)', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }); // chunked: no length to refuse up front
      const pump = () => {
        while (written < 50 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
    });
    const channel = await insertChannel(pool, r.url);
    const f = await alertFixture(pool, [channel]);
    const heapBefore = process.memoryUsage().heapUsed;
    await deliverer({ retry: { maxAttempts: 1, baseMs: 10, maxMs: 10 } });
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
    await until(async () => (await notifications(channel))[0].status === 'dead', 'the attempt');
    const [attempt] = await attempts((await notifications(channel))[0].id);
    expect(attempt).toMatchObject({ outcome: 'too_large', httpStatus: 200 });
    expect(attempt.latencyMs).toBeLessThan(1_000);
    expect(written).toBeLessThan(20 * 1024 * 1024); // the socket closed long before 50 MB went out
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(30 * 1024 * 1024);
  });

  it('a hanging receiver times out and holds at most its channel cap, while another channel gets its notifications', { timeout: 30_000 }, async () => {
    let open = 0;
    let mostOpen = 0;
    const hanging = await receiver((req) => {
      open++;
      mostOpen = Math.max(mostOpen, open);
      req.socket.on('close', () => open--);
    });
    const healthy = await receiver();
    const slow = await insertChannel(pool, hanging.url);
    const fine = await insertChannel(pool, healthy.url);
    const f = await alertFixture(pool, [slow, fine], 10);
    await deliverer({ timeoutMs: 1_500, channelConcurrency: 4 });
    const started = Date.now();
    await recordChanges(pool, f.alertIds.map((alertId) => ({ alertId, kind: 'fired' as const })));

    await until(() => healthy.received.length === 10, 'the healthy channel\'s ten webhooks');
    expect(Date.now() - started).toBeLessThan(1_500); // before the hanging sends even time out
    expect(mostOpen).toBeLessThanOrEqual(4);
    await until(async () => (await pool.query(`select count(*)::int as n from webhook_attempts a join alert_notifications n on n.id = a.notification_id where n.channel_id = $1`, [slow])).rows[0].n >= 4, 'timed-out attempts');
    const { rows } = await pool.query(`select distinct a.outcome, a.http_status from webhook_attempts a join alert_notifications n on n.id = a.notification_id where n.channel_id = $1`, [slow]);
    expect(rows).toEqual([{ outcome: 'timed_out', http_status: null }]);
    expect(mostOpen).toBeLessThanOrEqual(4);
  });

  it('refuses at send an address WEBHOOK_NETWORKS does not allow, and link-local whatever it says', async () => {
    const r = await receiver();
    const loopback = await insertChannel(pool, r.url);
    const metadata = await insertChannel(pool, 'http://169.254.169.254/latest/meta-data');
    const f = await alertFixture(pool, [loopback, metadata]);
    await deliverer({ networks: new WebhookNetworks(['10.0.0.0/8']), retry: { maxAttempts: 1, baseMs: 10, maxMs: 10 } });
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
    await until(async () => [...(await notifications(loopback)), ...(await notifications(metadata))].every((n) => n.status === 'dead'), 'both attempts');
    const [toLoopback] = await attempts((await notifications(loopback))[0].id);
    const [toMetadata] = await attempts((await notifications(metadata))[0].id);
    expect(toLoopback).toMatchObject({ outcome: 'refused', error: expect.stringContaining('WEBHOOK_NETWORKS') });
    expect(toMetadata).toMatchObject({ outcome: 'refused', error: expect.stringContaining('link-local') });
    expect(r.received).toHaveLength(0);
  });

  it('refuses a name whose addresses are all refused, checked on the address connected to', async () => {
    const r = await receiver();
    const channel = await insertChannel(pool, `http://localhost:${r.port}/hook`);
    const f = await alertFixture(pool, [channel]);
    await deliverer({ networks: new WebhookNetworks(['10.0.0.0/8']), retry: { maxAttempts: 1, baseMs: 10, maxMs: 10 } });
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
    await until(async () => (await notifications(channel))[0].status === 'dead', 'the attempt');
    expect(await attempts((await notifications(channel))[0].id)).toEqual([expect.objectContaining({ outcome: 'refused' })]);
    expect(r.received).toHaveLength(0);
  });

  it('backs off with full jitter: a random delay up to base × 2^(failures − 1), capped', () => {
    const policy = { maxAttempts: 10, baseMs: 1_000, maxMs: 300_000 };
    for (const [failures, ceiling] of [[1, 1_000], [2, 2_000], [5, 16_000], [9, 256_000], [10, 300_000], [60, 300_000]] as const) {
      const delays = Array.from({ length: 200 }, () => backoffMs(failures, policy));
      expect(Math.max(...delays)).toBeLessThan(ceiling);
      expect(Math.max(...delays)).toBeGreaterThan(ceiling / 2); // spread over the range, not fixed
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    }
  });
});
