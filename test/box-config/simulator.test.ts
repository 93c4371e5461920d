import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BoxApiServer } from '../../tools/simulator/box-api';
import { createFleet } from '../../tools/simulator/fleet';
import { registerApiPorts, type RegisteredBox } from '../../tools/simulator/register';
import { runSimulator, SIMULATOR_DEFAULTS, type SimulatorTotals } from '../../tools/simulator/run';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { until } from '../helpers/wait';
import { BoxConfigQuery, configure } from './operations';

// End to end: a gateway and a simulated fleet of two boxes reporting every 5 s, each box serving its
// REST API on a loopback port of its own. Configured through the mutation, a box reports every 2 s
// from within one old period, and another reports to the monitor URL it was given.

const OLD_PERIOD_MS = 5_000;
const NEW_PERIOD_S = 2;

let gateway: TestGateway;
let receiver: Server;
const received: Array<{ at: number; licenseKey: string }> = [];
const stop = new AbortController();
let simulation: Promise<SimulatorTotals>;
let registered: RegisteredBox[];
let apis: readonly BoxApiServer[];
const fleet = createFleet({ boxes: 2, devicesPerBox: 3, format: 'mixed', seed: 11, reportPeriodSeconds: OLD_PERIOD_MS / 1000, monitorUrl: '' });

beforeAll(async () => {
  gateway = await startGateway();
  // Another report receiver, for the box that is told to report elsewhere.
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, string>;
      received.push({ at: Date.now(), licenseKey: body.mq_license_key ?? body.dev_sno! });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));

  const url = `${gateway.url}/DeviceStatus`;
  for (const box of fleet) box.monitorUrl = url;
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  simulation = runSimulator(
    { ...SIMULATOR_DEFAULTS, boxes: 2, devicesPerBox: 3, reportPeriodSeconds: OLD_PERIOD_MS / 1000, format: 'mixed', url, seed: 11, boxApi: { host: '127.0.0.1' } },
    {
      fleet,
      signal: stop.signal,
      onReady: async (servers) => {
        apis = servers;
        registered = await registerApiPorts(`${gateway.url}/graphql`, servers, { address: '127.0.0.1', token: gateway.token });
        ready();
      },
    },
  );
  await Promise.race([started, simulation]);
});

afterAll(async () => {
  stop.abort();
  await simulation?.catch(() => undefined);
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await gateway?.close();
});

/** `last_report_at` of the box as the gateway stores it, polled: one entry per report it took. */
function watchReports(licenseKey: string) {
  const seen: number[] = [];
  let last: number | undefined;
  let running = true;
  let firstRead!: () => void;
  const ready = new Promise<void>((resolve) => (firstRead = resolve));
  const done = (async () => {
    while (running) {
      const { rows } = await gateway.sql.query('select last_report_at from boxes where license_key = $1', [licenseKey]);
      const at = (rows[0]?.last_report_at as Date | null)?.getTime();
      if (at !== undefined && at !== last) {
        if (last !== undefined) seen.push(at);
        last = at;
      }
      firstRead();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  return {
    seen,
    /** Resolves once the current state has been read: later reports are the ones counted. */
    ready,
    async stop() {
      running = false;
      await done;
    },
  };
}

it('registers each simulated box with its own API port', async () => {
  expect(registered.map((r) => r.action)).toEqual(['registered', 'registered']);
  expect(new Set(apis.map((api) => api.port)).size).toBe(2);
  const { rows } = await gateway.sql.query('select license_key, api_address, api_port from boxes order by license_key');
  expect(rows).toEqual(fleet.map((box) => ({ license_key: box.licenseKey, api_address: '127.0.0.1', api_port: box.apiPort })).sort((a, b) => a.license_key.localeCompare(b.license_key)));
  // The gateway reads a simulated box's settings through its API.
  const boxId = registered.find((r) => r.licenseKey === fleet[0]!.licenseKey)!.boxId;
  expect((await query(gateway.url, BoxConfigQuery, { boxId, keys: ['MEDIA_DEVICE_MONITOR_REPORT_PEROID'] })).boxConfig).toEqual({
    __typename: 'BoxConfigValues',
    values: { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 5 },
    missingKeys: [],
    box: { id: boxId },
  });
});

it('a box configured to a 2 s period reports every 2 s, from within one old period; another reports where it was told', async () => {
  const [fast, moved] = fleet;
  const idOf = (licenseKey: string) => registered.find((r) => r.licenseKey === licenseKey)!.boxId;
  // Both under the old period first: each has reported once.
  await until(async () => {
    const { rows } = await gateway.sql.query('select count(*)::int as n from boxes where report_count > 0');
    return rows[0].n === 2;
  }, 'first reports', { timeoutMs: OLD_PERIOD_MS + 2_000 });

  const fastReports = watchReports(fast!.licenseKey);
  await fastReports.ready;
  const configuredAt = Date.now();
  const result = await configure(gateway, { boxId: idOf(fast!.licenseKey), reportPeriodSeconds: NEW_PERIOD_S });
  expect(result).toMatchObject({ __typename: 'ConfigureBoxSuccess', reportPeriodSeconds: NEW_PERIOD_S, box: { configuredReportPeriodSeconds: NEW_PERIOD_S } });
  const elsewhere = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/DeviceStatus`;
  expect(await configure(gateway, { boxId: idOf(moved!.licenseKey), monitorUrl: elsewhere })).toMatchObject({ __typename: 'ConfigureBoxSuccess', monitorUrl: elsewhere });
  expect(fast!.reportPeriodSeconds).toBe(NEW_PERIOD_S);
  expect(moved!.monitorUrl).toBe(elsewhere);

  // Four reports at the new period: the first within one old period (here within one new one).
  await until(() => fastReports.seen.length >= 4, 'four reports at the new period', { timeoutMs: OLD_PERIOD_MS + 4 * NEW_PERIOD_S * 1000 });
  await fastReports.stop();
  const [first, ...rest] = fastReports.seen;
  expect(first! - configuredAt).toBeLessThan(OLD_PERIOD_MS);
  expect(first! - configuredAt).toBeLessThan(NEW_PERIOD_S * 1000 * 1.1 + 1_000);
  const intervals = rest.map((at, i) => at - fastReports.seen[i]!);
  for (const interval of intervals) {
    // 2 s ±10% jitter, with slack for timers and the gateway on a busy machine; the old period was 5 s.
    expect(interval).toBeGreaterThan(NEW_PERIOD_S * 1000 * 0.9 - 400);
    expect(interval).toBeLessThan(NEW_PERIOD_S * 1000 * 1.1 + 800);
  }

  // The other box's next report went to the receiver it was given, within one old period (±10%).
  await until(() => received.some((r) => r.licenseKey === moved!.licenseKey), 'a report at the new monitor URL', { timeoutMs: OLD_PERIOD_MS * 1.1 + 2_000 });
  expect(received.find((r) => r.licenseKey === moved!.licenseKey)!.at - configuredAt).toBeLessThan(OLD_PERIOD_MS * 1.1 + 1_000);
  expect(received.every((r) => r.licenseKey === moved!.licenseKey)).toBe(true);
});
