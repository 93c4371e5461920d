import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.close());

type Dev = { id: string; status?: string; name?: string };
const newer = (key: string, devices: Dev[]) => ({
  mq_license_key: key,
  media_devices: devices.map((d) => ({
    media_device_id: d.id,
    media_device_name: d.name ?? `camera ${d.id}`,
    media_device_status: d.status ?? 'online',
    media_device_type: 'rtsp',
    media_device_ip: '10.1.1.1',
    media_device_url: `rtsp://10.1.1.1/${d.id}`,
    permission_id: 'group-1',
  })),
});

async function events(key: string) {
  const { rows } = await gateway.sql.query(
    `select d.external_id as device, e.from_status as "from", e.to_status as "to"
     from status_events e join boxes b on b.id = e.box_id left join devices d on d.id = e.device_id
     where b.license_key = $1 order by e.id`,
    [key],
  );
  return rows;
}

async function deviceRows(key: string) {
  const { rows } = await gateway.sql.query(
    'select d.* from devices d join boxes b on b.id = d.box_id where b.license_key = $1 order by d.external_id',
    [key],
  );
  return rows;
}

async function boxRow(key: string) {
  return (await gateway.sql.query('select * from boxes where license_key = $1', [key])).rows[0];
}

async function post(body: unknown) {
  const res = await postReport(gateway.url, body);
  expect(res.status, res.text).toBe(200);
  return res.json;
}

describe('history', () => {
  it('records first sight of the box and of each device', async () => {
    const answer = await post(newer('H-FIRST', [{ id: 'a' }, { id: 'b', status: 'offline' }]));
    expect(answer.changes).toBe(3);
    expect(await events('H-FIRST')).toEqual([
      { device: null, from: null, to: 'online' },
      { device: 'a', from: null, to: 'online' },
      { device: 'b', from: null, to: 'offline' },
    ]);
  });

  it('a report equal to the last one only moves the last report time', async () => {
    const report = newer('H-SAME', [{ id: 'a' }, { id: 'b', status: 'offline' }]);
    await post(report);
    const devicesBefore = await deviceRows('H-SAME');
    const boxBefore = await boxRow('H-SAME');
    const eventsBefore = await events('H-SAME');
    const xminBefore = (await gateway.sql.query(`select d.xmin::text from devices d join boxes b on b.id = d.box_id where b.license_key = 'H-SAME' order by d.id`)).rows;
    await new Promise((r) => setTimeout(r, 20));
    const answer = await post(report);
    expect(answer.changes).toBe(0);
    expect(await deviceRows('H-SAME')).toEqual(devicesBefore);
    // Not even rewritten with the same values: the row versions are the same.
    expect((await gateway.sql.query(`select d.xmin::text from devices d join boxes b on b.id = d.box_id where b.license_key = 'H-SAME' order by d.id`)).rows).toEqual(xminBefore);
    expect(await events('H-SAME')).toEqual(eventsBefore);
    const boxAfter = await boxRow('H-SAME');
    expect(boxAfter.last_report_at.getTime()).toBeGreaterThan(boxBefore.last_report_at.getTime());
    expect(boxAfter.report_count).toBe(boxBefore.report_count + 1);
    expect(boxAfter.first_report_at).toEqual(boxBefore.first_report_at);
  });

  it('the same devices in another order are no change', async () => {
    await post(newer('H-ORDER', [{ id: 'a' }, { id: 'b' }]));
    const answer = await post(newer('H-ORDER', [{ id: 'b' }, { id: 'a' }]));
    expect(answer.changes).toBe(0);
  });

  it('records online to offline and back, and nothing for an unchanged neighbour', async () => {
    await post(newer('H-FLIP', [{ id: 'a' }, { id: 'b' }]));
    expect((await post(newer('H-FLIP', [{ id: 'a', status: 'offline' }, { id: 'b' }]))).changes).toBe(1);
    expect((await post(newer('H-FLIP', [{ id: 'a' }, { id: 'b' }]))).changes).toBe(1);
    expect((await events('H-FLIP')).slice(3)).toEqual([
      { device: 'a', from: 'online', to: 'offline' },
      { device: 'a', from: 'offline', to: 'online' },
    ]);
    const [a] = await deviceRows('H-FLIP');
    expect(a.status).toBe('online');
    expect(a.status_since.getTime()).toBeGreaterThan(a.first_seen_at.getTime());
  });

  it('a renamed device is updated without a history row', async () => {
    await post(newer('H-RENAME', [{ id: 'a' }]));
    expect((await post(newer('H-RENAME', [{ id: 'a', name: 'front door' }]))).changes).toBe(0);
    expect((await deviceRows('H-RENAME'))[0].name).toBe('front door');
    expect(await events('H-RENAME')).toHaveLength(2);
  });

  it('records a device gone from the list and its return, keeping its row', async () => {
    await post(newer('H-GONE', [{ id: 'a' }, { id: 'b', status: 'offline' }]));
    expect((await post(newer('H-GONE', [{ id: 'a' }]))).changes).toBe(1);
    const gone = (await deviceRows('H-GONE'))[1];
    expect(gone.removed_at).toBeInstanceOf(Date);
    expect(gone.status).toBe('offline'); // its last reported status is kept
    expect((await post(newer('H-GONE', [{ id: 'a' }]))).changes).toBe(0);
    expect((await post(newer('H-GONE', [{ id: 'a' }, { id: 'b' }]))).changes).toBe(1);
    expect((await deviceRows('H-GONE'))[1]).toMatchObject({ removed_at: null, status: 'online' });
    expect((await events('H-GONE')).slice(3)).toEqual([
      { device: 'b', from: 'offline', to: 'removed' },
      { device: 'b', from: 'removed', to: 'online' },
    ]);
  });

  it('an empty list removes every device', async () => {
    await post(newer('H-EMPTY', [{ id: 'a' }, { id: 'b' }]));
    expect((await post(newer('H-EMPTY', []))).changes).toBe(2);
    expect((await deviceRows('H-EMPTY')).every((d) => d.removed_at)).toBe(true);
  });

  it('a box registered before it reports goes online with its first report', async () => {
    await gateway.sql.query(`insert into boxes (license_key, status) values ('H-REGISTERED', 'offline')`);
    expect((await post(newer('H-REGISTERED', [{ id: 'a' }]))).changes).toBe(2);
    expect((await boxRow('H-REGISTERED')).status).toBe('online');
    expect(await events('H-REGISTERED')).toEqual([
      { device: null, from: null, to: 'online' },
      { device: 'a', from: null, to: 'online' },
    ]);
  });

  it('a removed box that reports again comes back, even with an unchanged report', async () => {
    const report = newer('H-REMOVED', [{ id: 'a' }]);
    await post(report);
    await gateway.sql.query(`update boxes set removed_at = now() where license_key = 'H-REMOVED'`);
    expect((await post(report)).changes).toBe(1);
    expect((await boxRow('H-REMOVED')).removed_at).toBeNull();
    expect((await events('H-REMOVED')).at(-1)).toEqual({ device: null, from: 'removed', to: 'online' });
  });

  it('learns the interval between reports', async () => {
    await post(newer('H-PERIOD', [{ id: 'a' }]));
    await new Promise((r) => setTimeout(r, 700));
    await post(newer('H-PERIOD', [{ id: 'a' }]));
    const { observed_period_seconds } = await boxRow('H-PERIOD');
    expect(observed_period_seconds).toBeGreaterThan(0.6);
    expect(observed_period_seconds).toBeLessThan(2);
  });
});

