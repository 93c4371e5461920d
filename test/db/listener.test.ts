import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Listener } from '../../src/db/listener';
import { createLogger } from '../../src/log';
import { createTestDatabase } from '../helpers/database';
import { until } from '../helpers/wait';

// The LISTEN session the hubs and the deliverer hold: notifications on each channel, and a session
// Postgres ends is replaced, with onReconnected to read what was missed.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: pg.Pool;
beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
});
afterAll(async () => {
  await pool.end();
  await database.drop();
});

it('hears each channel, and replaces a session Postgres ended, then says so', async () => {
  const heard: Array<[string, string | undefined]> = [];
  let reconnected = 0;
  const listener = new Listener({
    databaseUrl: database.url,
    applicationName: 'fleetgate-listener-test',
    channels: ['test_one', 'test_two'],
    onNotification: (channel, payload) => heard.push([channel, payload]),
    onReconnected: () => reconnected++,
    name: 'test listener',
    log: createLogger('silent'),
  });
  await listener.start();
  await pool.query(`select pg_notify('test_one', '1'), pg_notify('test_two', '2')`);
  await until(() => heard.length === 2, 'both notifications');
  expect(heard).toEqual([['test_one', '1'], ['test_two', '2']]);

  const { rows } = await pool.query(`select pg_terminate_backend(pid) as ended from pg_stat_activity where application_name = 'fleetgate-listener-test'`);
  expect(rows).toEqual([{ ended: true }]);
  await until(() => reconnected === 1 && listener.connected, 'the session replaced');
  await pool.query(`select pg_notify('test_two', '3')`);
  await until(() => heard.length === 3, 'a notification on the new session');
  expect(heard[2]).toEqual(['test_two', '3']);

  await listener.stop();
  expect(listener.connected).toBe(false);
  const { rows: left } = await pool.query(`select count(*)::int as n from pg_stat_activity where application_name = 'fleetgate-listener-test'`);
  expect(left[0].n).toBe(0);
});
