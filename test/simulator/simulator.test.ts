import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createFleet } from '../../tools/simulator/fleet';
import { runSimulator, SIMULATOR_DEFAULTS, type SimulatorOptions } from '../../tools/simulator/run';
import { closedPort, closeServers, readBody } from '../helpers/net';
import { until } from '../helpers/wait';

interface Received {
  at: number;
  path: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

interface Receiver {
  url: string;
  received: Received[];
  server: Server;
}

const servers: Server[] = [];

afterEach(() => closeServers(servers));

/** A real report receiver on a loopback port that records every body and answers `status`. */
async function startReceiver(status: (count: number) => number = () => 200): Promise<Receiver> {
  const received: Received[] = [];
  const server = createServer(async (request, response) => {
    const body = JSON.parse(await readBody(request)) as Record<string, unknown>;
    received.push({ at: performance.now(), path: request.url ?? '', contentType: request.headers['content-type'], body });
    response.writeHead(status(received.length), { 'content-type': 'application/json' });
    response.end('{}');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/DeviceStatus`, received, server };
}

function options(url: string, overrides: Partial<SimulatorOptions> = {}): SimulatorOptions {
  return {
    ...SIMULATOR_DEFAULTS,
    url,
    boxes: 3,
    devicesPerBox: 4,
    reportPeriodSeconds: 0.2,
    format: 'mixed',
    reportsPerBox: 2,
    requestTimeoutMs: 2_000,
    ...overrides,
  };
}

const licenseKey = (body: Record<string, unknown>) => (body.mq_license_key ?? body.dev_sno) as string;

describe('runSimulator', () => {
  it('posts every box’s reports as JSON and counts them', async () => {
    const receiver = await startReceiver();
    const totals = await runSimulator(options(receiver.url));

    expect(totals).toMatchObject({ stoppedBy: 'reports-per-box', sent: 6, acked: 6, failed: 0, byStatus: { '200': 6 }, byError: {} });
    expect(totals.latency.maxMs).toBeGreaterThan(0);
    expect(receiver.received).toHaveLength(6);
    expect(new Set(receiver.received.map((r) => r.path))).toEqual(new Set(['/DeviceStatus']));
    expect(new Set(receiver.received.map((r) => r.contentType))).toEqual(new Set(['application/json']));

    // The same boxes as the pure model builds from the same seed, two reports each, formats alternating.
    const fleet = createFleet({ boxes: 3, devicesPerBox: 4, format: 'mixed', seed: 1, reportPeriodSeconds: 0.2, monitorUrl: receiver.url });
    const byBox = new Map<string, Received[]>();
    for (const r of receiver.received) byBox.set(licenseKey(r.body), [...(byBox.get(licenseKey(r.body)) ?? []), r]);
    expect([...byBox.keys()].sort()).toEqual(fleet.map((box) => box.licenseKey).sort());
    for (const box of fleet) {
      const reports = byBox.get(box.licenseKey) ?? [];
      expect(reports).toHaveLength(2);
      expect(reports[0]?.body).toEqual(box.buildReport()); // the first report is the initial state
      expect(Object.keys(reports[0]!.body)).toContain(box.format === 'new' ? 'media_devices' : 'sub_devices');
      // ±10% jitter around 0.2 s; the first report's receipt also carries connection setup, and timers
      // slip on a busy machine, so only "not back to back" is checked.
      expect(reports[1]!.at - reports[0]!.at).toBeGreaterThan(100);
    }
  });

  it('counts answers other than 2xx as failures, by status', async () => {
    const receiver = await startReceiver((count) => (count % 2 === 0 ? 503 : 200));
    const totals = await runSimulator(options(receiver.url));
    expect(totals).toMatchObject({ sent: 6, acked: 3, failed: 3, byStatus: { '200': 3, '503': 3 } });
  });

  it('counts a receiver that is not there as failures without throwing', async () => {
    const totals = await runSimulator(options(`http://127.0.0.1:${await closedPort()}/DeviceStatus`, { boxes: 2, reportsPerBox: 1 }));
    expect(totals).toMatchObject({ sent: 2, acked: 0, failed: 2, byError: { ECONNREFUSED: 2 } });
  });

  it('counts unanswered reports as timeouts', async () => {
    const server = createServer(() => {}); // reads nothing, answers never
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const totals = await runSimulator(
      options(`http://127.0.0.1:${port}/DeviceStatus`, { boxes: 2, reportsPerBox: 1, requestTimeoutMs: 200 }),
    );
    expect(totals).toMatchObject({ sent: 2, acked: 0, failed: 2, byError: { timeout: 2 } });
  });

  it('stops when its signal aborts, and after its duration', async () => {
    const receiver = await startReceiver();
    const controller = new AbortController();
    const running = runSimulator(options(receiver.url, { reportsPerBox: undefined }), { signal: controller.signal });
    await until(() => receiver.received.length >= 3, 'reports under way', { timeoutMs: 5_000 });
    controller.abort();
    const stopped = await running;
    expect(stopped.stoppedBy).toBe('signal');
    expect(stopped.elapsedMs).toBeLessThan(2_000);
    expect(stopped.sent).toBe(stopped.acked + stopped.failed);

    const timed = await runSimulator(options(receiver.url, { reportsPerBox: undefined, durationSeconds: 0.5 }));
    expect(timed.stoppedBy).toBe('duration');
    expect(timed.acked).toBeGreaterThanOrEqual(3); // every box reported at least once in the first period
  });

  it('follows a box’s period and URL when they change while running', async () => {
    const first = await startReceiver();
    const second = await startReceiver();
    const fleet = createFleet({ boxes: 1, devicesPerBox: 2, format: 'new', seed: 1, reportPeriodSeconds: 0.1, monitorUrl: first.url });
    const box = fleet[0]!;
    const run = runSimulator(options(first.url, { boxes: 1, reportsPerBox: 4, reportPeriodSeconds: 0.1 }), { fleet });
    await until(() => first.received.length >= 1, 'a first report', { timeoutMs: 5_000 });
    box.monitorUrl = second.url;
    box.reportPeriodSeconds = 0.05;
    const totals = await run;
    expect(totals.acked).toBe(4);
    expect(first.received.length).toBeGreaterThanOrEqual(1);
    expect(second.received.length).toBeGreaterThanOrEqual(2);
    expect(first.received.length + second.received.length).toBe(4);
  });
});
