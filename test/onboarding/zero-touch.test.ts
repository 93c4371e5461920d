import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { FleetFaults } from '../../tools/simulator/faults';
import { createFleet } from '../../tools/simulator/fleet';
import type { LoginOutcome } from '../../tools/simulator/login';
import { runSimulator, SIMULATOR_DEFAULTS } from '../../tools/simulator/run';
import { graphql } from '../helpers/graphql';
import { freePort } from '../helpers/net';
import { ROOT, runScript, spawnGateway, type GatewayProcess } from '../helpers/process';
import { until } from '../helpers/wait';

// Zero-touch onboarding end to end, as an operator does it: the gateway as production runs it on its
// embedded Postgres; 20 keys issued with the boxes CLI (the only operator action); the simulator's 20
// boxes know only the login URL, their keys and their own serials. Each logs in, and reports to where
// the reply says within one report period of its login.

const PERIOD_SECONDS = 3;
const BOXES = 20;

let dataDir: string;
let gateway: GatewayProcess;
let env: Record<string, string>;

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-zero-touch-'));
  await fs.chmod(dataDir, 0o777);
  env = { PORT: '0', FLEETGATE_DATA_DIR: path.join(dataDir, 'postgres'), EMBEDDED_PG_PORT: String(await freePort()), DEFAULT_REPORT_PERIOD_SECONDS: String(PERIOD_SECONDS) };
  gateway = await spawnGateway(env);
}, 120_000);
afterAll(async () => {
  gateway?.child.kill('SIGTERM');
  await gateway?.exited;
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** `node dist/boxes.js ...` from this run's build, on the running gateway's embedded Postgres. */
function boxesCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(inject('gatewayBuild'), 'boxes.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, FLEETGATE_DATA_DIR: env.FLEETGATE_DATA_DIR, EMBEDDED_PG_PORT: '1', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

it('20 boxes that know only the login URL, their keys and serials all report within one period of their login', { timeout: 120_000 }, async () => {
  const issued = await boxesCli(['issue', String(BOXES), '--name-prefix', 'gate-']);
  expect(issued.code, issued.stderr).toBe(0);
  const keysFile = path.join(dataDir, 'keys.csv');
  await fs.writeFile(keysFile, issued.stdout);
  const keys = issued.stdout.trim().split('\n').slice(1).map((line) => line.split(',')[0]!);
  expect(keys).toHaveLength(BOXES);

  const simulated = await runScript('tools/simulator/main.ts', [
    '--login-url', `${gateway.url}/BoxLogin`,
    '--keys', keysFile,
    '--no-api',
    '--devices', '2',
    '--reports-per-box', '1',
    '--timeout', '10',
    '--json',
  ]);
  expect(simulated.code, simulated.stderr).toBe(0);
  const totals = JSON.parse(simulated.stdout) as { sent: number; acked: number; logins: { ok: number; refused: object; failed: object } };
  expect(totals).toMatchObject({ sent: BOXES, acked: BOXES, logins: { ok: BOXES, refused: {}, failed: {} } });

  const { body } = await graphql<any, unknown>(
    gateway.url,
    `{ boxes(first: 50) { nodes { licenseKey name status hardwareSerial lastLoginAt firstReportAt reportPeriodSeconds deviceCounts { total } } } }`,
    undefined,
    { token: gateway.token },
  );
  const boxes = body.data.boxes.nodes as {
    licenseKey: string;
    name: string;
    status: string;
    hardwareSerial: string | null;
    lastLoginAt: string | null;
    firstReportAt: string | null;
    reportPeriodSeconds: number | null;
    deviceCounts: { total: number };
  }[];
  expect(boxes.map((box) => box.licenseKey).sort()).toEqual([...keys].sort());
  for (const box of boxes) {
    expect(box, box.licenseKey).toMatchObject({ status: 'ONLINE', reportPeriodSeconds: PERIOD_SECONDS, deviceCounts: { total: 2 } });
    expect(box.hardwareSerial, `${box.licenseKey} bound at its login`).toMatch(/^SE5A[0-9A-F]{12}$/i);
    // Within one period of its login (the simulator plans its first report inside the period), with a
    // second of slack for a busy machine.
    const sinceLogin = Date.parse(box.firstReportAt!) - Date.parse(box.lastLoginAt!);
    expect(sinceLogin, `${box.licenseKey}: first report ${sinceLogin} ms after its login`).toBeGreaterThanOrEqual(0);
    expect(sinceLogin, `${box.licenseKey}: first report ${sinceLogin} ms after its login`).toBeLessThan(PERIOD_SECONDS * 1000 + 1000);
  }
  expect(new Set(boxes.map((box) => box.hardwareSerial)).size).toBe(BOXES);
});

it('a box whose hardware was replaced is refused (600002) until an operator rebinds its key; then it reports again', { timeout: 60_000 }, async () => {
  const operate = async (query: string, variables: Record<string, unknown>) => {
    const { body } = await graphql<any, unknown>(gateway.url, query, variables, { token: gateway.token });
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    return body.data;
  };
  const registered = await operate('mutation { registerBoxes(count: 2) { ... on RegisterBoxesSuccess { boxes { id licenseKey } } } }', {});
  const boxes = registered.registerBoxes.boxes as { id: string; licenseKey: string }[];
  const fleet = createFleet({
    boxes: 2,
    devicesPerBox: 1,
    format: 'new',
    seed: 7,
    reportPeriodSeconds: PERIOD_SECONDS,
    monitorUrl: 'http://127.0.0.1:1/',
    identities: boxes.map(({ licenseKey }) => ({ licenseKey })),
  });
  // Its key binds to the old hardware at its first login; right after, the box gets new hardware.
  const [replaced] = new FleetFaults(fleet, 7).replaceHardware({ count: 1 });
  const oldSerial = replaced!.serialNumber;
  const boxId = boxes.find((box) => box.licenseKey === replaced!.licenseKey)!.id;
  const outcomes: { serial: string; outcome: LoginOutcome }[] = [];
  const stop = new AbortController();
  const running = runSimulator(
    {
      ...SIMULATOR_DEFAULTS,
      boxes: 2,
      devicesPerBox: 1,
      reportPeriodSeconds: PERIOD_SECONDS,
      boxApi: false,
      login: { url: `${gateway.url}/BoxLogin`, onOutcome: (box, outcome) => box === replaced && outcomes.push({ serial: box.serialNumber, outcome }) },
    },
    { fleet, signal: stop.signal },
  );
  try {
    await until(() => outcomes.some(({ outcome }) => outcome.kind === 'refused'), 'the replaced box’s refused login', { timeoutMs: 20_000 });
    expect(outcomes[0]).toMatchObject({ outcome: { kind: 'ok' } });
    expect(outcomes.find(({ outcome }) => outcome.kind === 'refused')).toEqual({
      serial: replaced!.serialNumber,
      outcome: { kind: 'refused', status: 409, code: '600002', message: expect.stringContaining('rebindBoxHardware') },
    });
    const before = await operate('query ($id: ID!) { box(id: $id) { hardwareSerial reportCount } }', { id: boxId });
    expect(before.box).toEqual({ hardwareSerial: oldSerial, reportCount: 0 });

    const rebound = await operate(
      'mutation ($boxId: ID!, $serial: String) { rebindBoxHardware(boxId: $boxId, hardwareSerial: $serial) { __typename ... on RebindBoxHardwareSuccess { box { hardwareSerial } } } }',
      { boxId, serial: replaced!.serialNumber },
    );
    expect(rebound.rebindBoxHardware).toEqual({ __typename: 'RebindBoxHardwareSuccess', box: { hardwareSerial: replaced!.serialNumber } });
    // Its next login (it retries 1, 2, 4 ... s apart) succeeds, and it reports within one period.
    await until(
      async () => (await operate('query ($id: ID!) { box(id: $id) { reportCount } }', { id: boxId })).box.reportCount > 0,
      'a report of the rebound box',
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(outcomes[outcomes.length - 1]).toMatchObject({ serial: replaced!.serialNumber, outcome: { kind: 'ok' } });
  } finally {
    stop.abort();
    await running;
  }
});
