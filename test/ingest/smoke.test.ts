import { afterAll, beforeAll, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { NEWER_FORMAT_EXAMPLE } from '../fixtures/seed-examples';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.close());

it('stores the newer format example', async () => {
  const res = await postReport(gateway.url, NEWER_FORMAT_EXAMPLE);
  expect(res.status).toBe(200);
  const { rows } = await gateway.sql.query('select external_id, status from devices');
  expect(rows).toEqual([{ external_id: '2c1a6a12-ecf4-4490-a2fc-8d7a5023bfcd', status: 'online' }]);
});
