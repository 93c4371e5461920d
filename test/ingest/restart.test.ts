import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postReport } from '../helpers/gateway';
import { freePort } from '../helpers/net';
import { spawnGateway } from '../helpers/process';

// The embedded default, as `npm start` runs it: its own Postgres, data in a folder, stopped by signals.
let dataDir: string;
let env: Record<string, string>;
let pgUrl: string;

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-restart-'));
  await fs.chmod(dataDir, 0o777);
  const pgPort = await freePort();
  env = { PORT: '0', FLEETGATE_DATA_DIR: path.join(dataDir, 'postgres'), EMBEDDED_PG_PORT: String(pgPort) };
  pgUrl = `postgres://fleetgate:fleetgate@127.0.0.1:${pgPort}/postgres`;
});
afterAll(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** Postgres removes its pid file as the last step of a clean shutdown: until then it still writes the folder. */
const postgresStopped = () => !existsSync(path.join(env.FLEETGATE_DATA_DIR!, 'postmaster.pid'));

async function postgresAccepts(): Promise<boolean> {
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const report = (status: string) => ({
  mq_license_key: 'RESTART0001',
  media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }],
});

it('SIGTERM and SIGINT stop the gateway and its Postgres; the next start keeps the data', { timeout: 120_000 }, async () => {
  const first = await spawnGateway(env);
  expect((await postReport(first.url, report('online'))).json.changes).toBe(2);
  first.child.kill('SIGTERM');
  expect(await first.exited).toBe(0);
  expect(postgresStopped()).toBe(true);
  expect(await postgresAccepts()).toBe(false);

  const second = await spawnGateway(env);
  // Same box, same device: already known, so only the status change is new.
  const res = await postReport(second.url, report('offline'));
  expect(res.json).toMatchObject({ changes: 1 });
  second.child.kill('SIGINT');
  expect(await second.exited).toBe(0);
  expect(postgresStopped()).toBe(true);
  expect(await postgresAccepts()).toBe(false);
});

it('after a kill -9 the next start adopts the Postgres left running, losing nothing', { timeout: 120_000 }, async () => {
  const first = await spawnGateway(env);
  expect((await postReport(first.url, report('online'))).status).toBe(200);
  first.child.kill('SIGKILL');
  await first.exited;
  expect(await postgresAccepts()).toBe(true); // orphaned, still serving the data folder

  const second = await spawnGateway(env);
  expect(second.output()).toContain('reusing it');
  const res = await postReport(second.url, report('online'));
  expect(res.json).toMatchObject({ changes: 0 });
  second.child.kill('SIGTERM');
  expect(await second.exited).toBe(0);
  expect(postgresStopped()).toBe(true);
  expect(await postgresAccepts()).toBe(false);
});
