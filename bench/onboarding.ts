/**
 * Onboarding benchmark (issue 18): box logins and fleet rollouts against one gateway, each beside a
 * baseline measured in the same run.
 *
 *   npm run bench:onboarding -- [--boxes 2000] [--concurrency 64] [--period 10]
 *                               [--rollout-boxes 500] [--box-latency-ms 20] [--rollout-concurrency 1,10,50]
 *
 * 1. Logins: `--boxes` boxes registered with issued keys (registerBoxes), then each logs in once (its first
 *    login, which binds its serial) from a pool of `--concurrency` keep-alive connections; baseline: as many
 *    small reports (`POST /DeviceStatus`) from the same pool to the same gateway. Then the simulator in login
 *    mode with those boxes: from each box's login to its first stored report (the gateway's own
 *    `last_login_at` and `first_report_at`), and the share that reported within one period.
 * 2. Rollouts: `--rollout-boxes` box APIs on loopback answering setconfigs after `--box-latency-ms`, and one
 *    rollout over all of them at each concurrency: time to complete against the ideal M × latency / concurrency,
 *    and the most calls the boxes saw under way at once.
 *
 * The gateway runs in its own process (the production build) on a fresh embedded Postgres, rate limits off.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { createFleet, type SimulatedBox } from '../tools/simulator/fleet';
import { formatMs, LatencyHistogram, type LatencySummary } from '../tools/simulator/latency';
import { loginRequestUrl } from '../tools/simulator/login';
import { ReportStream } from '../tools/simulator/prebuilt';
import { runSimulator } from '../tools/simulator/run';
import { graphql } from './lib/alert-rules';
import { Cleanups, numberOption, runBenchmark, sleep, stderrLine, UsageError } from './lib/common';
import { startLatencyBoxes, type LatencyBoxes } from './lib/latency-boxes';
import { BENCH_GATEWAY_ENV, describeExit, startGatewayOnFreshPostgres, type ServerProcess } from './lib/server-process';

const USAGE = `Onboarding benchmark: box logins against ingest reports, the login-to-first-report delay, rollouts.

Usage: npm run bench:onboarding -- [options]

  --boxes N                 boxes issued keys that log in (default 2000)
  --concurrency N           login and report requests in flight, one keep-alive connection each (default 64)
  --devices N               devices per box in reports (default 2: a small report)
  --period S                report period the login reply gives (DEFAULT_REPORT_PERIOD_SECONDS, default 10)
  --rollout-boxes N         loopback box APIs a rollout configures (default 500)
  --box-latency-ms N        how long each box takes to answer setconfigs (default 20)
  --rollout-concurrency L   comma-separated rollout concurrencies, each 1 to 100 (default 1,10,50)
  --seed N                  seed of the simulated fleets (default 1)
  --ready-timeout S         seconds for the gateway to become ready (default 120)
  -h, --help                this text`;

interface OnboardingOptions {
  boxes: number;
  concurrency: number;
  devices: number;
  periodSeconds: number;
  rolloutBoxes: number;
  boxLatencyMs: number;
  rolloutConcurrencies: number[];
  seed: number;
  readyTimeoutMs: number;
}

function parseOptions(argv: string[]): OnboardingOptions | 'help' {
  const s = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: { boxes: s, concurrency: s, devices: s, period: s, 'rollout-boxes': s, 'box-latency-ms': s, 'rollout-concurrency': s, seed: s, 'ready-timeout': s, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (v.help) return 'help';
  const rolloutConcurrencies = (v['rollout-concurrency'] ?? '1,10,50').split(',').map((part) => {
    const n = Number(part.trim());
    // The gateway takes 1 to 100 (startRollout's concurrency).
    if (part.trim() === '' || !Number.isInteger(n) || n < 1 || n > 100) throw new UsageError(`--rollout-concurrency ${v['rollout-concurrency']}: expected whole numbers 1 to 100, comma-separated`);
    return n;
  });
  return {
    boxes: numberOption(v.boxes, 'boxes', 2000, 1, 100_000, true),
    concurrency: numberOption(v.concurrency, 'concurrency', 64, 1, 4096, true),
    devices: numberOption(v.devices, 'devices', 2, 0, 256, true),
    periodSeconds: numberOption(v.period, 'period', 10, 1, 600, true),
    rolloutBoxes: numberOption(v['rollout-boxes'], 'rollout-boxes', 500, 1, 5000, true),
    boxLatencyMs: numberOption(v['box-latency-ms'], 'box-latency-ms', 20, 0, 10_000, true),
    rolloutConcurrencies,
    seed: numberOption(v.seed, 'seed', 1, 0, 2 ** 32 - 1, true),
    readyTimeoutMs: numberOption(v['ready-timeout'], 'ready-timeout', 120, 1, 3600) * 1000,
  };
}

const cleanups = new Cleanups();

// ---------------------------------------------------------------------------------------------
// Gateway

async function startGateway(options: OnboardingOptions): Promise<{ gateway: ServerProcess; databaseUrl: string }> {
  return startGatewayOnFreshPostgres('onboarding', {
    // The period a login reply gives a box that has none configured.
    DEFAULT_REPORT_PERIOD_SECONDS: String(options.periodSeconds),
  }, cleanups);
}

async function waitUntilReady(gateway: ServerProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gateway.exitCode !== undefined) throw new Error(describeExit(gateway));
    const status = await fetch(`${gateway.origin}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await sleep(250);
  }
  throw new Error(`the gateway was not ready (/readyz 200) within ${timeoutMs / 1000} s`);
}

// ---------------------------------------------------------------------------------------------
// Requests from a bounded pool

interface PoolRun {
  count: number;
  seconds: number;
  perSecond: number;
  latency: LatencySummary;
  /** Answers other than 200, and requests with no answer, by status or error code. */
  errors: Record<string, number>;
}

