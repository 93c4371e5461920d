import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { getConfigs, GETCONFIGS_PATH, setConfigs, SETCONFIGS_PATH } from '../../src/box-api/client';
import { startBoxApi, type BoxApiServer } from '../../tools/simulator/box-api';
import { createFleet, type SimulatedBox } from '../../tools/simulator/fleet';
import { runSimulator, SIMULATOR_DEFAULTS } from '../../tools/simulator/run';

// A simulated box's REST API answers as the vendor documents a box's, and the box obeys it.

const open: Array<BoxApiServer | Server> = [];
afterEach(async () => {
  await Promise.all(
    open.splice(0).map((server) =>
      'box' in server ? server.close() : new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
    ),
  );
});

function oneBox(): SimulatedBox {
  return createFleet({ boxes: 1, devicesPerBox: 1, format: 'new', seed: 3, reportPeriodSeconds: 60, monitorUrl: 'http://127.0.0.1:9/DeviceStatus' })[0]!;
}

async function api(box = oneBox()): Promise<BoxApiServer> {
  const server = await startBoxApi(box);
  open.push(server);
  return server;
}

const post = (server: BoxApiServer, path: string, body: string, contentType?: string) =>
  fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST',
    headers: contentType ? { 'content-type': contentType } : {},
    body: Buffer.from(body),
  }).then(async (r) => ({ status: r.status, json: await r.json().catch(() => undefined) }));

