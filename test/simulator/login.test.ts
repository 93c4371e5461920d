import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetFaults } from '../../tools/simulator/faults';
import { createFleet } from '../../tools/simulator/fleet';
import { LOGIN_DEFAULT_PERIOD_SECONDS, loginRequestUrl, parseKeyList, readLoginReply } from '../../tools/simulator/login';
import { runSimulator, SIMULATOR_DEFAULTS, type SimulatorOptions } from '../../tools/simulator/run';
import { closeServers, readBody } from '../helpers/net';
import { until } from '../helpers/wait';

// The simulator's login mode against a platform of the test's own on a loopback port: a login route that
// answers as the test says, and a report receiver. The gateway's own login route has its tests in test/onboarding.

interface Login {
  at: number;
  method: string;
  key: string | null;
  serial: string | null;
}

interface Platform {
  origin: string;
  logins: Login[];
  reports: { at: number; path: string; key: string }[];
}

const servers: Server[] = [];

afterEach(() => closeServers(servers));

/** A platform whose login route answers `answer(login)` (status and JSON body); reports to any other path get 200. */
async function startPlatform(answer: (login: Login) => { status: number; body: unknown }): Promise<Platform> {
  const logins: Login[] = [];
  const reports: Platform['reports'] = [];
  const server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://platform');
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (url.pathname === '/login') {
      const login = { at: performance.now(), method: request.method ?? '', key: url.searchParams.get('dev_sno'), serial: url.searchParams.get('device_sn') };
      logins.push(login);
      const { status, body } = answer(login);
      return reply(status, body);
    }
    const body = JSON.parse(await readBody(request)) as Record<string, unknown>;
    reports.push({ at: performance.now(), path: url.pathname, key: (body.mq_license_key ?? body.dev_sno) as string });
    reply(200, {});
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, logins, reports };
}

function options(platform: Platform, overrides: Partial<SimulatorOptions> = {}): SimulatorOptions {
  return {
    ...SIMULATOR_DEFAULTS,
    url: 'http://127.0.0.1:1/not-used',
    boxes: 3,
    devicesPerBox: 2,
    reportPeriodSeconds: 60, // the login reply's period wins
    format: 'mixed',
    reportsPerBox: 2,
    requestTimeoutMs: 2_000,
    boxApi: false,
    login: { url: `${platform.origin}/login` },
    ...overrides,
  };
}

const identities = [
  { licenseKey: 'FLEETG123420261204093000', serialNumber: 'SN-A' },
  { licenseKey: 'FLEETG567820261204093000', serialNumber: 'SN-B' },
  { licenseKey: 'FLEETG901220261204093000' },
];

