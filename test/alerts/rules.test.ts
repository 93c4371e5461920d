import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acknowledgeAlert } from '../../src/alerts/acknowledge';
import { AlertRequestError } from '../../src/alerts/errors';
import { createAlertRule, deleteAlertRule, updateAlertRule, type AlertRuleInput } from '../../src/alerts/rules';
import { createTestDatabase } from '../helpers/database';
import { alertsOf, insertBox, insertChannel, insertDevice } from './fixtures';

// Rule writes and acknowledge: a client's mistake is a typed error naming the argument, and nothing
// is written; a good write re-evaluates the rule in the same transaction.

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

async function refusal(write: Promise<unknown>): Promise<AlertRequestError> {
  const error = await write.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AlertRequestError);
  return error as AlertRequestError;
}

const offline: AlertRuleInput = { name: 'cam down', kind: 'device_offline', severity: 'major', forSeconds: 300 };

describe('createAlertRule refuses bad input, naming the field, and writes nothing', () => {
  it.each<[Partial<AlertRuleInput>, string]>([
    [{ name: '  ' }, 'input.name'],
    [{ name: 'x'.repeat(201) }, 'input.name'],
    [{ forSeconds: -1 }, 'input.forSeconds'],
    [{ forSeconds: 1.5 }, 'input.forSeconds'],
    [{ forSeconds: 2_592_001 }, 'input.forSeconds'],
    [{ repeatIntervalSeconds: 59 }, 'input.repeatIntervalSeconds'],
    [{ repeatIntervalSeconds: 604_801 }, 'input.repeatIntervalSeconds'],
    [{ flapChanges: 3 }, 'input.flapChanges'],
    [{ healthFigure: 'cpu' }, 'input.healthFigure'],
    [{ boxIds: [] }, 'input.boxIds'],
    [{ kind: 'box_offline', deviceTypes: ['rtsp'] }, 'input.deviceTypes'],
    [{ kind: 'device_flapping', forSeconds: 0 }, 'input.flapChanges'],
    [{ kind: 'device_flapping', forSeconds: 0, flapChanges: 1, flapWindowSeconds: 60 }, 'input.flapChanges'],
    [{ kind: 'device_flapping', forSeconds: 0, flapChanges: 5, flapWindowSeconds: 86_401 }, 'input.flapWindowSeconds'],
    [{ kind: 'device_flapping', forSeconds: 30, flapChanges: 5, flapWindowSeconds: 60 }, 'input.forSeconds'],
    [{ kind: 'box_health', healthFigure: 'temperature' }, 'input.healthThreshold'],
    [{ kind: 'box_health', healthFigure: 'cpu', healthThreshold: 101 }, 'input.healthThreshold'],
    [{ kind: 'box_health', healthFigure: 'fan' as never, healthThreshold: 50 }, 'input.healthFigure'],
  ])('%j -> %s', async (change, argument) => {
    const error = await refusal(createAlertRule(pool, { ...offline, ...change }, 'op'));
    expect(error).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    expect((await pool.query(`select count(*)::int as n from alert_rules`)).rows[0].n).toBe(0);
  });

  it('lists the boxes that are unknown or removed, and the channels that do not exist', async () => {
    const box = await insertBox(pool);
    const removed = await insertBox(pool);
    await pool.query(`update boxes set removed_at = now() where id = $1`, [removed]);
    const boxes = await refusal(createAlertRule(pool, { ...offline, boxIds: [box, removed, 999_999] }, 'op'));
    expect(boxes).toMatchObject({ argument: 'input.boxIds', details: { boxIds: [removed, 999_999] } });
    const channels = await refusal(createAlertRule(pool, { ...offline, channelIds: [888_888] }, 'op'));
    expect(channels).toMatchObject({ argument: 'input.channelIds', details: { channelIds: [888_888] } });
    expect((await pool.query(`select count(*)::int as n from alert_rules`)).rows[0].n).toBe(0);
  });
});