describe('the simulated box API', () => {
  it('listens on a port of its own, which the box then reports as gateway_port', async () => {
    const box = createFleet({ boxes: 1, devicesPerBox: 1, format: 'old', seed: 3, reportPeriodSeconds: 60, monitorUrl: 'http://x/' })[0]!;
    const server = await api(box);
    expect(box.apiPort).toBe(server.port);
    expect(box.buildOldFormatReport().gateway_port).toBe(server.port);
  });

  it('setconfigs applies and echoes; getconfigs lists every setting or one', async () => {
    const server = await api();
    const target = { address: '127.0.0.1', port: server.port };
    const sent = { MEDIA_DEVICE_MONITOR_URL: 'http://10.0.0.5:4000/DeviceStatus', MEDIA_DEVICE_MONITOR_REPORT_PEROID: 2, GATE_PASS_MODE: 'allpass' };
    expect(await setConfigs(target, sent)).toMatchObject({ kind: 'applied', values: sent, httpStatus: 200 });
    expect(server.box).toMatchObject({ monitorUrl: sent.MEDIA_DEVICE_MONITOR_URL, reportPeriodSeconds: 2 });
    expect(await getConfigs(target, undefined)).toMatchObject({
      kind: 'applied',
      values: { ...sent, HISTORY_EVENT_UPLOAD_URL: '', HISTORY_REPORT_PEROID: 60, MATCH_THRESHOLD: 0.75 },
    });
    expect(await getConfigs(target, ['MEDIA_DEVICE_MONITOR_REPORT_PEROID'])).toMatchObject({ kind: 'applied', values: { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 2 } });
    // A numeric string is taken as the number it spells, as boxes do.
    expect(await setConfigs(target, { MEDIA_DEVICE_MONITOR_REPORT_PEROID: '30' })).toMatchObject({ kind: 'applied', values: { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 30 } });
  });

  it('refuses in the documented shape; keys before and after a refused one still apply', async () => {
    const server = await api();
    const target = { address: '127.0.0.1', port: server.port };
    const outcome = await setConfigs(target, { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 7, GATE_PASS_MODE: 'sideways', MATCH_THRESHOLD: 0.5 });
    expect(outcome).toMatchObject({
      kind: 'rejected',
      code: 'INVALID_ARGUMENTS',
      message: 'invalid value for GATE_PASS_MODE: must be normal, allpass or allforbidden',
      httpStatus: 400,
    });
    expect(await getConfigs(target, ['MEDIA_DEVICE_MONITOR_REPORT_PEROID', 'GATE_PASS_MODE', 'MATCH_THRESHOLD'])).toMatchObject({
      values: { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 7, GATE_PASS_MODE: 'normal', MATCH_THRESHOLD: 0.5 },
    });
    expect(await setConfigs(target, { NO_SUCH_SETTING: 1 })).toMatchObject({ kind: 'rejected', code: 'INVALID_ARGUMENTS', message: 'unknown config name: NO_SUCH_SETTING' });
    expect(await setConfigs(target, { MEDIA_DEVICE_MONITOR_URL: 'ftp://x/' })).toMatchObject({ kind: 'rejected', code: 'INVALID_ARGUMENTS' });
    expect(await setConfigs(target, { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 0 })).toMatchObject({ kind: 'rejected', code: 'INVALID_ARGUMENTS' });
    expect(await getConfigs(target, ['NOPE'])).toMatchObject({ kind: 'rejected', code: 'INVALID_ARGUMENTS', message: 'unknown config name: NOPE' });
  });

  it('checks the request as the vendor documents', async () => {
    const server = await api();
    const error = (code: string, message: string) => ({ status: 400, json: { error: { code, message } } });
    expect(await post(server, SETCONFIGS_PATH, '{"config_dict":{}}', 'text/plain')).toEqual(error('UNSUPPORT_CONTENT_TYPE', 'Content-Type must be application/json'));
    expect(await post(server, SETCONFIGS_PATH, '{"config_dict":', 'application/json')).toEqual(error('INVALID_REQUEST_JSON', 'request body is not valid json'));
    expect(await post(server, SETCONFIGS_PATH, '{}', 'application/json')).toEqual(error('MISSING_ARGUMENTS', 'missing argument: config_dict'));
    expect(await post(server, GETCONFIGS_PATH, '{}', 'application/json; charset=utf-8')).toMatchObject({ status: 200 });
    expect((await post(server, '/sophon/v2/face/other', '{}', 'application/json')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}${GETCONFIGS_PATH}`)).status).toBe(405);
  });
});

describe('a simulated box obeys its API while it runs', () => {
  it('a shorter period takes effect at once, a new monitor URL from the next report', async () => {
    const reports: Array<{ at: number; path: string }> = [];
    const receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        reports.push({ at: performance.now(), path: req.url ?? '' });
        res.writeHead(200).end('{}');
      });
    });
    open.push(receiver);
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    const stop = new AbortController();
    let server!: BoxApiServer;
    let ready!: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    const run = runSimulator(
      { ...SIMULATOR_DEFAULTS, boxes: 1, devicesPerBox: 1, reportPeriodSeconds: 30, url: `${origin}/first`, boxApi: {} },
      {
        signal: stop.signal,
        onReady: (apis) => {
          server = apis[0]!;
          ready();
        },
      },
    );
    await started;
    const target = { address: '127.0.0.1', port: server.port };
    try {
      // The first report is due anywhere in the first 30 s; a 1 s period brings it within 1.1 s.
      const changed = performance.now();
      expect(await setConfigs(target, { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 1 })).toMatchObject({ kind: 'applied' });
      while (reports.length < 2 && performance.now() - changed < 5_000) await new Promise((r) => setTimeout(r, 20));
      expect(reports).toHaveLength(2);
      expect(reports[0]!.at - changed).toBeLessThan(1_100 + 900);
      expect(reports[1]!.at - reports[0]!.at).toBeGreaterThan(900 - 400);

      expect(await setConfigs(target, { MEDIA_DEVICE_MONITOR_URL: `${origin}/second` })).toMatchObject({ kind: 'applied' });
      const moved = performance.now();
      while (!reports.some((r) => r.path === '/second') && performance.now() - moved < 3_000) await new Promise((r) => setTimeout(r, 20));
      const first = reports.findIndex((r) => r.path === '/second');
      expect(first).toBeGreaterThan(0);
      expect(reports[first]!.at - moved).toBeLessThan(1_100 + 900);
    } finally {
      stop.abort();
      await run;
    }
    // The API closes with the run.
    await expect(getConfigs(target, undefined, { timeoutMs: 1_000 })).resolves.toMatchObject({ kind: 'unreachable', reason: 'refused' });
  });
});