describe('login mode', () => {
  it('logs each box in with its key and serial, then reports where and as often as the reply says', async () => {
    // A relative URL (joined to the login URL's root) and the period as a string, as some platforms send it.
    const platform = await startPlatform(() => ({ status: 200, body: { media_device_monitor_url: '/reports/here', media_device_monitor_report_period: '1' } }));
    const fleet = createFleet({ boxes: 3, devicesPerBox: 2, format: 'mixed', seed: 1, reportPeriodSeconds: 60, monitorUrl: 'http://127.0.0.1:1/', identities });
    const totals = await runSimulator(options(platform), { fleet });

    expect(totals.logins).toEqual({ ok: 3, refused: {}, failed: {} });
    expect(totals).toMatchObject({ stoppedBy: 'reports-per-box', sent: 6, acked: 6 });
    expect(platform.logins.map(({ method, key, serial }) => ({ method, key, serial })).sort((a, b) => a.key!.localeCompare(b.key!))).toEqual([
      { method: 'GET', key: identities[0]!.licenseKey, serial: 'SN-A' },
      { method: 'GET', key: identities[1]!.licenseKey, serial: 'SN-B' },
      { method: 'GET', key: identities[2]!.licenseKey, serial: fleet[2]!.serialNumber }, // drawn from the seed
    ]);
    expect(new Set(platform.reports.map((r) => r.path))).toEqual(new Set(['/reports/here']));
    for (const box of fleet) {
      expect(box.monitorUrl).toBe(`${platform.origin}/reports/here`);
      expect(box.reportPeriodSeconds).toBe(1);
      const login = platform.logins.find((l) => l.key === box.licenseKey)!;
      const first = platform.reports.find((r) => r.key === box.licenseKey)!;
      // The first report comes within one period of the login (timers may slip on a busy machine).
      expect(first.at - login.at).toBeLessThan(1_000 + 500);
    }
  });

  it('reports nothing after a refused login, retries it, and counts refusals by the vendor code', async () => {
    let refusals = 0;
    const platform = await startPlatform((login) => {
      if (login.key === identities[0]!.licenseKey) return { status: 200, body: { media_device_monitor_url: `/DeviceStatus`, media_device_monitor_report_period: 1 } };
      refusals++;
      return { status: 404, body: { error: { code: 600000, message: 'no such licence key' } } };
    });
    const fleet = createFleet({ boxes: 2, devicesPerBox: 1, format: 'new', seed: 1, reportPeriodSeconds: 60, monitorUrl: 'http://127.0.0.1:1/', identities });
    const controller = new AbortController();
    const running = runSimulator(options(platform, { boxes: 2, reportsPerBox: undefined }), { fleet, signal: controller.signal });
    // The refused box tries again after 1 s: a second refusal shows the retry.
    await until(() => refusals >= 2 && platform.reports.length >= 1, 'a retried refusal and a report of the other box', { timeoutMs: 10_000 });
    controller.abort();
    const totals = await running;
    expect(totals.logins!.ok).toBe(1);
    expect(totals.logins!.refused['600000']).toBeGreaterThanOrEqual(2);
    expect(new Set(platform.reports.map((r) => r.key))).toEqual(new Set([identities[0]!.licenseKey]));
  });

  it('a box whose hardware is replaced logs in again with its new serial and stops reporting when refused (600002)', async () => {
    const bound = new Map<string, string>();
    const platform = await startPlatform((login) => {
      const serial = bound.get(login.key!);
      if (serial !== undefined && serial !== login.serial) return { status: 409, body: { error: { code: 600002, message: 'bound to another box' } } };
      bound.set(login.key!, login.serial!);
      return { status: 200, body: { media_device_monitor_url: '/DeviceStatus', media_device_monitor_report_period: 1 } };
    });
    const fleet = createFleet({ boxes: 2, devicesPerBox: 1, format: 'new', seed: 1, reportPeriodSeconds: 60, monitorUrl: 'http://127.0.0.1:1/', identities });
    // Asked before the first login: the box first binds its key with the old hardware, then gets the new one.
    const replaced = new FleetFaults(fleet, 1).replaceHardware({ count: 1 });
    expect(replaced).toHaveLength(1);
    const [box] = replaced;
    const oldSerial = box!.serialNumber;

    const controller = new AbortController();
    const running = runSimulator(options(platform, { boxes: 2, reportsPerBox: undefined }), { fleet, signal: controller.signal });
    await until(() => platform.logins.filter((l) => l.key === box!.licenseKey).length >= 2, 'the replaced box logging in again', { timeoutMs: 10_000 });
    const reportsAtRefusal = platform.reports.filter((r) => r.key === box!.licenseKey).length;
    // The other box keeps reporting meanwhile.
    const other = fleet.find((b) => b !== box)!;
    const otherBefore = platform.reports.filter((r) => r.key === other.licenseKey).length;
    await until(() => platform.reports.filter((r) => r.key === other.licenseKey).length >= otherBefore + 2, 'two more reports of the other box', { timeoutMs: 10_000 });
    controller.abort();
    const totals = await running;

    const logins = platform.logins.filter((l) => l.key === box!.licenseKey);
    expect(logins[0]!.serial).toBe(oldSerial);
    expect(logins[1]!.serial).toBe(box!.serialNumber);
    expect(box!.serialNumber).not.toBe(oldSerial);
    expect(totals.logins!.refused['600002']).toBeGreaterThanOrEqual(1);
    // Refused: it reports nothing more (at most the one report planned before the swap was sent already).
    expect(platform.reports.filter((r) => r.key === box!.licenseKey).length).toBe(reportsAtRefusal);
    expect(reportsAtRefusal).toBeLessThanOrEqual(1);
  });
});