describe('updateAlertRule and deleteAlertRule', () => {
  it('patches only what is given, routes to channels, and refuses a field of another kind', async () => {
    const channel = await insertChannel(pool);
    const rule = await createAlertRule(pool, { ...offline, description: 'door cams', channelIds: [channel] }, 'alice');
    expect(rule).toMatchObject({ name: 'cam down', description: 'door cams', forSeconds: 300, enabled: true, createdBy: 'alice', boxIds: null });
    const updated = await updateAlertRule(pool, rule.id, { name: 'cams down', description: null, repeatIntervalSeconds: 600 }, 'bob');
    expect(updated).toMatchObject({ name: 'cams down', description: null, forSeconds: 300, repeatIntervalSeconds: 600, updatedBy: 'bob', createdBy: 'alice' });
    expect((await pool.query(`select channel_id from alert_rule_channels where rule_id = $1`, [rule.id])).rows).toEqual([{ channel_id: channel }]);
    expect(await refusal(updateAlertRule(pool, rule.id, { healthThreshold: 50 }, 'bob'))).toMatchObject({ argument: 'patch.healthThreshold' });
    expect(await refusal(updateAlertRule(pool, rule.id, { forSeconds: -5 }, 'bob'))).toMatchObject({ argument: 'patch.forSeconds' });
    await updateAlertRule(pool, rule.id, { channelIds: null }, 'bob');
    expect((await pool.query(`select 1 from alert_rule_channels where rule_id = $1`, [rule.id])).rowCount).toBe(0);
  });

  it('NOT_FOUND for an unknown or deleted rule', async () => {
    const rule = await createAlertRule(pool, offline, 'op');
    await deleteAlertRule(pool, rule.id, 'op');
    expect((await pool.query(`select deleted_at is not null as deleted from alert_rules where id = $1`, [rule.id])).rows[0].deleted).toBe(true);
    expect(await refusal(updateAlertRule(pool, rule.id, { name: 'x' }, 'op'))).toMatchObject({ code: 'NOT_FOUND', argument: 'id' });
    expect(await refusal(deleteAlertRule(pool, rule.id, 'op'))).toMatchObject({ code: 'NOT_FOUND', argument: 'id' });
    expect(await refusal(deleteAlertRule(pool, 123_456, 'op'))).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('acknowledgeAlert', () => {
  it('firing -> acknowledged once (who, when, comment); again is a no-op; resolved is ALERT_NOT_OPEN', async () => {
    const box = await insertBox(pool);
    const device = await insertDevice(pool, box, { status: 'offline', statusSince: new Date(Date.now() - 5000) });
    const quiet = await insertChannel(pool, false);
    const told = await insertChannel(pool, true);
    const rule = await createAlertRule(pool, { ...offline, forSeconds: 1, boxIds: [box], repeatIntervalSeconds: 60, channelIds: [quiet, told] }, 'op');
    const [alert] = await alertsOf(pool, rule.id);
    expect(alert).toMatchObject({ state: 'firing', subject: `device:${device}` });

    expect(await refusal(acknowledgeAlert(pool, alert!.id, 'carol', 'x'.repeat(1001)))).toMatchObject({ argument: 'comment' });
    const acked = await acknowledgeAlert(pool, alert!.id, 'carol', 'replacing the cable');
    expect(acked).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'carol', acknowledgeComment: 'replacing the cable', nextRepeatAt: null });
    const again = await acknowledgeAlert(pool, alert!.id, 'dave', 'me too');
    expect(again).toMatchObject({ acknowledgedBy: 'carol', acknowledgedAt: acked.acknowledgedAt });
    const { rows: changes } = await pool.query(`select kind from alert_changes where alert_id = $1 order by id`, [alert!.id]);
    expect(changes.map((c) => c.kind)).toEqual(['fired', 'acknowledged']);
    const { rows: notes } = await pool.query(`select channel_id, kind from alert_notifications where alert_id = $1 order by id`, [alert!.id]);
    expect(notes).toEqual([
      { channel_id: quiet, kind: 'fired' },
      { channel_id: told, kind: 'fired' },
      { channel_id: told, kind: 'acknowledged' },
    ]);

    await deleteAlertRule(pool, rule.id, 'op');
    expect(await refusal(acknowledgeAlert(pool, alert!.id, 'carol', null))).toMatchObject({ code: 'ALERT_NOT_OPEN', argument: 'id', details: { resolution: 'rule_deleted' } });
    expect(await refusal(acknowledgeAlert(pool, 987_654, 'carol', null))).toMatchObject({ code: 'NOT_FOUND', argument: 'id' });
  });
});
