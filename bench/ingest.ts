/**
 * Ingest benchmark: how many device-status reports per second the gateway stores, next to a bare
 * node:http server that only parses them (the baseline), both driven by the same report generator.
 *
 *   npm run bench:ingest -- [--boxes 1000] [--devices 16] [--change-rate 0.01] [--duration 30]
 *                           [--concurrency BOXES] [--warmup 3] [--format mixed] [--only both|baseline|gateway]
 *
 * Each server runs in its own child process on loopback. The gateway gets a fresh embedded Postgres in a
 * temporary folder unless DATABASE_URL is set. See `--help` for every option.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { createFleet, type FleetFormat, type SimulatedBox } from '../tools/simulator/fleet';
import { formatMs, LatencyHistogram, type LatencySummary } from '../tools/simulator/latency';
import { ReportStream } from '../tools/simulator/prebuilt';
import { Cleanups, UsageError, freePort, numberOption, oneOf, parseCommandLine, sleep, stderrLine, stopLeftoverPostgres } from './lib/common';
import { describeExit, startServer, stopServer, type ServerProcess } from './lib/server-process';
import { treeCpuSeconds } from './lib/process-cpu';
import { GATEWAY_NODE_FLAGS } from '../src/node-flags';


const USAGE = `Ingest benchmark: the gateway's sustained report rate against a bare node:http baseline.

Usage: npm run bench:ingest -- [options]

  --boxes N             simulated boxes, reporting round-robin (default 1000)
  --devices N           devices per box (default 16)
  --change-rate P       probability a device changes status per report (default 0.01)
  --duration S          measured seconds per server (default 30)
  --warmup S            unmeasured seconds before that (default 3)
  --concurrency N       requests in flight, one keep-alive connection each (default: one per box, as
                        each box waits for its answer before its next report)
  --format F            new | old | mixed report format (default mixed)
  --seed N              seed of the fleet (default 1)
  --only WHICH          both | baseline | gateway (default both)
  --gateway-entry FILE  the gateway's entry point (default src/main.ts)
  --gateway-node-args=A node flags for the gateway process, space-separated
                        (e.g. --gateway-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof")
  --path P              report path (default /DeviceStatus)
  --timeout S           seconds before an unanswered report counts as an error (default 10)
  --ready-timeout S     seconds to wait for a server to accept its first report (default 60)
  --hard-timeout S      the whole benchmark stops after this (default: a generous bound from the above)
  -h, --help            this text

Environment: DATABASE_URL makes the gateway use that database instead of a fresh embedded Postgres
(the durability counts then include rows that were already there).`;

interface BenchOptions {
  boxes: number;
  devices: number;
  changeRate: number;
  durationSeconds: number;
  warmupSeconds: number;
  concurrency: number;
  format: FleetFormat;
  seed: number;
  only: 'both' | 'baseline' | 'gateway';
  gatewayEntry: string;
  gatewayNodeArgs: string[];
  path: string;
  requestTimeoutMs: number;
  readyTimeoutMs: number;
  hardTimeoutMs: number;
}




function parseOptions(argv: string[]): BenchOptions | 'help' {
  const stringOption = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      boxes: stringOption,
      devices: stringOption,
      'change-rate': stringOption,
      duration: stringOption,
      warmup: stringOption,
      concurrency: stringOption,
      format: stringOption,
      seed: stringOption,
      only: stringOption,
      'gateway-entry': stringOption,
      'gateway-node-args': stringOption,
      path: stringOption,
      timeout: stringOption,
      'ready-timeout': stringOption,
      'hard-timeout': stringOption,
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return 'help';
  const durationSeconds = numberOption(v.duration, 'duration', 30, 1, 3600);
  const warmupSeconds = numberOption(v.warmup, 'warmup', 3, 0, 600);
  const requestTimeoutMs = numberOption(v.timeout, 'timeout', 10, 0.1, 600) * 1000;
  const readyTimeoutMs = numberOption(v['ready-timeout'], 'ready-timeout', 60, 1, 3600) * 1000;
  // Per server: readiness, registration, warm-up, measure, drain, shutdown; with room to spare.
  const generous = 2 * (readyTimeoutMs / 1000 + 2 * (warmupSeconds + durationSeconds) + 120);
  const reportPath = v.path ?? '/DeviceStatus';
  if (!reportPath.startsWith('/')) throw new UsageError(`--path ${reportPath}: must start with /`);
  const boxes = numberOption(v.boxes, 'boxes', 1000, 1, 1_000_000, true);
  return {
    boxes,
    devices: numberOption(v.devices, 'devices', 16, 0, 4096, true),
    changeRate: numberOption(v['change-rate'], 'change-rate', 0.01, 0, 1),
    durationSeconds,
    warmupSeconds,
    concurrency: numberOption(v.concurrency, 'concurrency', Math.min(boxes, 4096), 1, 4096, true),
    format: oneOf(v.format, 'format', ['new', 'old', 'mixed'], 'mixed'),
    seed: numberOption(v.seed, 'seed', 1, 0, 2 ** 32 - 1, true),
    only: oneOf(v.only, 'only', ['both', 'baseline', 'gateway'], 'both'),
    gatewayEntry: v['gateway-entry'] ?? 'src/main.ts',
    gatewayNodeArgs: (v['gateway-node-args'] ?? '').split(' ').filter((arg) => arg !== ''),
    path: reportPath,
    requestTimeoutMs,
    readyTimeoutMs,
    hardTimeoutMs: numberOption(v['hard-timeout'], 'hard-timeout', Math.ceil(generous), 1, 86_400) * 1000,
  };
}



// ---------------------------------------------------------------------------------------------
// Server processes


// ---------------------------------------------------------------------------------------------
// Load

const JSON_HEADERS = { 'content-type': 'application/json' };

interface Phase {
  acked: number;
  changesAcked: number;
  errors: Map<string, number>;
  latency: LatencyHistogram;
}

function newPhase(): Phase {
  return { acked: 0, changesAcked: 0, errors: new Map(), latency: new LatencyHistogram() };
}

export interface RunResult {
  label: string;
  seconds: number;
  acked: number;
  reportsPerSecond: number;
  latency: LatencySummary;
  errors: Record<string, number>;
  /** Cores used by the server process while measuring. */
  serverCores: number | undefined;
  /** Cores used by its child processes (the embedded Postgres) while measuring. */
  childCores: number | undefined;
  /** Cores used by this process (the load generator and its HTTP client) while measuring. */
  clientCores: number;
  /** Acknowledged reports over the whole run: probe, registration, warm-up, measure, drain. */
  ackedAllPhases: number;
  /** Device status changes carried by all acknowledged reports. */
  changesAckedAllPhases: number;
}