/** Sends `count` requests (`make(i)`), `concurrency` at a time, each as soon as a worker is free. */
async function runPool(pool: Pool, concurrency: number, count: number, make: (i: number) => Parameters<Pool['request']>[0]): Promise<PoolRun> {
  const latency = new LatencyHistogram();
  const errors = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const request = make(next++);
        const t0 = performance.now();
        try {
          const response = await pool.request(request);
          await response.body.dump();
          latency.record(performance.now() - t0);
          if (response.statusCode !== 200) errors.set(`HTTP ${response.statusCode}`, (errors.get(`HTTP ${response.statusCode}`) ?? 0) + 1);
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'no answer';
          errors.set(code, (errors.get(code) ?? 0) + 1);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { count, seconds, perSecond: count / seconds, latency: latency.summary(), errors: Object.fromEntries(errors) };
}

function loginRequest(origin: string, box: SimulatedBox): Parameters<Pool['request']>[0] {
  const url = loginRequestUrl(`${origin}/BoxLogin`, box);
  return { path: `${url.pathname}${url.search}`, method: 'GET', headers: { accept: 'application/json' } };
}

function reportRequest(stream: ReportStream): Parameters<Pool['request']>[0] {
  return { path: '/DeviceStatus', method: 'POST', headers: { 'content-type': 'application/json' }, body: stream.next().body };
}

// ---------------------------------------------------------------------------------------------
// 1. Logins

const RegisterBoxes = `mutation ($count: Int!, $namePrefix: String) {
  registerBoxes(count: $count, namePrefix: $namePrefix) {
    __typename
    ... on Error { message }
    ... on RegisterBoxesSuccess { boxes { licenseKey } }
  }
}`;

/** Licence keys issued by the gateway, at most 1000 a call (registerBoxes' limit). */
async function issueKeys(origin: string, count: number): Promise<string[]> {
  const keys: string[] = [];
  for (let batch = 0; keys.length < count; batch++) {
    const data = await graphql<{ registerBoxes: { __typename: string; message?: string; boxes?: Array<{ licenseKey: string }> } }>(origin, RegisterBoxes, {
      count: Math.min(1000, count - keys.length),
      namePrefix: `bench-${batch}-`,
    });
    if (!data.registerBoxes.boxes) throw new Error(`registerBoxes: ${data.registerBoxes.__typename}: ${data.registerBoxes.message}`);
    keys.push(...data.registerBoxes.boxes.map((box) => box.licenseKey));
  }
  return keys;
}

interface LoginFigures {
  logins: PoolRun;
  reports: PoolRun;
}

async function measureLogins(gateway: ServerProcess, options: OnboardingOptions, issued: SimulatedBox[]): Promise<LoginFigures> {
  const pool = new Pool(gateway.origin, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  cleanups.push(() => pool.close().catch(() => pool.destroy()));
  // Warm-up, unmeasured: a fleet of other keys reports once (the open policy registers them) and logs in
  // once (binding their serials), so both measured paths run warm and start from known boxes.
  const others = createFleet({ boxes: options.boxes, devicesPerBox: options.devices, format: 'new', seed: options.seed + 1, reportPeriodSeconds: options.periodSeconds, monitorUrl: `${gateway.origin}/DeviceStatus` });
  const stream = new ReportStream(others, 0);
  stderrLine(`warm-up: ${options.boxes} reports and ${options.boxes} logins of other boxes`);
  const warmReports = await runPool(pool, options.concurrency, options.boxes, () => reportRequest(stream));
  const warmLogins = await runPool(pool, options.concurrency, options.boxes, (i) => loginRequest(gateway.origin, others[i]!));
  for (const [what, run] of [['warm-up reports', warmReports], ['warm-up logins', warmLogins]] as const) {
    if (Object.keys(run.errors).length > 0) throw new Error(`${what} failed: ${JSON.stringify(run.errors)}`);
  }

  stderrLine(`measuring: ${options.boxes} first logins of the issued keys, then ${options.boxes} reports`);
  const logins = await runPool(pool, options.concurrency, options.boxes, (i) => loginRequest(gateway.origin, issued[i]!));
  const reports = await runPool(pool, options.concurrency, options.boxes, () => reportRequest(stream));
  return { logins, reports };
}

interface OnePeriodFigures {
  seconds: number;
  loginsOk: number;
  loginsNotOk: number;
  acked: number;
  reported: number;
  withinPeriod: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** The simulator in login mode: each box logs in, then sends one report; delays from the gateway's rows. */
async function measureOnePeriod(gateway: ServerProcess, db: pg.Client, options: OnboardingOptions, issued: SimulatedBox[]): Promise<OnePeriodFigures> {
  stderrLine(`simulator, login mode: ${options.boxes} boxes, one report each, period ${options.periodSeconds} s`);
  const started = performance.now();
  const totals = await runSimulator(
    {
      boxes: issued.length,
      devicesPerBox: options.devices,
      reportPeriodSeconds: options.periodSeconds,
      format: 'new',
      url: `${gateway.origin}/DeviceStatus`,
      seed: options.seed,
      flipRate: 0,
      connections: options.concurrency,
      requestTimeoutMs: 30_000,
      reportsPerBox: 1,
      boxApi: false,
      login: { url: `${gateway.origin}/BoxLogin` },
    },
    { fleet: issued },
  );
  const seconds = (performance.now() - started) / 1000;
  const rows = await db.query<{ ms: number | null }>(
    `select extract(epoch from (first_report_at - last_login_at)) * 1000 as ms from boxes where license_key = any($1::text[])`,
    [issued.map((box) => box.licenseKey)],
  );
  const delays = rows.rows.map((r) => (r.ms === null ? null : Number(r.ms)));
  const reported = delays.filter((ms): ms is number => ms !== null).sort((a, b) => a - b);
  const at = (q: number) => reported[Math.min(reported.length - 1, Math.floor(reported.length * q))] ?? Number.NaN;
  const logins = totals.logins!;
  return {
    seconds,
    loginsOk: logins.ok,
    loginsNotOk: Object.values(logins.refused).reduce((a, b) => a + b, 0) + Object.values(logins.failed).reduce((a, b) => a + b, 0),
    acked: totals.acked,
    reported: reported.length,
    withinPeriod: reported.filter((ms) => ms <= options.periodSeconds * 1000).length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: reported.at(-1) ?? Number.NaN,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Rollouts

const RegisterBox = `mutation ($address: String, $apiPort: Int) {
  registerBox(address: $address, apiPort: $apiPort) {
    __typename
    ... on Error { message }
    ... on RegisterBoxSuccess { box { id } }
  }
}`;

const StartRollout = `mutation ($input: StartRolloutInput!) {
  startRollout(input: $input) {
    __typename
    ... on Error { message }
    ... on RolloutSuccess { rollout { id } }
  }
}`;

const RolloutState = `query ($id: ID!) { rollout(id: $id) { state createdAt finishedAt progress { total applied failed } } }`;

interface RolloutFigures {
  concurrency: number;
  /** From the rollout's createdAt to its finishedAt (the gateway's clock). */
  seconds: number;
  idealSeconds: number;
  callsPerSecond: number;
  applied: number;
  failed: number;
  calls: number;
  maxActive: number;
}

async function registerRolloutBoxes(origin: string, boxes: LatencyBoxes): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < boxes.ports.length; from += 20) {
    const batch = await Promise.all(
      boxes.ports.slice(from, from + 20).map(async (port) => {
        const data = await graphql<{ registerBox: { __typename: string; message?: string; box?: { id: string } } }>(origin, RegisterBox, { address: '127.0.0.1', apiPort: port });
        if (!data.registerBox.box) throw new Error(`registerBox: ${data.registerBox.__typename}: ${data.registerBox.message}`);
        return data.registerBox.box.id;
      }),
    );
    ids.push(...batch);
  }
  return ids;
}

async function measureRollout(origin: string, boxes: LatencyBoxes, boxIds: string[], concurrency: number, run: number, options: OnboardingOptions): Promise<RolloutFigures> {
  boxes.reset();
  const data = await graphql<{ startRollout: { __typename: string; message?: string; rollout?: { id: string } } }>(origin, StartRollout, {
    // A different period each run, so every run changes every box.
    input: { boxIds, settings: { reportPeriodSeconds: 30 + run }, concurrency, failureThreshold: boxIds.length },
  });
  if (!data.startRollout.rollout) throw new Error(`startRollout: ${data.startRollout.__typename}: ${data.startRollout.message}`);
  const id = data.startRollout.rollout.id;
  const ideal = (boxIds.length * options.boxLatencyMs) / concurrency / 1000;
  // Generous: ten times the ideal plus per-call overhead, so a slow machine still ends with its figures.
  const deadline = Date.now() + Math.max(30_000, 10 * ideal * 1000 + boxIds.length * 50);
  for (;;) {
    const { rollout } = await graphql<{ rollout: { state: string; createdAt: string; finishedAt: string | null; progress: { total: number; applied: number; failed: number } } }>(origin, RolloutState, { id });
    if (rollout.state !== 'RUNNING') {
      if (rollout.state !== 'COMPLETED' || !rollout.finishedAt) throw new Error(`rollout at concurrency ${concurrency} ended ${rollout.state}: ${JSON.stringify(rollout.progress)}`);
      const seconds = (Date.parse(rollout.finishedAt) - Date.parse(rollout.createdAt)) / 1000;
      return {
        concurrency,
        seconds,
        idealSeconds: ideal,
        callsPerSecond: boxes.calls / seconds,
        applied: rollout.progress.applied,
        failed: rollout.progress.failed,
        calls: boxes.calls,
        maxActive: boxes.maxActive,
      };
    }
    if (Date.now() > deadline) throw new Error(`rollout at concurrency ${concurrency} still RUNNING after the deadline: ${JSON.stringify(rollout.progress)}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// Output

const n = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function printResults(options: OnboardingOptions, issueSeconds: number, logins: LoginFigures, period: OnePeriodFigures, rollouts: RolloutFigures[], rolloutSetupSeconds: number): number {
  const out: string[] = [];
  const cores = os.availableParallelism();
  out.push('Onboarding benchmark');
  out.push(
    `conditions: ${cores} cores (${os.cpus()[0]?.model ?? 'unknown cpu'}), node ${process.version}, load average ${os.loadavg()[0]!.toFixed(2)} at the end; ` +
      `gateway = production build, own process, fresh embedded Postgres, rate limits off (${Object.keys(BENCH_GATEWAY_ENV).filter((k) => k.startsWith('RATE_')).length} RATE_LIMIT_* = 0); client and box APIs in this process; loopback only`,
  );
  out.push('');
  out.push(`1. logins: ${n(options.boxes)} boxes registered with issued keys (registerBoxes, ${issueSeconds.toFixed(1)} s), each logging in once (first login: binds its serial); ${options.concurrency} keep-alive connections`);
  const row = (label: string, r: PoolRun) =>
    `  ${label.padEnd(52)} ${n(r.perSecond).padStart(7)}/s  p50 ${formatMs(r.latency.p50Ms).padStart(8)}  p99 ${formatMs(r.latency.p99Ms).padStart(8)}  max ${formatMs(r.latency.maxMs).padStart(8)}  ${r.seconds.toFixed(2)} s` +
    (Object.keys(r.errors).length ? `  errors ${JSON.stringify(r.errors)}` : '  no errors');
  out.push(row(`logins (GET /BoxLogin)`, logins.logins));
  out.push(row(`baseline: reports (POST /DeviceStatus, ${options.devices} devices)`, logins.reports));
  out.push(`  logins/s ÷ reports/s = ${(logins.logins.perSecond / logins.reports.perSecond).toFixed(2)}; p99 login ÷ p99 report = ${(logins.logins.latency.p99Ms / logins.reports.latency.p99Ms).toFixed(2)}`);
  out.push('');
  out.push(`   one period: the simulator in login mode, the same ${n(options.boxes)} boxes, period ${options.periodSeconds} s (from the login reply), one report each, box APIs off (${period.seconds.toFixed(1)} s)`);
  out.push(`  logins ok ${n(period.loginsOk)}, not ok ${n(period.loginsNotOk)}; reports acknowledged ${n(period.acked)}; boxes with a stored first report ${n(period.reported)}`);
  out.push(
    `  login -> first stored report (gateway's last_login_at -> first_report_at): p50 ${formatMs(period.p50Ms)}, p99 ${formatMs(period.p99Ms)}, max ${formatMs(period.maxMs)}; ` +
      `within one period: ${n(period.withinPeriod)} of ${n(options.boxes)} (${(Math.floor((10_000 * period.withinPeriod) / options.boxes) / 100).toFixed(2)}%, rounded down)`,
  );
  out.push('');
  out.push(`2. rollouts: ${n(options.rolloutBoxes)} loopback box APIs answering setconfigs after ${options.boxLatencyMs} ms (started and registered in ${rolloutSetupSeconds.toFixed(1)} s); one rollout over all of them per concurrency`);
  out.push(`  ${'concurrency'.padEnd(12)} ${'complete'.padStart(9)} ${'ideal'.padStart(8)} ${'÷ ideal'.padStart(8)} ${'calls/s'.padStart(8)} ${'applied'.padStart(8)} ${'failed'.padStart(7)} ${'max in flight at the boxes'.padStart(27)}`);
  let ok = period.loginsNotOk === 0 && Object.keys(logins.logins.errors).length === 0;
  for (const r of rollouts) {
    const within = r.maxActive <= r.concurrency;
    ok &&= within && r.failed === 0 && r.applied === options.rolloutBoxes;
    out.push(
      `  ${String(r.concurrency).padEnd(12)} ${`${r.seconds.toFixed(2)} s`.padStart(9)} ${`${r.idealSeconds.toFixed(2)} s`.padStart(8)} ${r.idealSeconds > 0 ? (r.seconds / r.idealSeconds).toFixed(2).padStart(8) : '-'.padStart(8)} ${n(r.callsPerSecond).padStart(8)} ${n(r.applied).padStart(8)} ${n(r.failed).padStart(7)} ${`${r.maxActive}${within ? ' (≤ concurrency)' : ' (ABOVE concurrency)'}`.padStart(27)}`,
    );
  }
  out.push('');
  out.push(ok ? 'result: every login and box call succeeded; no rollout exceeded its concurrency' : 'result: FAILURES above (logins not ok, failed box calls, or a rollout above its concurrency)');
  process.stdout.write(`${out.join('\n')}\n`);
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

async function run(options: OnboardingOptions): Promise<number> {
  const { gateway, databaseUrl } = await startGateway(options);
  stderrLine('waiting for the gateway');
  await waitUntilReady(gateway, options.readyTimeoutMs);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  cleanups.push(() => db.end());

  stderrLine(`issuing ${options.boxes} licence keys`);
  const issueStarted = performance.now();
  const keys = await issueKeys(gateway.origin, options.boxes);
  const issueSeconds = (performance.now() - issueStarted) / 1000;
  const issued = createFleet({
    boxes: options.boxes,
    devicesPerBox: options.devices,
    format: 'new',
    seed: options.seed,
    reportPeriodSeconds: options.periodSeconds,
    monitorUrl: `${gateway.origin}/DeviceStatus`,
    identities: keys.map((licenseKey) => ({ licenseKey })),
  });
  const logins = await measureLogins(gateway, options, issued);
  const period = await measureOnePeriod(gateway, db, options, issued);

  stderrLine(`starting ${options.rolloutBoxes} box APIs and registering them`);
  const setupStarted = performance.now();
  const boxes = await startLatencyBoxes(options.rolloutBoxes, options.boxLatencyMs);
  cleanups.push(() => boxes.close());
  const boxIds = await registerRolloutBoxes(gateway.origin, boxes);
  const setupSeconds = (performance.now() - setupStarted) / 1000;
  const rollouts: RolloutFigures[] = [];
  for (const [i, concurrency] of options.rolloutConcurrencies.entries()) {
    stderrLine(`rollout at concurrency ${concurrency}`);
    rollouts.push(await measureRollout(gateway.origin, boxes, boxIds, concurrency, i, options));
  }
  if (gateway.exitCode !== undefined) throw new Error(describeExit(gateway));
  return printResults(options, issueSeconds, logins, period, rollouts, setupSeconds);
}

process.exitCode = await runBenchmark(parseOptions, USAGE, cleanups, 10, run);