describe('login replies', () => {
  const loginUrl = 'http://platform.example:8080/api/box-login?site=7';

  it('joins relative URLs to the login URL’s root and reads the period as a number or numeric string', () => {
    expect(readLoginReply(loginUrl, 200, JSON.stringify({ media_device_monitor_url: '/DeviceStatus/abc', media_device_monitor_report_period: 30 }))).toEqual({
      kind: 'ok',
      monitorUrl: 'http://platform.example:8080/DeviceStatus/abc',
      reportPeriodSeconds: 30,
    });
    expect(readLoginReply(loginUrl, 200, JSON.stringify({ media_device_monitor_url: 'DeviceStatus', media_device_monitor_report_period: '15' }))).toMatchObject({
      monitorUrl: 'http://platform.example:8080/DeviceStatus',
      reportPeriodSeconds: 15,
    });
    expect(readLoginReply(loginUrl, 200, JSON.stringify({ data: { media_device_monitor_url: 'http://other:9528/DeviceStatus' } }))).toEqual({
      kind: 'ok',
      monitorUrl: 'http://other:9528/DeviceStatus',
      reportPeriodSeconds: LOGIN_DEFAULT_PERIOD_SECONDS,
    });
  });

  it('takes any status but 200, and a 200 without a monitor URL, as a refusal', () => {
    expect(readLoginReply(loginUrl, 409, JSON.stringify({ error: { code: 600002, message: 'bound' } }))).toEqual({ kind: 'refused', status: 409, code: '600002', message: 'bound' });
    expect(readLoginReply(loginUrl, 200, JSON.stringify({ code: 600000, message: 'no key' }))).toMatchObject({ kind: 'refused', status: 200 });
    expect(readLoginReply(loginUrl, 502, '<html>bad gateway</html>')).toEqual({ kind: 'refused', status: 502, code: null, message: '' });
  });

  it('adds the key and serial to the login URL’s own query', () => {
    expect(loginRequestUrl(loginUrl, { licenseKey: 'K 1&2', serialNumber: 'S/N' }).href).toBe(
      'http://platform.example:8080/api/box-login?site=7&dev_sno=K+1%262&device_sn=S%2FN',
    );
  });
});

describe('key lists', () => {
  it('reads the CSV of `npm run boxes -- issue`, with or without serials, and plain key lists', () => {
    expect(parseKeyList('license_key,box_id,name\nKEY1,1,gate-1\nKEY2,2,gate-2\n')).toEqual([{ licenseKey: 'KEY1' }, { licenseKey: 'KEY2' }]);
    expect(parseKeyList('name,device_sn,license_key\r\ng,SN1,KEY1\n')).toEqual([{ licenseKey: 'KEY1', serialNumber: 'SN1' }]);
    expect(parseKeyList('# issued today\nKEY1\n\nKEY2\n')).toEqual([{ licenseKey: 'KEY1' }, { licenseKey: 'KEY2' }]);
  });

  it('says what is wrong with a file it cannot use', () => {
    expect(() => parseKeyList('\n# nothing\n')).toThrow('no licence keys in it');
    expect(() => parseKeyList('a,b\n1,2\n')).toThrow('a CSV needs a header with a license_key column');
    expect(() => parseKeyList('license_key,name\n,gate-1\n')).toThrow('line 2 has no licence key');
  });
});
