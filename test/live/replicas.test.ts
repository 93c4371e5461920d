import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { postReport } from '../helpers/gateway';
import { spawnGateway, type GatewayProcess } from '../helpers/process';
import { subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { waitForRefusedSweep, waitForSweeps } from '../helpers/sweeps';
import { until } from '../helpers/wait';

// Two gateway processes on one database, as replicas behind a load balancer.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
/** The test's own connections, to watch the replicas' sweepers. */
let sql: pg.Pool;
const processes: GatewayProcess[] = [];
const env = () => ({
  PORT: '0',
  DATABASE_URL: database.url,
  SWEEP_INTERVAL_MS: '100',
  OFFLINE_PERIODS: '1',
  OFFLINE_MIN_SECONDS: '1',
  DEFAULT_REPORT_PERIOD_SECONDS: '1',
});

beforeAll(async () => {
  database = await createTestDatabase();
  sql = new pg.Pool({ connectionString: database.url, max: 1 });
});
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(processes.map((p) => p.exited));
  await sql?.end();
  await database?.drop();
});

async function start(): Promise<GatewayProcess> {
  const gateway = await spawnGateway(env());
  processes.push(gateway);
  return gateway;
}

const SWEEPING = 'this replica now runs the offline sweep';

describe('two replicas on one Postgres', () => {
  it('an ingest on A reaches a subscriber on B; killing the sweeping A hands the sweep to B', { timeout: 90_000 }, async () => {
    const a = await start();
    await until(() => a.output().includes(SWEEPING), 'A to take the sweep');
    const b = await start();
    await waitForRefusedSweep(sql); // B asked for the sweep and was refused
    expect(b.output()).not.toContain(SWEEPING);

    const client = wsClient(b.url);
    const setUps = await subscriptionSetUps(b.url);
    const devices = wsSubscribe(client, `subscription { deviceStatusChanged { box { licenseKey } device { externalId } toStatus } }`);
    const boxes = wsSubscribe(client, `subscription { boxStatusChanged { box { licenseKey } fromStatus toStatus } }`);
    await setUps.reach(2);

    const report = (status: string) => ({ mq_license_key: 'REPLICA-1', media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }] });
    expect((await postReport(a.url, report('online'))).status).toBe(200);
    expect((await devices.next()).data.deviceStatusChanged).toEqual({ box: { licenseKey: 'REPLICA-1' }, device: { externalId: 'cam' }, toStatus: 'ONLINE' });
    expect((await boxes.next()).data.boxStatusChanged).toEqual({ box: { licenseKey: 'REPLICA-1' }, fromStatus: null, toStatus: 'ONLINE' });

    // A dies hard while the box is online; B must notice the box fall silent, once.
    a.child.kill('SIGKILL');
    await a.exited;
    await until(() => b.output().includes(SWEEPING), 'B to take the sweep');
    expect((await boxes.next(10_000)).data.boxStatusChanged).toEqual({ box: { licenseKey: 'REPLICA-1' }, fromStatus: 'ONLINE', toStatus: 'OFFLINE' });
    // More sweeps pass; a second offline event would come before the box's return.
    await waitForSweeps(sql, 3);
    expect((await postReport(b.url, report('online'))).status).toBe(200);
    expect((await boxes.next()).data.boxStatusChanged).toEqual({ box: { licenseKey: 'REPLICA-1' }, fromStatus: 'OFFLINE', toStatus: 'ONLINE' });
    await client.dispose();
  });
});
