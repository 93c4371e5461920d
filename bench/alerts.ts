/**
 * Alerts benchmark (issue 16): a fleet reporting to one gateway, 50 alert rules, 2 webhook receivers, and a
 * mass outage: boxes fall silent at once, then devices flap. Prints the delay from when each alert should
 * fire to its webhook's receipt, notifications lost and duplicated, the gateway's CPU, and the ingest rate
 * during the storm beside the rate during the same storm with no rules, in the same run.
 *
 *   npm run bench:alerts -- [--boxes 10000] [--devices 16] [--silence 1000] [--flap 20000] [--evaluation-interval-ms N]
 *
 * Phases: register every box; storm 1 with no rules (the ingest baseline); recover, and wait out the longest
 * flap window; create 2 channels and 50 rules through GraphQL; a quiet stretch with rules; storm 2 with rules
 * on other boxes and devices; keep reporting until every alert due by the cutoff has had time to arrive. What
 * should fire is worked out from the gateway's stored reports and changes (bench/lib/alert-expectations.ts).
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { FleetFaults } from '../tools/simulator/faults';
import { createFleet } from '../tools/simulator/fleet';
import { benchRules, createChannels, createRules, LONGEST_FLAP_WINDOW_SECONDS } from './lib/alert-rules';
import { expectedAlerts, matchReceipts, type OfflineRule } from './lib/alert-expectations';
import { Cleanups, numberOption, runBenchmark, sleep, stderrLine } from './lib/common';
import { treeCpuSeconds } from './lib/process-cpu';
import { ReportDriver } from './lib/report-driver';
import { describeExit, startGatewayOnFreshPostgres, type ServerProcess } from './lib/server-process';
import { startReceiverProcess } from './lib/receiver-process';
import type { WebhookReceiver } from './lib/webhook-receivers';
import { printAlertResults, type StormFigures } from './lib/alert-report';

const USAGE = `Alerts benchmark: 50 rules, 2 webhook receivers, a mass outage; delays, losses, CPU, ingest.

Usage: npm run bench:alerts -- [options]

  --boxes N                  simulated boxes (default 10000; --boxes 1000 for a quick run)
  --devices N                devices per box (default 16)
  --silence N                boxes that fall silent at once in each storm (default boxes / 10)
  --flap N                   devices that flap in each storm (default 1/8 of all devices: 20000 of 160000)
  --flap-after S             seconds from the silence to the flapping (default 15)
  --flap-seconds S           how long devices flap (default 60: at 10,000 boxes a box reports every 10-20 s on this machine)
  --concurrency N            reports in flight, each box waiting for its answer (default 512)
  --evaluation-interval-ms N the gateway's ALERT_EVALUATION_INTERVAL_MS (default 1000, the gateway's default)
  --webhook-channel-concurrency N  the gateway's WEBHOOK_CHANNEL_CONCURRENCY (default 32; WEBHOOK_CONCURRENCY twice it)
  --drain S                  longest wait for late webhooks after the cutoff (default 180)
  --seed N                   seed of the fleet and of which boxes and devices fail (default 1)
  --ready-timeout S          seconds for the gateway to answer its first report (default 120)
  -h, --help                 this text

The gateway runs in its own process on a fresh embedded Postgres, with OFFLINE_MIN_SECONDS=10,
OFFLINE_PERIODS=3, SWEEP_INTERVAL_MS=500; the receivers run in a child process, the load in this one; loopback only.`;

export interface AlertBenchOptions {
  boxes: number;
  devices: number;
  silence: number;
  flap: number;
  flapAfterSeconds: number;
  flapSeconds: number;
  concurrency: number;
  evaluationIntervalMs: number;
  webhookChannelConcurrency: number;
  drainSeconds: number;
  seed: number;
  readyTimeoutMs: number;
}

const OFFLINE: OfflineRule = { periods: 3, minSeconds: 10, defaultPeriodSeconds: 60 };

function parseOptions(argv: string[]): AlertBenchOptions | 'help' {
  const s = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: { boxes: s, devices: s, silence: s, flap: s, 'flap-after': s, 'flap-seconds': s, concurrency: s, 'evaluation-interval-ms': s, 'webhook-channel-concurrency': s, drain: s, seed: s, 'ready-timeout': s, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (v.help) return 'help';
  const boxes = numberOption(v.boxes, 'boxes', 10_000, 10, 1_000_000, true);
  const devices = numberOption(v.devices, 'devices', 16, 1, 4096, true);
  const silence = numberOption(v.silence, 'silence', Math.round(boxes / 10), 1, Math.floor(boxes / 3), true);
  return {
    boxes,
    devices,
    silence,
    flap: numberOption(v.flap, 'flap', Math.round((boxes * devices) / 8), 1, Math.floor(((boxes - 2 * silence) * devices) / 2), true),
    flapAfterSeconds: numberOption(v['flap-after'], 'flap-after', 15, 0, 600),
    flapSeconds: numberOption(v['flap-seconds'], 'flap-seconds', 60, 1, 600),
    concurrency: numberOption(v.concurrency, 'concurrency', Math.min(512, boxes), 1, 4096, true),
    evaluationIntervalMs: numberOption(v['evaluation-interval-ms'], 'evaluation-interval-ms', 1000, 50, 600_000, true),
    webhookChannelConcurrency: numberOption(v['webhook-channel-concurrency'], 'webhook-channel-concurrency', 32, 1, 1000, true),
    drainSeconds: numberOption(v.drain, 'drain', 180, 1, 3600),
    seed: numberOption(v.seed, 'seed', 1, 0, 2 ** 32 - 1, true),
    readyTimeoutMs: numberOption(v['ready-timeout'], 'ready-timeout', 120, 1, 3600) * 1000,
  };
}

const cleanups = new Cleanups();

/** A line on stderr every second: what the bench does, reports/s, webhooks received. */
function progress(driver: ReportDriver, receivers: WebhookReceiver[]): { stage(name: string): void; stop(): void } {
  let stage = 'starting';
  let last = driver.acked;
  const timer = setInterval(() => {
    const received = receivers.reduce((n, r) => n + r.receipts.length, 0);
    stderrLine(`[alerts] ${stage.padEnd(34)} ${String(driver.acked - last).padStart(6)} reports/s  ${driver.failed} failed  webhooks received ${received}`);
    last = driver.acked;
  }, 1000);
  return { stage: (name) => (stage = name), stop: () => clearInterval(timer) };
}