describe('ordering and group commit', () => {
  it('applies two quick reports from one box in arrival order', async () => {
    await post(newer('O-QUICK', [{ id: 'a' }]));
    // Sent without waiting: both land in the same batch or in consecutive ones.
    const first = postReport(gateway.url, newer('O-QUICK', [{ id: 'a', status: 'offline' }]));
    const second = postReport(gateway.url, newer('O-QUICK', [{ id: 'a' }, { id: 'b' }]));
    const [r1, r2] = await Promise.all([first, second]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect(r1.json.changes + r2.json.changes).toBe(3);
    expect((await events('O-QUICK')).slice(2)).toEqual([
      { device: 'a', from: 'online', to: 'offline' },
      { device: 'a', from: 'offline', to: 'online' },
      { device: 'b', from: null, to: 'online' },
    ]);
    expect((await deviceRows('O-QUICK')).map((d) => d.status)).toEqual(['online', 'online']);
  });

  it('many boxes at once: each answered after its batch committed, all stored', async () => {
    const reports = Array.from({ length: 200 }, (_, i) => newer(`O-MANY-${i}`, [{ id: 'a' }, { id: 'b', status: i % 2 ? 'online' : 'offline' }]));
    const answers = await Promise.all(reports.map((r) => postReport(gateway.url, r)));
    expect(answers.every((a) => a.status === 200 && a.json.changes === 3)).toBe(true);
    const { rows } = await gateway.sql.query(
      `select count(distinct b.id)::int as boxes, count(d.id)::int as devices from boxes b join devices d on d.box_id = b.id where b.license_key like 'O-MANY-%'`,
    );
    expect(rows[0]).toEqual({ boxes: 200, devices: 400 });
    // Repeating them all writes nothing new.
    const again = await Promise.all(reports.map((r) => postReport(gateway.url, r)));
    expect(again.every((a) => a.status === 200 && a.json.changes === 0)).toBe(true);
  });

  it('one box reporting many times at once ends in the state of its last report', async () => {
    const states = Array.from({ length: 30 }, (_, i) => newer('O-BURST', [{ id: 'a', status: i % 2 ? 'offline' : 'online' }]));
    const results = [];
    // Issue them in order on separate connections without waiting for answers.
    for (const state of states) results.push(postReport(gateway.url, state));
    const answers = await Promise.all(results);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const total = answers.reduce((sum, a) => sum + a.json.changes, 0);
    const history = await events('O-BURST');
    expect(history).toHaveLength(total);
    // Whatever order the requests arrived in, history chains: each event starts where the last ended.
    for (let i = 2; i < history.length; i++) expect(history[i].from).toBe(history[i - 1].to);
    const last = history[history.length - 1];
    expect((await deviceRows('O-BURST'))[0].status).toBe(last.to);
  });
});
