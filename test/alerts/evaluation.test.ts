import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acknowledgeAlert } from '../../src/alerts/acknowledge';
import { evaluationRound } from '../../src/alerts/evaluator';
import { createAlertRule } from '../../src/alerts/rules';
import { createTestDatabase } from '../helpers/database';
import { alertsOf, insertBox, insertChannel, insertDevice, seconds } from './fixtures';

// Each rule kind at the evaluator's level: conditions made by SQL, rounds run at chosen times, so
// "fires at condition_since + for, resolves when it clears" is checked to the millisecond.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
});
afterAll(async () => {
  await pool.end();
  await database.drop();
});

async function round(now: Date) {
  const client = await pool.connect();
  try {
    return await evaluationRound(client, now);
  } finally {
    client.release();
  }
}

describe('DEVICE_OFFLINE', () => {
  it('fires at status_since + forSeconds with the seconds held, and resolves when the device is back', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool);
    const device = await insertDevice(pool, box, { status: 'offline', statusSince: t0 });
    const rule = await createAlertRule(pool, { name: 'cam down', kind: 'device_offline', severity: 'major', forSeconds: 60, boxIds: [box] }, 'op', seconds(t0, 1));
    expect(await alertsOf(pool, rule.id)).toEqual([]);
    await round(seconds(t0, 59.9));
    expect(await alertsOf(pool, rule.id)).toEqual([]);
    const recorded = await round(seconds(t0, 60.5));
    expect(recorded.map((c) => c.kind)).toEqual(['fired']);
    const [alert] = await alertsOf(pool, rule.id);
    expect(alert).toMatchObject({ state: 'firing', severity: 'major', subject: `device:${device}`, condition_since: t0, fires_at: seconds(t0, 60), fired_at: seconds(t0, 60.5) });
    expect(alert!.value).toBeCloseTo(60.5, 3);
    await round(seconds(t0, 61)); // still due: same alert, no change
    expect(await alertsOf(pool, rule.id)).toHaveLength(1);
    await pool.query(`update devices set status = 'online', status_since = $2 where id = $1`, [device, seconds(t0, 62)]);
    await round(seconds(t0, 62.1));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'resolved', resolution: 'cleared', resolved_at: seconds(t0, 62.1) }]);
  });

  it('a device gone from its box list counts from removed_at; removing the box resolves subject_removed', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool);
    await insertDevice(pool, box, { status: 'online', removedAt: t0 });
    const rule = await createAlertRule(pool, { name: 'gone', kind: 'device_offline', severity: 'minor', forSeconds: 10, boxIds: [box] }, 'op', t0);
    await round(seconds(t0, 10));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'firing', condition_since: t0, fires_at: seconds(t0, 10) }]);
    await pool.query(`update boxes set removed_at = $2 where id = $1`, [box, seconds(t0, 11)]);
    await round(seconds(t0, 12));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'resolved', resolution: 'subject_removed' }]);
  });

  it('device types scope the rule', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool);
    await insertDevice(pool, box, { status: 'offline', statusSince: t0, type: 'photo' });
    const rtsp = await insertDevice(pool, box, { status: 'offline', statusSince: t0, type: 'rtsp' });
    const rule = await createAlertRule(pool, { name: 'rtsp', kind: 'device_offline', severity: 'info', boxIds: [box], deviceTypes: ['rtsp'] }, 'op', t0);
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ subject: `device:${rtsp}` }]); // for 0: fires as the rule is made
  });
});

describe('BOX_OFFLINE', () => {
  it('fires at status_since + forSeconds, resolves when the box reports again', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool, { status: 'offline', statusSince: t0 });
    const rule = await createAlertRule(pool, { name: 'box down', kind: 'box_offline', severity: 'critical', forSeconds: 30, boxIds: [box] }, 'op', t0);
    await round(seconds(t0, 29));
    expect(await alertsOf(pool, rule.id)).toEqual([]);
    await round(seconds(t0, 30.2));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'firing', subject: `box:${box}`, fires_at: seconds(t0, 30), value: 30.2 }]);
    await pool.query(`update boxes set status = 'online', status_since = $2 where id = $1`, [box, seconds(t0, 31)]);
    await round(seconds(t0, 31));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'resolved', resolution: 'cleared' }]);
  });
});

describe('DEVICE_FLAPPING', () => {
  it('fires at the N-th change within the window and resolves when the window holds fewer', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool);
    const device = await insertDevice(pool, box);
    const change = (s: number, from: string | null, to: string) =>
      pool.query(`insert into status_events (box_id, device_id, from_status, to_status, at) values ($1, $2, $3, $4, $5)`, [box, device, from, to, seconds(t0, s)]);
    await change(0, null, 'online'); // first seen: not a change
    await change(1, 'online', 'offline');
    await change(2, 'offline', 'online');
    const rule = await createAlertRule(pool, { name: 'flap', kind: 'device_flapping', severity: 'warning', flapChanges: 3, flapWindowSeconds: 60, boxIds: [box] }, 'op', seconds(t0, 2));
    expect(await alertsOf(pool, rule.id)).toEqual([]);
    await change(3, 'online', 'offline');
    await round(seconds(t0, 3.5));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'firing', condition_since: seconds(t0, 1), fires_at: seconds(t0, 3), value: 3 }]);
    await round(seconds(t0, 61.5)); // the change at 1 s left the window: 2 remain
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'resolved', resolution: 'cleared', resolved_at: seconds(t0, 61.5) }]);
  });
});

