import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/db/embedded';
import { createLogger } from '../../src/log';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { freePort } from '../helpers/net';
import { login, loginQuery, registeredBox } from './helpers';

// A Postgres of this file's own, so stopping it disturbs no other test.
let dataDir: string;
let pgPort: number;
let postgres: RunningPostgres;
let gateway: TestGateway;
const log = createLogger('silent');

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-login-outage-'));
  await fs.chmod(dataDir, 0o777);
  pgPort = await freePort();
  postgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port: pgPort, log });
  gateway = await startGateway({}, postgres.url);
});
afterAll(async () => {
  await gateway?.close().catch(() => {});
  await postgres?.stop();
  await fs.rm(dataDir, { recursive: true, force: true });
});

it('a login while the database is down is 503 with Retry-After and binds nothing; the next one binds', { timeout: 60_000 }, async () => {
  await registeredBox(gateway, 'OUTAGE-LOGIN');
  await gateway.sql.end(); // the test's own checking pool would otherwise hold connections across the outage
  await postgres.stop();

  const down = await login(gateway.url, loginQuery('OUTAGE-LOGIN', 'SN-DOWN'));
  expect(down).toMatchObject({ status: 503, headers: { 'retry-after': '5' }, json: { error: { code: 'DATABASE_UNAVAILABLE', message: expect.stringContaining('again later') } } });

  postgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port: pgPort, log });
  // The serial offered during the outage was not bound: another one binds now.
  expect(await login(gateway.url, loginQuery('OUTAGE-LOGIN', 'SN-UP'))).toMatchObject({ status: 200 });
  const sql = new pg.Client({ connectionString: gateway.app.databaseUrl });
  await sql.connect();
  const { rows } = await sql.query("select hardware_serial from boxes where license_key = 'OUTAGE-LOGIN'");
  await sql.end();
  expect(rows[0].hardware_serial).toBe('SN-UP');
  gateway.sql = new pg.Pool({ connectionString: gateway.app.databaseUrl, max: 1 }); // for close()
});
