import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALERT_CHANGES_CHANNEL, queueRepeats, recordAlertChanges } from '../../src/alerts/changes';
import { inTransaction, run, sql } from '../../src/db/sql';
import { createTestDatabase } from '../helpers/database';

// The change log and the outbox: written in the caller's transaction, one row per change and one
// notification per routed channel, with the body as of the change.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url });
});
afterAll(async () => {
  await pool.end();
  await database.drop();
});

async function fixture() {
  const { rows: [box] } = await pool.query<{ id: number }>(`insert into boxes (license_key, name) values ('K${Math.random()}', 'gate') returning id`);
  const { rows: [device] } = await pool.query<{ id: number }>(
    `insert into devices (box_id, external_id, name, type, status, status_since, first_seen_at, updated_at)
     values ($1, 'cam-1', 'door', 'rtsp', 'offline', now(), now(), now()) returning id`,
    [box!.id],
  );
  const { rows: [rule] } = await pool.query<{ id: number }>(
    `insert into alert_rules (name, kind, severity, for_seconds, repeat_interval_seconds) values ('cam down', 'device_offline', 'major', 60, 300) returning id`,
  );
  const channel = async (notifyAcknowledged: boolean, enabled = true) => {
    const { rows: [c] } = await pool.query<{ id: number }>(
      `insert into webhook_channels (name, url, secret, notify_acknowledged, enabled) values ('c', 'http://127.0.0.1:9/', 's', $1, $2) returning id`,
      [notifyAcknowledged, enabled],
    );
    await pool.query(`insert into alert_rule_channels (rule_id, channel_id) values ($1, $2)`, [rule!.id, c!.id]);
    return c!.id;
  };
  const plain = await channel(false);
  const withAcks = await channel(true);
  await channel(true, false); // disabled: gets nothing
  const { rows: [alert] } = await pool.query<{ id: string }>(
    `insert into alerts (rule_id, subject, box_id, device_id, state, severity, value, condition_since, fires_at, fired_at, updated_at, next_repeat_at)
     values ($1, $2, $3, $4, 'firing', 'major', 61, now() - interval '61 s', now() - interval '1 s', now(), now(), now() - interval '1 s') returning id`,
    [rule!.id, `device:${device!.id}`, box!.id, device!.id],
  );
  return { boxId: box!.id, deviceId: device!.id, ruleId: rule!.id, alertId: Number(alert!.id), plain, withAcks };
}

describe('recordAlertChanges', () => {
  it('logs each change in order, queues one notification per routed channel and notifies every replica', async () => {
    const f = await fixture();
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    const heard = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload!)));
    await listener.query(`listen ${ALERT_CHANGES_CHANNEL}`);

    const at = new Date();
    const recorded = await inTransaction(pool, async (client) => {
      await run(client, sql`update alerts set state = 'acknowledged', acknowledged_at = now(), acknowledged_by = 'ops' where id = ${f.alertId}`);
      return recordAlertChanges(client, [{ alertId: f.alertId, kind: 'fired' }, { alertId: f.alertId, kind: 'acknowledged' }], at);
    });
    expect(recorded.map((c) => c.kind)).toEqual(['fired', 'acknowledged']);
    expect(recorded[1]!.id).toBeGreaterThan(recorded[0]!.id);
    expect(await heard).toBe(String(recorded[1]!.id));
    await listener.end();

    const { rows } = await pool.query(
      `select channel_id, kind, idempotency_key, payload, status from alert_notifications where alert_id = $1 order by id`,
      [f.alertId],
    );
    // fired to both enabled channels; acknowledged only to the one that asked for acknowledgements.
    expect(rows.map((r) => [r.channel_id, r.kind])).toEqual([
      [f.plain, 'fired'],
      [f.withAcks, 'fired'],
      [f.withAcks, 'acknowledged'],
    ]);
    expect(new Set(rows.map((r) => r.idempotency_key)).size).toBe(3);
    const body = rows[2]!.payload;
    expect(body.idempotencyKey).toBe(rows[2]!.idempotency_key);
    expect(body.event).toBe('ACKNOWLEDGED');
    expect(body.alert).toMatchObject({ databaseId: f.alertId, state: 'ACKNOWLEDGED', severity: 'MAJOR', value: 61, acknowledgedBy: 'ops' });
    expect(body.alert.firedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Buffer.from(body.alert.id, 'base64').toString()).toBe(`Alert:${f.alertId}`);
    expect(body.rule).toMatchObject({ databaseId: f.ruleId, kind: 'DEVICE_OFFLINE', forSeconds: 60 });
    expect(body.subject).toMatchObject({ kind: 'DEVICE', box: { databaseId: f.boxId, name: 'gate' }, device: { databaseId: f.deviceId, externalId: 'cam-1', type: 'RTSP' } });
  });

  it('writes nothing when its transaction rolls back', async () => {
    const f = await fixture();
    await expect(
      inTransaction(pool, async (client) => {
        await recordAlertChanges(client, [{ alertId: f.alertId, kind: 'resolved' }], new Date());
        throw new Error('the caller fails after recording');
      }),
    ).rejects.toThrow('the caller fails');
    const { rows } = await pool.query(`select (select count(*) from alert_changes where alert_id = $1)::int as changes,
      (select count(*) from alert_notifications where alert_id = $1)::int as notifications`, [f.alertId]);
    expect(rows[0]).toEqual({ changes: 0, notifications: 0 });
  });
});

describe('queueRepeats', () => {
  it('queues a repeat for a firing alert past its repeat time and moves the next one on', async () => {
    const f = await fixture();
    const now = new Date();
    const due = await inTransaction(pool, (client) => queueRepeats(client, now));
    expect(due).toBeGreaterThanOrEqual(1);
    const { rows } = await pool.query(`select kind, channel_id from alert_notifications where alert_id = $1 order by id`, [f.alertId]);
    expect(rows).toEqual([{ kind: 'repeat', channel_id: f.plain }, { kind: 'repeat', channel_id: f.withAcks }]);
    const { rows: [alert] } = await pool.query(`select next_repeat_at from alerts where id = $1`, [f.alertId]);
    expect(alert!.next_repeat_at.getTime()).toBe(now.getTime() + 300_000);
    // Not due again until then.
    await inTransaction(pool, (client) => queueRepeats(client, now));
    const { rows: after } = await pool.query(`select count(*)::int as n from alert_notifications where alert_id = $1`, [f.alertId]);
    expect(after[0]!.n).toBe(2);
  });
});
