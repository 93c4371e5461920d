import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebhookDeliverer } from '../../../src/alerts/webhooks/deliverer';
import { sign } from '../../../src/alerts/webhooks/signature';
import { WebhookNetworks } from '../../../src/alerts/webhooks/webhook-networks';
import { createLogger } from '../../../src/log';
import { startWebhookSink, type Sink } from '../../../tools/webhook-sink/sink';
import { createTestDatabase } from '../../helpers/database';
import { runScript } from '../../helpers/process';
import { until } from '../../helpers/wait';
import { alertFixture, insertChannel, recordChanges } from '../../helpers/webhooks';

// `npm run webhook-sink`: one line per webhook with its signature checked, DUPLICATE on a repeated key, 401 on a bad signature.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;
let sink: Sink;
let deliverer: WebhookDeliverer;
const lines: string[] = [];
const secret = 'whsec_sinktestsinktestsinktestsinktestsinktest';

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 3 });
  sink = await startWebhookSink({ port: 0, secret, print: (line) => lines.push(line) });
  deliverer = new WebhookDeliverer(pool, database.url, createLogger('silent'), {
    timeoutMs: 2_000,
    retry: { maxAttempts: 3, baseMs: 20, maxMs: 50 },
    channelConcurrency: 4,
    concurrency: 8,
    pollIntervalMs: 50,
    networks: new WebhookNetworks(),
  });
  await deliverer.start();
});
afterAll(async () => {
  await deliverer.stop();
  await sink.close();
  await pool.end();
  await database.drop();
});

it('prints each webhook with its signature checked, flags a repeated Idempotency-Key, and answers 401 to a bad signature', async () => {
  const channel = await insertChannel(pool, sink.url, secret);
  const f = await alertFixture(pool, [channel]);
  await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
  await until(() => lines.length === 1, 'the line of the webhook');
  expect(lines[0]).toMatch(new RegExp(`^\\S+Z  FIRED  MAJOR  "cam down"  box gate \\(K-[^)]+\\) device door  alert ${f.alertIds[0]}  signature OK$`));

  // The same webhook again (as after a crash mid-send): DUPLICATE. A forged one: 401.
  const { rows: [n] } = await pool.query(`select idempotency_key as key, payload from alert_notifications where channel_id = $1`, [channel]);
  const body = Buffer.from(JSON.stringify(n.payload));
  const post = (signature: string) =>
    fetch(sink.url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'idempotency-key': n.key, 'fleetgate-event': 'FIRED', 'fleetgate-signature': signature } });
  expect((await post(sign(secret, body))).status).toBe(200);
  expect(lines[1]).toMatch(new RegExp(`signature OK  DUPLICATE ${n.key}$`));
  expect((await post(sign('whsec_forged', body))).status).toBe(401);
  expect(lines[2]).toMatch(/signature BAD \(mismatch\)/);
  expect(lines[2]).not.toContain('DUPLICATE');
  expect(sink.counts).toEqual({ received: 3, duplicates: 1, badSignatures: 1 });
});

it('refuses bad options with a clear message', async () => {
  const { code, stderr } = await runScript('tools/webhook-sink/main.ts', ['--port', 'x', '--fail-rate', '2']);
  expect(code).toBe(2);
  expect(stderr).toContain('--port x is not a port');
  expect(stderr).toContain('--fail-rate 2 is not a share from 0 to 1');
});