/** Silence, then flapping, over one stretch; the reports acknowledged and the CPU used meanwhile. */
async function storm(faults: FleetFaults, driver: ReportDriver, gateway: ServerProcess, options: AlertBenchOptions, stage: (name: string) => void): Promise<StormFigures> {
  const cpuBefore = treeCpuSeconds(gateway.child.pid);
  const ackedBefore = driver.acked;
  const started = performance.now();
  const startedAt = new Date();
  stage(`storm: ${options.silence} boxes silent`);
  faults.silence({ count: options.silence });
  await sleep(options.flapAfterSeconds * 1000);
  stage(`storm: ${options.flap} devices flap`);
  const flapping = faults.flap({ count: options.flap }).length;
  await sleep(options.flapSeconds * 1000);
  faults.stopFlapping();
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = treeCpuSeconds(gateway.child.pid);
  if (gateway.exitCode !== undefined) throw new Error(describeExit(gateway));
  return {
    startedAt,
    endedAt: new Date(),
    seconds,
    flapping,
    reportsPerSecond: (driver.acked - ackedBefore) / seconds,
    gatewayCores: cpuBefore && cpuAfter ? (cpuAfter.root - cpuBefore.root) / seconds : undefined,
    postgresCores: cpuBefore && cpuAfter ? (cpuAfter.descendants - cpuBefore.descendants) / seconds : undefined,
    loadAverage: os.loadavg()[0]!,
  };
}

async function startGateway(options: AlertBenchOptions): Promise<{ gateway: ServerProcess; databaseUrl: string }> {
  return startGatewayOnFreshPostgres('alerts', {
    OFFLINE_PERIODS: String(OFFLINE.periods),
    OFFLINE_MIN_SECONDS: String(OFFLINE.minSeconds),
    DEFAULT_REPORT_PERIOD_SECONDS: String(OFFLINE.defaultPeriodSeconds),
    SWEEP_INTERVAL_MS: '500',
    // Sends in flight per channel and per process above the defaults (4, 32), for a storm's volume (lane B's advice).
    WEBHOOK_CHANNEL_CONCURRENCY: String(options.webhookChannelConcurrency),
    WEBHOOK_CONCURRENCY: String(options.webhookChannelConcurrency * 2),
    ALERT_EVALUATION_INTERVAL_MS: String(options.evaluationIntervalMs),
  }, cleanups);
}

