import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetFaults, parseFaultAmount } from '../../tools/simulator/faults';
import { createFleet, type SimulatedBox } from '../../tools/simulator/fleet';
import { runSimulator, SIMULATOR_DEFAULTS } from '../../tools/simulator/run';
import { until } from '../helpers/wait';

/** One report as received: whose it is and each device's status, by device id. */
interface Received {
  licenseKey: string;
  statuses: Map<string, string>;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A real report receiver on loopback that keeps every report in arrival order. */
async function startReceiver(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      const devices: Array<Record<string, string>> = body.media_devices ?? body.sub_devices;
      received.push({
        licenseKey: body.mq_license_key ?? body.dev_sno,
        statuses: new Map(devices.map((d) => [d.media_device_id ?? d.ep_id!, d.media_device_status ?? d.ep_status!])),
      });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/DeviceStatus`, received };
}

const reportsOf = (received: Received[], box: SimulatedBox) => received.filter((r) => r.licenseKey === box.licenseKey);
const deviceKey = (box: SimulatedBox, index: number) =>
  box.format === 'new' ? box.devices[index]!.id : `${box.licenseKey}__${box.devices[index]!.ip}`;

describe('FleetFaults', () => {
  it('picks the same boxes and devices for the same seed, and new ones on each call', () => {
    const picks = (seed: number) => {
      const fleet = createFleet({ boxes: 40, devicesPerBox: 4, format: 'mixed', seed, reportPeriodSeconds: 1, monitorUrl: 'http://127.0.0.1/' });
      const faults = new FleetFaults(fleet, seed);
      const first = faults.silence({ share: 0.1 }).map((b) => b.index);
      const second = faults.silence({ count: 3 }).map((b) => b.index);
      const flapping = faults.flap({ count: 10 }).map((d) => `${d.box.index}/${d.index}`);
      return { first, second, flapping };
    };
    const a = picks(7);
    expect(a.first).toHaveLength(4);
    expect(a.second).toHaveLength(3);
    expect(new Set([...a.first, ...a.second]).size).toBe(7);
    expect(a.flapping).toHaveLength(10);
    // No device of a silenced box flaps: it would send nothing to flap with.
    expect(a.flapping.every((key) => ![...a.first, ...a.second].includes(Number(key.split('/')[0])))).toBe(true);
    expect(picks(7)).toEqual(a);
    expect(picks(8).first).not.toEqual(a.first);
  });

  it('reads shares and counts, and says what it expected otherwise', () => {
    expect(parseFaultAmount('10%')).toEqual({ share: 0.1 });
    expect(parseFaultAmount('25')).toEqual({ count: 25 });
    for (const bad of ['', '%', '-5%', '101%', '2.5', 'ten']) expect(() => parseFaultAmount(bad)).toThrow(/expected a share like 10% or a count/);
  });
});

describe('the simulator with faults, against a loopback receiver', () => {
  it('silenced boxes stop posting, flapping devices alternate at every report, recover restores both', async () => {
    const receiver = await startReceiver();
    const fleet = createFleet({ boxes: 10, devicesPerBox: 4, format: 'mixed', seed: 3, reportPeriodSeconds: 0.05, monitorUrl: receiver.url, initialOfflineRate: 0 });
    const faults = new FleetFaults(fleet, 3);
    const stop = new AbortController();
    const options = { ...SIMULATOR_DEFAULTS, url: receiver.url, boxes: 10, devicesPerBox: 4, reportPeriodSeconds: 0.05, flipRate: 0, seed: 3 };
    const running = runSimulator(options, { fleet, signal: stop.signal });
    try {
      const everyBoxSent = (n: number, boxes: SimulatedBox[], since = new Map<SimulatedBox, number>()) =>
        boxes.every((box) => reportsOf(receiver.received, box).length >= (since.get(box) ?? 0) + n);
      await until(() => everyBoxSent(2, fleet), 'two reports from every box');

      const silenced = faults.silence({ share: 0.3 });
      expect(silenced).toHaveLength(3);
      const others = fleet.filter((box) => !box.silent);
      const flapping = faults.flap({ count: 6 });
      expect(flapping.every(({ box }) => !box.silent)).toBe(true);
      const countsAt = new Map(fleet.map((box) => [box, reportsOf(receiver.received, box).length]));
      await until(() => everyBoxSent(6, others, countsAt), 'six more reports from every box still reporting', { timeoutMs: 20_000 });

      // At most one report that was already on its way when the box fell silent.
      for (const box of silenced) expect(reportsOf(receiver.received, box).length - countsAt.get(box)!).toBeLessThanOrEqual(1);
      for (const { box, index } of flapping) {
        const statuses = reportsOf(receiver.received, box).slice(countsAt.get(box)! + 1).map((r) => r.statuses.get(deviceKey(box, index)));
        for (let i = 1; i < statuses.length; i++) expect(statuses[i]).not.toBe(statuses[i - 1]);
      }
      // Devices that do not flap stay as they were (flip rate 0, all online at start).
      const steady = others[0]!.devices.findIndex((_, i) => !others[0]!.flapping.has(i));
      expect(new Set(reportsOf(receiver.received, others[0]!).map((r) => r.statuses.get(deviceKey(others[0]!, steady))))).toEqual(new Set(['online']));

      // Stopped, a flapping device stays where it is; recover still brings it back.
      expect(faults.stopFlapping()).toHaveLength(6);
      const recovered = faults.recover();
      const indexes = (boxes: SimulatedBox[]) => boxes.map((box) => box.index).sort((a, b) => a - b);
      expect(indexes(recovered.boxes)).toEqual(indexes(silenced));
      expect(recovered.devices).toHaveLength(6);
      const afterRecover = new Map(fleet.map((box) => [box, reportsOf(receiver.received, box).length]));
      await until(() => everyBoxSent(3, fleet, afterRecover), 'three reports from every box after recovery', { timeoutMs: 20_000 });
      for (const { box, index } of flapping) {
        const latest = reportsOf(receiver.received, box).at(-1)!;
        expect(latest.statuses.get(deviceKey(box, index))).toBe('online');
      }
    } finally {
      stop.abort();
      await running;
    }
  });

  it('the command line silences and flaps on time and on typed commands, and prints what it did', async () => {
    const receiver = await startReceiver();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'tools/simulator/main.ts', '--url', receiver.url, '--no-api', '--boxes', '5', '--devices', '2', '--period', '0.1',
        '--silence', '40%', '--silence-after', '200ms', '--flap', '2'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await until(() => /silenced 2 boxes \(40%\): SE5-\d{4}, SE5-\d{4}; 2 silent now/.test(stderr), () => `the silence line in:\n${stderr}`, { timeoutMs: 20_000 });
      expect(stderr).toMatch(/2 devices on \d boxes flap now \(2\); 2 flapping in all/);
      child.stdin.write('f 1\n');
      await until(() => stderr.includes('3 flapping in all'), () => `the flap line in:\n${stderr}`);
      child.stdin.write('x\n');
      await until(() => stderr.includes('unknown command "x"'), () => `the usage of commands in:\n${stderr}`);
      child.stdin.write('r\n');
      await until(() => stderr.includes('recovered 2 silent boxes and 3 flapping devices'), () => `the recover line in:\n${stderr}`);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
