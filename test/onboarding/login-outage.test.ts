import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway';
import { gatewayOnOwnPostgres, type OwnPostgresGateway } from '../helpers/own-postgres';
import { login, loginQuery, registeredBox } from './helpers';

let own: OwnPostgresGateway;
let gateway: TestGateway;

beforeAll(async () => {
  own = await gatewayOnOwnPostgres('login-outage');
  gateway = own.gateway;
});
afterAll(() => own?.close());

it('a login while the database is down is 503 with Retry-After and binds nothing; the next one binds', { timeout: 60_000 }, async () => {
  await registeredBox(gateway, 'OUTAGE-LOGIN');
  await own.stopPostgres();

  const down = await login(gateway.url, loginQuery('OUTAGE-LOGIN', 'SN-DOWN'));
  expect(down).toMatchObject({ status: 503, headers: { 'retry-after': '5' }, json: { error: { code: 'DATABASE_UNAVAILABLE', message: expect.stringContaining('again later') } } });

  await own.startPostgres();
  // The serial offered during the outage was not bound: another one binds now.
  expect(await login(gateway.url, loginQuery('OUTAGE-LOGIN', 'SN-UP'))).toMatchObject({ status: 200 });
  const { rows } = await gateway.sql.query("select hardware_serial from boxes where license_key = 'OUTAGE-LOGIN'");
  expect(rows[0].hardware_serial).toBe('SN-UP');
});