describe('BOX_HEALTH', () => {
  it('fires forSeconds after the report that first carried the figure above, read like the API reads it', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool, { extData: { temperature: '85℃' }, lastReportAt: t0 });
    const cool = await insertBox(pool, { extData: { temperature: 'n/a' }, lastReportAt: t0 });
    const glitch = await insertBox(pool, { extData: { temperature: '1e999' }, lastReportAt: t0 });
    const rule = await createAlertRule(
      pool,
      { name: 'hot', kind: 'box_health', severity: 'major', healthFigure: 'temperature', healthThreshold: 80, forSeconds: 20, boxIds: [box, cool, glitch] },
      'op',
      seconds(t0, 5),
    );
    const { rows: pending } = await pool.query(`select subject, since from alert_pending where rule_id = $1`, [rule.id]);
    expect(pending).toEqual([{ subject: `box:${box}`, since: t0 }]);
    await round(seconds(t0, 19));
    expect(await alertsOf(pool, rule.id)).toEqual([]);
    await round(seconds(t0, 20));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'firing', subject: `box:${box}`, condition_since: t0, fires_at: seconds(t0, 20), value: 85 }]);
    await pool.query(`update boxes set gateway_ext_data = '{"temperature": 70}', last_report_at = $2 where id = $1`, [box, seconds(t0, 25)]);
    await round(seconds(t0, 25));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ state: 'resolved', resolution: 'cleared' }]);
    expect((await pool.query(`select 1 from alert_pending where rule_id = $1`, [rule.id])).rowCount).toBe(0);
  });
});

describe('one open alert per rule and subject', () => {
  it('the database refuses a second open alert, and acknowledged alerts stay open until they clear', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool, { status: 'offline', statusSince: t0 });
    const rule = await createAlertRule(pool, { name: 'down', kind: 'box_offline', severity: 'major', boxIds: [box] }, 'op', t0);
    const [alert] = await alertsOf(pool, rule.id);
    await expect(
      pool.query(
        `insert into alerts (rule_id, subject, box_id, state, severity, condition_since, fires_at, fired_at, updated_at) values ($1, $2, $3, 'firing', 'major', now(), now(), now(), now())`,
        [rule.id, `box:${box}`, box],
      ),
    ).rejects.toThrow(/alerts_open_key/);
    await acknowledgeAlert(pool, alert!.id, 'op', 'on it', seconds(t0, 1));
    await round(seconds(t0, 2));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ id: alert!.id, state: 'acknowledged' }]);
    await pool.query(`update boxes set status = 'online' where id = $1`, [box]);
    await round(seconds(t0, 3));
    expect(await alertsOf(pool, rule.id)).toMatchObject([{ id: alert!.id, state: 'resolved', resolution: 'cleared' }]);
  });
});

describe('subjects that go away, and repeats', () => {
  it('a deleted box resolves its alerts subject_removed', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool, { status: 'offline', statusSince: t0 });
    await insertDevice(pool, box, { status: 'offline', statusSince: t0 });
    const boxRule = await createAlertRule(pool, { name: 'box', kind: 'box_offline', severity: 'major', boxIds: [box] }, 'op', t0);
    const deviceRule = await createAlertRule(pool, { name: 'device', kind: 'device_offline', severity: 'major', boxIds: [box] }, 'op', t0);
    await pool.query(`delete from boxes where id = $1`, [box]);
    await round(seconds(t0, 1));
    expect(await alertsOf(pool, boxRule.id)).toMatchObject([{ state: 'resolved', resolution: 'subject_removed' }]);
    expect(await alertsOf(pool, deviceRule.id)).toMatchObject([{ state: 'resolved', resolution: 'subject_removed' }]);
  });

  it('an alert still firing is notified again every repeat interval; an acknowledged one is not', async () => {
    const t0 = new Date(Date.now() - 1000);
    const box = await insertBox(pool, { status: 'offline', statusSince: t0 });
    const other = await insertBox(pool, { status: 'offline', statusSince: t0 });
    const channel = await insertChannel(pool);
    const rule = await createAlertRule(pool, { name: 'repeat', kind: 'box_offline', severity: 'major', boxIds: [box, other], repeatIntervalSeconds: 60, channelIds: [channel] }, 'op', t0);
    const [first, second] = await alertsOf(pool, rule.id);
    await acknowledgeAlert(pool, second!.id, 'op', null, seconds(t0, 1));
    await round(seconds(t0, 59));
    await round(seconds(t0, 60));
    await round(seconds(t0, 61)); // the next repeat is due at 120 s
    const kinds = async (id: number) => (await pool.query(`select kind from alert_notifications where alert_id = $1 order by id`, [id])).rows.map((r) => r.kind);
    expect(await kinds(first!.id)).toEqual(['fired', 'repeat']);
    expect(await kinds(second!.id)).toEqual(['fired']);
    await round(seconds(t0, 120));
    expect(await kinds(first!.id)).toEqual(['fired', 'repeat', 'repeat']);
  });
});
