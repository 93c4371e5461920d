import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebhookDeliverer } from '../../../src/alerts/webhooks/deliverer';
import { WebhookNetworks } from '../../../src/alerts/webhooks/webhook-networks';
import { loadConfig } from '../../../src/config';
import { createLogger } from '../../../src/log';
import { createTestDatabase } from '../../helpers/database';
import { freePort } from '../../helpers/net';
import { until } from '../../helpers/wait';
import { alertFixture, answer200, insertChannel, recordChanges, startReceiver, type Receiver } from '../../helpers/webhooks';

// A receiver down for 30 s, with the gateway's default retry policy: once it is back it gets every
// notification queued meanwhile, each alert's in order, none lost. (The scenario is the 30 s; what the
// test waits for after it is the deliveries themselves.)

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;
let deliverer: WebhookDeliverer | undefined;
let receiver: Receiver | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
});
afterAll(async () => {
  await deliverer?.stop();
  await receiver?.close();
  await pool.end();
  await database.drop();
});

it('a receiver down for 30 s gets everything afterwards, in order per alert, with the default retry policy', { timeout: 600_000 }, async () => {
  const defaults = loadConfig({});
  const port = await freePort();
  const channel = await insertChannel(pool, `http://127.0.0.1:${port}/hook`, 'whsec_outage', true);
  const f = await alertFixture(pool, [channel], 5);
  deliverer = new WebhookDeliverer(pool, database.url, createLogger('silent'), {
    timeoutMs: defaults.webhookTimeoutMs,
    retry: { maxAttempts: defaults.webhookMaxAttempts, baseMs: defaults.webhookRetryBaseMs, maxMs: defaults.webhookRetryMaxMs },
    channelConcurrency: defaults.webhookChannelConcurrency,
    concurrency: defaults.webhookConcurrency,
    pollIntervalMs: defaults.webhookPollIntervalMs,
    networks: new WebhookNetworks(),
  });
  await deliverer.start();

  const downSince = Date.now();
  for (const kind of ['fired', 'acknowledged', 'resolved'] as const) await recordChanges(pool, f.alertIds.map((alertId) => ({ alertId, kind })));
  const failed = async () => Number((await pool.query(`select count(*) from webhook_attempts a join alert_notifications n on n.id = a.notification_id where n.channel_id = $1`, [channel])).rows[0].count);
  await until(async () => Date.now() - downSince >= 30_000 && (await failed()) >= 5, 'the receiver to have been down 30 s', { timeoutMs: 60_000 });

  receiver = await startReceiver(answer200, port);
  // The next attempt of a notification that failed n times comes within base × 2^n (full jitter): the
  // deliveries are waited for that long after the most-failed one's last failure, twice over (an alert's
  // later notifications follow its earlier one), and 30 s for a loaded machine.
  const { rows: most } = await pool.query(
    `select max(failures)::int as failures from (select count(*) as failures from webhook_attempts a join alert_notifications n on n.id = a.notification_id where n.channel_id = $1 group by a.notification_id) f`,
    [channel],
  );
  const nextCeilingMs = Math.min(defaults.webhookRetryMaxMs, defaults.webhookRetryBaseMs * 2 ** most[0].failures);
  await until(
    async () => (await pool.query(`select bool_and(status = 'delivered') as done from alert_notifications where channel_id = $1`, [channel])).rows[0].done,
    `every notification delivered (the most-failed one had failed ${most[0].failures} times)`,
    { timeoutMs: 2 * nextCeilingMs + 30_000 },
  );
  const { rows } = await pool.query(`select count(*)::int as dead from alert_notifications where channel_id = $1 and status = 'dead'`, [channel]);
  expect(rows[0].dead).toBe(0);
  for (const alertId of f.alertIds) {
    const events = receiver.received.filter((w) => w.json.alert.databaseId === alertId).map((w) => w.headers['fleetgate-event']);
    expect(events).toEqual(['FIRED', 'ACKNOWLEDGED', 'RESOLVED']);
  }
  expect(new Set(receiver.received.map((w) => w.headers['idempotency-key'])).size).toBe(15);
});