/**
 * `concurrency` workers, each posting the stream's next report as soon as its last one is answered.
 * Counters go to the current phase, so switching phase at the measure boundary is one assignment.
 */
class LoadDriver {
  private readonly pool: Pool;
  private phase = newPhase();
  private readonly everything = newPhase();
  private workers: Promise<void>[] = [];
  private stopping = false;
  inFlight = 0;

  constructor(
    server: ServerProcess,
    private readonly stream: ReportStream,
    private readonly options: BenchOptions,
  ) {
    this.pool = new Pool(server.origin, {
      connections: options.concurrency,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
  }

  get totals(): Phase {
    return this.everything;
  }

  /**
   * Posts one body; resolves to the HTTP status, or an error kind when there was no answer.
   * A readiness `probe` counts only when answered 200: refusals before the server listens are expected.
   */
  async post(body: Buffer, changes: number, { probe = false, timeoutMs = this.options.requestTimeoutMs } = {}): Promise<number | string> {
    const started = performance.now();
    this.inFlight++;
    try {
      const response = await this.pool.request({
        path: this.options.path,
        method: 'POST',
        headers: JSON_HEADERS,
        body,
        // The pool's headers and body timeouts already bound every request by the default; a timer
        // and signal per report would cost the generator CPU the servers under test need.
        ...(timeoutMs === this.options.requestTimeoutMs ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
      });
      await response.body.dump();
      const ms = performance.now() - started;
      for (const p of new Set([this.phase, this.everything])) p.latency.record(ms);
      if (response.statusCode === 200) {
        for (const p of new Set([this.phase, this.everything])) {
          p.acked++;
          p.changesAcked += changes;
        }
      } else {
        if (!probe) this.countError(`HTTP ${response.statusCode}`);
      }
      return response.statusCode;
    } catch (error) {
      const e = error as { name?: string; code?: string };
      const timedOut = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
      const kind = timedOut ? 'timeout' : (e.code ?? e.name ?? 'unknown error');
      if (!probe) this.countError(kind);
      return kind;
    } finally {
      this.inFlight--;
    }
  }

  private countError(kind: string): void {
    for (const p of new Set([this.phase, this.everything])) p.errors.set(kind, (p.errors.get(kind) ?? 0) + 1);
  }

  /** Starts the workers; with `limit`, they stop after that many reports in all. */
  start(limit?: number): void {
    this.stopping = false;
    let handedOut = 0;
    const worker = async () => {
      while (!this.stopping && (limit === undefined || handedOut < limit)) {
        handedOut++;
        const { body, changes } = this.stream.next();
        const result = await this.post(body, changes);
        // A refused connection or a 503 comes back at once; do not spin on a server that is down or shedding load.
        if (typeof result === 'string' || result >= 500) await sleep(20);
      }
    };
    this.workers = Array.from({ length: this.options.concurrency }, worker);
  }

  /** Lets each worker finish its current report, then returns. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  /** Starts counting into a fresh phase and returns the one that ends. */
  switchPhase(): Phase {
    const ended = this.phase;
    this.phase = newPhase();
    return ended;
  }

  get current(): Phase {
    return this.phase;
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => this.pool.destroy());
  }
}

function progressReporter(label: string, driver: LoadDriver): { stop(): void; setStage(stage: string): void } {
  const tty = process.stderr.isTTY;
  let stage = 'starting';
  let stageStarted = performance.now();
  let lastAcked = driver.totals.acked;
  let lastErrors = 0;
  const errorCount = () => [...driver.totals.errors.values()].reduce((a, b) => a + b, 0);
  const commonestError = () => [...driver.totals.errors].sort(([, a], [, b]) => b - a)[0]?.[0];
  const timer = setInterval(() => {
    const acked = driver.totals.acked;
    const errors = errorCount();
    const errorText = errors > lastErrors ? `${errors - lastErrors} errors/s (mostly ${commonestError()})` : '0 errors/s';
    const line =
      `[${label}] ${stage} ${((performance.now() - stageStarted) / 1000).toFixed(0).padStart(3)}s` +
      `  ${(acked - lastAcked).toLocaleString('en-US').padStart(7)} acked/s  ${errorText}` +
      `  in flight ${driver.inFlight}  p99 so far ${formatMs(driver.current.latency.percentile(0.99))}`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    lastAcked = acked;
    lastErrors = errors;
  }, 1000);
  return {
    setStage(next) {
      stage = next;
      stageStarted = performance.now();
    },
    stop() {
      clearInterval(timer);
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

/** Posts the first report until it is answered 200: the server is up (and, for the gateway, migrated). */
async function waitUntilReady(server: ServerProcess, driver: LoadDriver, body: Buffer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: number | string = 'no attempt';
  while (Date.now() < deadline) {
    if (server.exitCode !== undefined) throw new Error(`${describeExit(server)}\n  before it answered a report`);
    last = await driver.post(body, 0, { probe: true, timeoutMs: Math.min(5_000, Math.max(100, deadline - Date.now())) });
    if (last === 200) return;
    await sleep(250);
  }
  throw new Error(`${server.label} did not answer a report with 200 within ${timeoutMs / 1000} s (last: ${last})`);
}

function sortedErrors(errors: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...errors].sort(([, a], [, b]) => b - a));
}

/** Readiness, registration of every box, warm-up, then the measured window; the server keeps running. */
async function benchmark(label: string, server: ServerProcess, options: BenchOptions): Promise<RunResult> {
  const fleet = makeFleet(options);
  const probe = Buffer.from(JSON.stringify(fleet[0]?.buildReport()));
  const stream = new ReportStream(fleet, options.changeRate);
  const driver = new LoadDriver(server, stream, options);
  const progress = progressReporter(label, driver);
  try {
    progress.setStage('waiting for first 200');
    await waitUntilReady(server, driver, probe, options.readyTimeoutMs);

    progress.setStage(`registering ${options.boxes} boxes`);
    driver.start(options.boxes);
    await driver.stop();

    progress.setStage('warm-up');
    driver.start();
    await sleep(options.warmupSeconds * 1000);
    driver.switchPhase();
    progress.setStage('measuring');
    const cpuBefore = { server: treeCpuSeconds(server.child.pid), client: process.cpuUsage() };
    const started = performance.now();
    await sleep(options.durationSeconds * 1000);
    const measured = driver.switchPhase();
    const seconds = (performance.now() - started) / 1000;
    const serverAfter = treeCpuSeconds(server.child.pid);
    const client = process.cpuUsage(cpuBefore.client);

    progress.setStage('draining');
    await driver.stop();
    if (server.exitCode !== undefined) throw new Error(describeExit(server));
    return {
      label,
      seconds,
      acked: measured.acked,
      reportsPerSecond: measured.acked / seconds,
      latency: measured.latency.summary(),
      errors: sortedErrors(measured.errors),
      serverCores:
        cpuBefore.server === undefined || serverAfter === undefined ? undefined : (serverAfter.root - cpuBefore.server.root) / seconds,
      childCores:
        cpuBefore.server === undefined || serverAfter === undefined ? undefined : (serverAfter.descendants - cpuBefore.server.descendants) / seconds,
      clientCores: (client.user + client.system) / 1e6 / seconds,
      ackedAllPhases: driver.totals.acked,
      changesAckedAllPhases: driver.totals.changesAcked,
    };
  } finally {
    progress.stop();
    await driver.stop();
    await driver.close();
  }
}

function makeFleet(options: BenchOptions): SimulatedBox[] {
  return createFleet({
    boxes: options.boxes,
    devicesPerBox: options.devices,
    format: options.format,
    seed: options.seed,
    reportPeriodSeconds: 1,
    monitorUrl: 'http://127.0.0.1/',
  });
}

/** Microseconds the generator needs per body, on a fleet of its own, to show it is not the bottleneck. */
function generatorCostMicros(options: BenchOptions): number {
  const stream = new ReportStream(makeFleet({ ...options, boxes: Math.min(options.boxes, 1000) }), options.changeRate);
  let bytes = 0;
  for (let i = 0; i < 5000; i++) bytes += stream.next().body.length; // let the JIT settle first
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < 200) {
    for (let i = 0; i < 1000; i++) bytes += stream.next().body.length;
    n += 1000;
  }
  return bytes > 0 ? ((performance.now() - started) * 1000) / n : 0;
}

// ---------------------------------------------------------------------------------------------
// Durability

interface DurabilityCounts {
  boxes?: number;
  devices?: number;
  statusEvents?: number;
  reportCountSum?: number;
  problems: string[];
}

/** Counts what the gateway stored; each query on its own, so a renamed column loses one figure, not all. */
async function countStoredRows(databaseUrl: string): Promise<DurabilityCounts> {
  const counts: DurabilityCounts = { problems: [] };
  let pg: typeof import('pg').default;
  try {
    pg = (await import('pg')).default;
  } catch {
    counts.problems.push('the pg package is not installed; skipping the durability check');
    return counts;
  }
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    counts.problems.push(`could not connect to ${databaseUrl.replace(/:[^:@/]*@/, ':***@')}: ${(error as Error).message}`);
    return counts;
  }
  const queries: Array<[keyof Omit<DurabilityCounts, 'problems'>, string]> = [
    ['boxes', 'select count(*)::bigint as n from boxes'],
    ['devices', 'select count(*)::bigint as n from devices'],
    ['statusEvents', 'select count(*)::bigint as n from status_events'],
    ['reportCountSum', 'select coalesce(sum(report_count), 0)::bigint as n from boxes'],
  ];
  try {
    for (const [key, sql] of queries) {
      try {
        const result = await client.query<{ n: string | number }>(sql);
        counts[key] = Number(result.rows[0]?.n);
      } catch (error) {
        counts.problems.push(`${sql}: ${(error as Error).message}`);
      }
    }
  } finally {
    await client.end().catch(() => {});
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Report

function describeErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  return entries.length === 0 ? 'none' : entries.map(([kind, n]) => `${kind} ×${n}`).join(', ');
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function printConditions(options: BenchOptions, generatorMicros: number): void {
  const cpus = os.cpus();
  const lines = [
    'fleetgate ingest benchmark',
    `  fleet        ${fmt(options.boxes)} boxes × ${options.devices} devices, ${options.format} format, seed ${options.seed}`,
    `  changes      ${(options.changeRate * 100).toPrecision(3).replace(/\.?0+$/, '')}% of devices change status per report`,
    `  load         ${options.concurrency} requests in flight, each on its own keep-alive connection, boxes round-robin`,
    `  time         ${options.warmupSeconds} s warm-up (after registering every box), ${options.durationSeconds} s measured per server`,
    `  machine      node ${process.version}, ${cpus.length} CPU${cpus.length === 1 ? '' : 's'} (${cpus[0]?.model.trim() ?? 'unknown'}), ${os.platform()} ${os.release()}, loopback`,
    `  generator    ${generatorMicros.toFixed(2)} µs per report body (pre-built bytes, statuses patched in place)`,
    `  node flags   ${GATEWAY_NODE_FLAGS.join(' ') || 'none'} for both servers (as npm start)${options.gatewayNodeArgs.length > 0 ? `; the gateway also ${options.gatewayNodeArgs.join(' ')}` : ''}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

function printResult(result: RunResult): void {
  // Cores, and microseconds of CPU per acknowledged report: what each part costs, beside the rate.
  const cores = (n: number | undefined) =>
    n === undefined ? 'n/a' : `${n.toFixed(2)} cores (${result.reportsPerSecond > 0 ? ((n / result.reportsPerSecond) * 1e6).toFixed(0) : '-'} µs a report)`;
  process.stdout.write(
    [
      `${result.label}`,
      `  sustained    ${fmt(result.reportsPerSecond)} reports/s (${fmt(result.acked)} acknowledged with 200 in ${result.seconds.toFixed(1)} s)`,
      `  latency      p50 ${formatMs(result.latency.p50Ms)}, p99 ${formatMs(result.latency.p99Ms)}, max ${formatMs(result.latency.maxMs)}`,
      `  errors       ${describeErrors(result.errors)}`,
      `  CPU          server ${cores(result.serverCores)}${result.childCores ? `, its Postgres ${cores(result.childCores)}` : ''}, load generator ${cores(result.clientCores)}`,
      ...(result.clientCores >= 0.85
        ? ['  note         the load generator used most of a core: this rate is bounded by the client as much as the server']
        : []),
      '',
      '',
    ].join('\n'),
  );
}

type Durability = 'stored' | 'missing' | 'unknown';

function printDurability(counts: DurabilityCounts, options: BenchOptions, gateway: RunResult, freshDatabase: boolean): Durability {
  const expectBoxes = options.boxes;
  const expectDevices = options.boxes * options.devices;
  const check = (value: number | undefined, expected: number) =>
    value === undefined ? '?' : value >= expected ? (freshDatabase && value !== expected ? '≠' : '✓') : '✗';
  const show = (value: number | undefined) => (value === undefined ? 'n/a' : fmt(value));
  process.stdout.write(
    [
      `durability (queried after the run, before stopping the gateway${freshDatabase ? '' : '; database was not fresh'})`,
      `  boxes          ${show(counts.boxes)} ${check(counts.boxes, expectBoxes)} (${fmt(expectBoxes)} simulated)`,
      `  devices        ${show(counts.devices)} ${check(counts.devices, expectDevices)} (${fmt(expectDevices)} simulated)`,
      `  status_events  ${show(counts.statusEvents)} (device changes in acknowledged reports: ${fmt(gateway.changesAckedAllPhases)};` +
        ` with one first sighting per box and device: ${fmt(gateway.changesAckedAllPhases + expectBoxes + expectDevices)})`,
      `  report_count   ${show(counts.reportCountSum)} summed over boxes (reports acknowledged: ${fmt(gateway.ackedAllPhases)})`,
      ...counts.problems.map((problem) => `  ! ${problem}`),
      '',
    ].join('\n'),
  );
  if (counts.boxes === undefined || counts.devices === undefined) return 'unknown';
  return counts.boxes >= expectBoxes && counts.devices >= expectDevices ? 'stored' : 'missing';
}

// ---------------------------------------------------------------------------------------------
// Main

const cleanups = new Cleanups();

async function runBaseline(options: BenchOptions): Promise<RunResult> {
  const port = await freePort();
  const server = startServer('baseline', 'bench/bare-server.ts', { ...process.env, PORT: String(port), HOST: '127.0.0.1' }, port);
  cleanups.push(() => stopServer(server, 5_000));
  try {
    return await benchmark('baseline: bare node:http server, JSON.parse only (bench/bare-server.ts)', server, options);
  } finally {
    await cleanups.run();
  }
}

async function runGateway(options: BenchOptions): Promise<{ result: RunResult; durable: Durability }> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
  let databaseUrl = process.env.DATABASE_URL;
  const freshDatabase = !databaseUrl;
  if (!databaseUrl) {
    const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-bench-'));
    // As root, the embedded Postgres runs as the `postgres` user, which must be able to enter the folder.
    await fs.chmod(tempDir, 0o777);
    const dataDir = path.join(tempDir, 'postgres');
    const pgPort = await freePort();
    env.FLEETGATE_DATA_DIR = dataDir;
    env.EMBEDDED_PG_PORT = String(pgPort);
    databaseUrl = `postgres://fleetgate:fleetgate@127.0.0.1:${pgPort}/postgres`;
    cleanups.push(async () => {
      await stopLeftoverPostgres(dataDir);
      await fs.rm(tempDir, { recursive: true, force: true });
    });
  }
  const server = startServer('gateway', options.gatewayEntry, env, port, options.gatewayNodeArgs);
  // The gateway drains its batches and stops its embedded Postgres on SIGTERM; give it time.
  cleanups.push(() => stopServer(server, 30_000));
  try {
    const result = await benchmark(`gateway: ${options.gatewayEntry}${freshDatabase ? ', fresh embedded Postgres' : ', DATABASE_URL'}`, server, options);
    printResult(result);
    const counts = await countStoredRows(databaseUrl);
    const durable = printDurability(counts, options, result, freshDatabase);
    return { result, durable };
  } finally {
    await cleanups.run();
  }
}

async function main(): Promise<number> {
  const bench = parseCommandLine(parseOptions, USAGE);
  if (typeof bench === 'number') return bench;

  const hardTimeout = setTimeout(() => abandon(`hard timeout: the benchmark took more than ${bench.hardTimeoutMs / 1000} s`, 1), bench.hardTimeoutMs);
  process.once('SIGINT', () => abandon('interrupted', 130));
  process.once('SIGTERM', () => abandon('terminated', 143));

  printConditions(bench, generatorCostMicros(bench));
  try {
    const baseline = bench.only === 'gateway' ? undefined : await runBaseline(bench);
    if (baseline) printResult(baseline);
    const gateway = bench.only === 'baseline' ? undefined : await runGateway(bench);
    if (baseline && gateway) {
      const share = (gateway.result.reportsPerSecond / baseline.reportsPerSecond) * 100;
      process.stdout.write(`gateway sustained ${share.toFixed(1)}% of the baseline's rate\n`);
    }
    if (gateway?.durable === 'missing') {
      process.stdout.write('FAILED: the gateway acknowledged reports whose boxes or devices are not in the database (see above)\n');
      return 1;
    }
    if (gateway?.durable === 'unknown') {
      process.stdout.write('FAILED: could not verify what the gateway stored (see above)\n');
      return 1;
    }
    process.stdout.write('done; servers stopped, temporary files removed\n');
    return 0;
  } catch (error) {
    process.stdout.write(`FAILED: ${(error as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(hardTimeout);
    await cleanups.run();
  }
}

/** Hard timeout or Ctrl-C: stop what runs, remove temporary files, exit. */
function abandon(reason: string, exitCode: number): void {
  cleanups.abandon(`${reason}; stopping the servers`, exitCode);
}

process.exitCode = await main();