async function waitUntilReady(gateway: ServerProcess, driver: ReportDriver, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gateway.exitCode !== undefined) throw new Error(describeExit(gateway));
    if ((await driver.post()) === 200) return;
    await sleep(250);
  }
  throw new Error(`the gateway did not answer a report with 200 within ${timeoutMs / 1000} s`);
}

async function run(options: AlertBenchOptions): Promise<number> {
  const receiverProcess = await startReceiverProcess(['a', 'b']);
  cleanups.push(() => receiverProcess.stop());
  const { receivers } = receiverProcess;
  const { gateway, databaseUrl } = await startGateway(options);
  const fleet = createFleet({ boxes: options.boxes, devicesPerBox: options.devices, format: 'mixed', seed: options.seed, reportPeriodSeconds: 1, monitorUrl: `${gateway.origin}/DeviceStatus`, initialOfflineRate: 0 });
  const faults = new FleetFaults(fleet, options.seed);
  const driver = new ReportDriver(gateway.origin, fleet, options.concurrency);
  cleanups.push(() => driver.close());
  const shown = progress(driver, receivers);
  cleanups.push(async () => shown.stop());

  shown.stage('waiting for the gateway');
  await waitUntilReady(gateway, driver, options.readyTimeoutMs);
  shown.stage(`registering ${options.boxes} boxes`);
  driver.start(options.boxes);
  await driver.stop();
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  cleanups.push(() => db.end());
  const boxIds = (await db.query<{ id: number }>('select id from boxes order by license_key')).rows.map((r) => r.id);
  const channelIds = await createChannels(gateway.origin, receivers);

  driver.start();
  shown.stage('warm-up');
  await sleep(5_000);
  const baseline = await storm(faults, driver, gateway, options, (name) => shown.stage(`no rules, ${name}`));
  faults.recover();
  shown.stage(`recovering; waiting out the flap window`);
  await sleep((LONGEST_FLAP_WINDOW_SECONDS + 5) * 1000);

  shown.stage('creating 50 rules');
  const rules = await createRules(gateway.origin, benchRules(boxIds), channelIds);
  const quietFrom = { acked: driver.acked, at: performance.now() };
  shown.stage('rules, no storm');
  await sleep(10_000);
  const quietRate = (driver.acked - quietFrom.acked) / ((performance.now() - quietFrom.at) / 1000);

  const withRules = await storm(faults, driver, gateway, options, (name) => shown.stage(`rules, ${name}`));
  const longestFor = Math.max(...rules.filter((r) => r.kind !== 'BOX_HEALTH').map((r) => r.forSeconds ?? 0));
  const cutoff = new Date(withRules.endedAt.getTime() + longestFor * 1000 + 2_000);
  shown.stage('waiting for the cutoff');
  await sleep(cutoff.getTime() - Date.now());

  // Keep reporting (a stopped fleet would go offline and fire) until every due alert has arrived, or the drain ends.
  shown.stage('draining late webhooks');
  const drainUntil = Date.now() + options.drainSeconds * 1000;
  let expected = await expectedAlerts(db, rules, OFFLINE, withRules.startedAt, cutoff);
  for (;;) {
    const matched = matchReceipts(expected, receivers.map((r) => r.distinct('FIRED').receipts), cutoff);
    if (matched.lost.length === 0 || Date.now() > drainUntil) break;
    await sleep(2_000);
  }
  expected = await expectedAlerts(db, rules, OFFLINE, withRules.startedAt, cutoff);
  await driver.stop();
  shown.stop();
  await receiverProcess.stop(); // its last receipts

  const changes = await db.query<{ n: number }>('select count(*)::int as n from status_events where device_id is not null and at >= $1', [withRules.startedAt]);
  const outbox = await db.query<{ status: string; n: number }>('select status, count(*)::int as n from alert_notifications group by status');
  const keys = (await db.query<{ idempotency_key: string }>('select idempotency_key from alert_notifications')).rows.map((r) => r.idempotency_key);
  return printAlertResults({
    options,
    rules,
    baseline,
    withRules,
    quietRate,
    expected,
    matched: matchReceipts(expected, receivers.map((r) => r.distinct('FIRED').receipts), cutoff),
    receivers,
    outbox: Object.fromEntries(outbox.rows.map((r) => [r.status, r.n])),
    queuedKeys: keys,
    evaluationIntervalMs: options.evaluationIntervalMs,
    deviceChanges: changes.rows[0]!.n,
  });
}

process.exitCode = await runBenchmark(parseOptions, USAGE, cleanups, 30, run);
