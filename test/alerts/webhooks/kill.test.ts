import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '../../helpers/database';
import { freePort } from '../../helpers/net';
import { spawnGateway, type GatewayProcess } from '../../helpers/process';
import { until } from '../../helpers/wait';
import { alertFixture, insertChannel, recordChanges, startReceiver, type Receiver } from '../../helpers/webhooks';

// At least once across a crash: a gateway killed (SIGKILL) while a receiver holds its webhook leaves
// the notification leased; once the lease lapses another gateway sends it, with the same Idempotency-Key.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;
let receiver: Receiver;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 3 });
});
afterAll(async () => {
  for (const gateway of gateways) if (gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill('SIGKILL');
  await Promise.all(gateways.map((g) => g.exited));
  await receiver?.close();
  await pool.end();
  await database.drop();
});

it('a webhook whose sender is killed mid-send is delivered by another process with the same Idempotency-Key', { timeout: 120_000 }, async () => {
  // The first request is held (never answered): the sender dies while it waits. Later ones get 200.
  receiver = await startReceiver((_req, res) => {
    if (receiver.received.length > 1) res.end('ok');
  });
  const channel = await insertChannel(pool, receiver.url, 'whsec_kill');
  const f = await alertFixture(pool, [channel]);
  const env = { DATABASE_URL: database.url, LOG_LEVEL: 'warn', WEBHOOK_TIMEOUT_MS: '3000', WEBHOOK_POLL_INTERVAL_MS: '100' };
  const first = await spawnGateway({ ...env, PORT: String(await freePort()) });
  gateways.push(first);

  await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
  await until(() => receiver.received.length === 1, 'the first send to arrive');
  first.child.kill('SIGKILL');
  await first.exited;
  const { rows: [leased] } = await pool.query(`select id::int, status, attempts, lease_until, idempotency_key from alert_notifications where channel_id = $1`, [channel]);
  expect(leased).toMatchObject({ status: 'pending', attempts: 0, lease_until: expect.any(Date) });

  const second = await spawnGateway({ ...env, PORT: String(await freePort()) });
  gateways.push(second);
  await until(async () => (await pool.query(`select status from alert_notifications where id = $1`, [leased.id])).rows[0].status === 'delivered', 'delivery by the second gateway', { timeoutMs: 30_000 });
  expect(receiver.received.length).toBe(2);
  expect(receiver.received.map((w) => w.headers['idempotency-key'])).toEqual([leased.idempotency_key, leased.idempotency_key]);
  expect(receiver.received[1]!.body.equals(receiver.received[0]!.body)).toBe(true);
  // Not before the lease lapsed (the send deadline and its margin).
  expect(receiver.received[1]!.at).toBeGreaterThanOrEqual(leased.lease_until.getTime() - 1_000);
  const { rows: log } = await pool.query(`select attempt, outcome from webhook_attempts where notification_id = $1`, [leased.id]);
  expect(log).toEqual([{ attempt: 1, outcome: 'delivered' }]);
  second.child.kill('SIGTERM');
  await second.exited;
});
