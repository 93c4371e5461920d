import { afterAll, beforeAll, expect, it } from 'vitest';
import { postReport, type TestGateway } from '../helpers/gateway';
import { gatewayOnOwnPostgres, type OwnPostgresGateway } from '../helpers/own-postgres';

let own: OwnPostgresGateway;
let gateway: TestGateway;

beforeAll(async () => {
  own = await gatewayOnOwnPostgres('outage');
  gateway = own.gateway;
});
afterAll(() => own?.close());

const report = (status: string) => ({
  mq_license_key: 'OUTAGE0001',
  media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }],
});

it('answers 503 with Retry-After while the database is down, and recovers by itself', { timeout: 60_000 }, async () => {
  expect((await postReport(gateway.url, report('online'))).status).toBe(200);
  await own.stopPostgres();

  const started = Date.now();
  const down = await postReport(gateway.url, report('offline'));
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(down.status).toBe(503);
  expect(down.headers.get('retry-after')).toBe('5');
  expect(down.json).toEqual({
    error: { code: 'DATABASE_UNAVAILABLE', message: 'The database is unreachable; the report was not stored. Retry later.', path: null },
  });

  await own.startPostgres();
  const back = await postReport(gateway.url, report('offline'));
  expect(back.status).toBe(200);
  expect(back.json.changes).toBe(1); // the refused report was not stored, so the change is new now

  const { rows } = await gateway.sql.query(`select to_status from status_events e join devices d on d.id = e.device_id order by e.id`);
  expect(rows.map((r) => r.to_status)).toEqual(['online', 'offline']);
});
