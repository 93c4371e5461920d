import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/db/embedded';
import { createLogger } from '../../src/log';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { freePort } from '../helpers/net';

// A Postgres of this file's own, so stopping it disturbs no other test.
let dataDir: string;
let pgPort: number;
let postgres: RunningPostgres;
let gateway: TestGateway;
const log = createLogger('silent');

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-outage-'));
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

const report = (status: string) => ({
  mq_license_key: 'OUTAGE0001',
  media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }],
});

it('answers 503 with Retry-After while the database is down, and recovers by itself', { timeout: 60_000 }, async () => {
  expect((await postReport(gateway.url, report('online'))).status).toBe(200);
  await gateway.sql.end(); // the test's own checking pool would otherwise hold connections across the outage
  await postgres.stop();

  const started = Date.now();
  const down = await postReport(gateway.url, report('offline'));
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(down.status).toBe(503);
  expect(down.headers.get('retry-after')).toBe('5');
  expect(down.json).toEqual({
    error: { code: 'DATABASE_UNAVAILABLE', message: 'The database is unreachable; the report was not stored. Retry later.', path: null },
  });

  postgres = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port: pgPort, log });
  const back = await postReport(gateway.url, report('offline'));
  expect(back.status).toBe(200);
  expect(back.json.changes).toBe(1); // the refused report was not stored, so the change is new now

  const sql = new pg.Client({ connectionString: gateway.app.databaseUrl });
  await sql.connect();
  const { rows } = await sql.query(`select to_status from status_events e join devices d on d.id = e.device_id order by e.id`);
  await sql.end();
  expect(rows.map((r) => r.to_status)).toEqual(['online', 'offline']);
  gateway.sql = new pg.Pool({ connectionString: gateway.app.databaseUrl, max: 1 });
});
