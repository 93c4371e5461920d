import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebhookChannel, deleteWebhookChannel, rotateWebhookChannelSecret, updateWebhookChannel } from '../../../src/alerts/webhooks/channels';
import { redeliverNotification } from '../../../src/alerts/webhooks/redeliver';
import { WebhookNetworks } from '../../../src/alerts/webhooks/webhook-networks';
import { AlertRequestError } from '../../../src/alerts/errors';
import { createTestDatabase } from '../../helpers/database';
import { alertFixture, recordChanges } from '../../helpers/webhooks';

// Channel writes: URLs checked before anything is written, a secret shown once and stored to sign.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;
const anywhere = new WebhookNetworks();

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 3 });
});
afterAll(async () => {
  await pool.end();
  await database.drop();
});

async function refusal(promise: Promise<unknown>): Promise<AlertRequestError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AlertRequestError);
  return error as AlertRequestError;
}

const channelCount = async () => (await pool.query('select count(*)::int as n from webhook_channels')).rows[0].n as number;

describe('webhook channels', () => {
  it('creates a channel with a whsec_ secret returned once and stored to sign, never in the channel', async () => {
    const { channel, secret } = await createWebhookChannel(pool, { name: ' ops pager ', url: 'http://127.0.0.1:9099/hook?team=ops' }, 'alice', anywhere);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(channel).toMatchObject({ name: 'ops pager', url: 'http://127.0.0.1:9099/hook?team=ops', enabled: true, notifyAcknowledged: false, createdBy: 'alice' });
    expect(channel).not.toHaveProperty('secret');
    expect(JSON.stringify(channel)).not.toContain(secret);
    const { rows } = await pool.query('select secret from webhook_channels where id = $1', [channel.id]);
    expect(rows[0].secret).toBe(secret);

    const rotated = await rotateWebhookChannelSecret(pool, channel.id);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(secret);
    expect(rotated.channel).not.toHaveProperty('secret');
    expect((await pool.query('select secret from webhook_channels where id = $1', [channel.id])).rows[0].secret).toBe(rotated.secret);
  });

  it('refuses a URL that is not http(s), too long, or has credentials, as BAD_USER_INPUT on input.url, writing nothing', async () => {
    const before = await channelCount();
    for (const url of ['ftp://example.com/x', 'not a url', '', 'http://user:pw@127.0.0.1/', `http://127.0.0.1/${'a'.repeat(2048)}`, 'javascript:alert(1)']) {
      const error = await refusal(createWebhookChannel(pool, { name: 'x', url }, 'alice', anywhere));
      expect(error).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'input.url' });
    }
    expect(await refusal(createWebhookChannel(pool, { name: '  ', url: 'http://127.0.0.1/' }, 'alice', anywhere))).toMatchObject({ argument: 'input.name' });
    expect(await refusal(createWebhookChannel(pool, { name: 'x', url: 'http://no-such-host.invalid/' }, 'alice', anywhere))).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('does not resolve') });
    expect(await channelCount()).toBe(before);
  });

  it('refuses addresses the network checks refuse: WEBHOOK_URL_REFUSED with the refusal and address', async () => {
    const before = await channelCount();
    const metadata = await refusal(createWebhookChannel(pool, { name: 'x', url: 'http://169.254.169.254/latest/meta-data' }, 'alice', anywhere));
    expect(metadata).toMatchObject({ code: 'WEBHOOK_URL_REFUSED', argument: 'input.url', details: { refusal: 'link_local', address: '169.254.169.254' } });
    expect(await refusal(createWebhookChannel(pool, { name: 'x', url: 'http://[::ffff:0.0.0.0]:80/' }, 'alice', anywhere))).toMatchObject({ details: { refusal: 'unspecified' } });
    expect(await refusal(createWebhookChannel(pool, { name: 'x', url: 'http://224.0.0.1/' }, 'alice', anywhere))).toMatchObject({ details: { refusal: 'multicast' } });

    const narrowed = new WebhookNetworks(['10.0.0.0/8']);
    const outside = await refusal(createWebhookChannel(pool, { name: 'x', url: 'http://127.0.0.1:9099/' }, 'alice', narrowed));
    expect(outside).toMatchObject({ code: 'WEBHOOK_URL_REFUSED', details: { refusal: 'not_allowed', address: '127.0.0.1' }, message: expect.stringContaining('WEBHOOK_NETWORKS') });
    // A name is checked on what it resolves to now.
    expect(await refusal(createWebhookChannel(pool, { name: 'x', url: 'http://localhost:9099/' }, 'alice', narrowed))).toMatchObject({ code: 'WEBHOOK_URL_REFUSED' });
    // The gateway's own port on this machine.
    const ownPort = new WebhookNetworks(undefined, () => [4000]);
    expect(await refusal(createWebhookChannel(pool, { name: 'x', url: 'http://127.0.0.1:4000/' }, 'alice', ownPort))).toMatchObject({ details: { refusal: 'gateway_port' } });
    expect(await channelCount()).toBe(before);
  });

  it('updates what the patch gives (the URL checked again), and answers NOT_FOUND for an unknown channel', async () => {
    const { channel } = await createWebhookChannel(pool, { name: 'a', url: 'http://127.0.0.1:9099/' }, null, anywhere);
    const updated = await updateWebhookChannel(pool, channel.id, { url: 'https://127.0.0.1:8443/x', notifyAcknowledged: true, enabled: false }, anywhere);
    expect(updated).toMatchObject({ name: 'a', url: 'https://127.0.0.1:8443/x', notifyAcknowledged: true, enabled: false });
    expect(updated.updatedAt.getTime()).toBeGreaterThanOrEqual(channel.updatedAt.getTime());
    expect(await refusal(updateWebhookChannel(pool, channel.id, { url: 'http://169.254.169.254/' }, anywhere))).toMatchObject({ code: 'WEBHOOK_URL_REFUSED', argument: 'patch.url' });
    expect((await pool.query('select url from webhook_channels where id = $1', [channel.id])).rows[0].url).toBe('https://127.0.0.1:8443/x');
    expect(await refusal(updateWebhookChannel(pool, 999_999, { name: 'b' }, anywhere))).toMatchObject({ code: 'NOT_FOUND', argument: 'id' });
    expect(await refusal(rotateWebhookChannelSecret(pool, 999_999))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('deletes a channel with its routes and notifications; a second delete is NOT_FOUND', async () => {
    const { channel } = await createWebhookChannel(pool, { name: 'gone', url: 'http://127.0.0.1:9/' }, null, anywhere);
    const f = await alertFixture(pool, [channel.id]);
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
    await deleteWebhookChannel(pool, channel.id);
    const { rows } = await pool.query(
      `select (select count(*) from alert_rule_channels where channel_id = $1)::int as routes, (select count(*) from alert_notifications where channel_id = $1)::int as queued`,
      [channel.id],
    );
    expect(rows[0]).toEqual({ routes: 0, queued: 0 });
    expect(await refusal(deleteWebhookChannel(pool, channel.id))).toMatchObject({ code: 'NOT_FOUND', argument: 'id' });
  });

  it('redeliver: a pending notification is made due now, keeping its attempts; an unknown one is NOT_FOUND', async () => {
    const { channel } = await createWebhookChannel(pool, { name: 'r', url: 'http://127.0.0.1:9/' }, null, anywhere);
    const f = await alertFixture(pool, [channel.id]);
    await recordChanges(pool, [{ alertId: f.alertIds[0]!, kind: 'fired' }]);
    const { rows: [n] } = await pool.query(`update alert_notifications set attempts = 3, next_attempt_at = now() + interval '1 hour' where channel_id = $1 returning id::int`, [channel.id]);
    const now = new Date();
    const again = await redeliverNotification(pool, n.id, now);
    expect(again).toMatchObject({ id: n.id, status: 'pending', attempts: 3, nextAttemptAt: now });
    expect(await refusal(redeliverNotification(pool, 999_999))).toMatchObject({ code: 'NOT_FOUND', argument: 'id' });
  });
});
