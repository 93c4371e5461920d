// `npm run bench:partition-upgrade -- [--rows 2000000] [--boxes 40]`: how long partitioning an existing
// status history takes (the upgrade across migration 0007) and what ingest does meanwhile.
//
// A database at migration 0006 gets --rows events over 30 days; a gateway (in this process) starts on
// it and partitions the history in the background while --boxes boxes report without pause, each report
// a status change. Printed: the copy's time and rate, how long the final swap held ingest, and ingest's
// latency during the copy, around the swap, and after it (the same-run baseline).
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { buildApp } from '../src/app';
import { loadConfig, NO_LIMITS_ENV } from '../src/config';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { createLogger } from '../src/log';
import { freePort, numberOption, parseCommandLine, stderrLine } from './lib/common';
import { fillOldHistory, migrateBefore } from './lib/old-schema';

const USAGE = 'usage: npm run bench:partition-upgrade -- [--rows 2000000] [--boxes 40] [--after-seconds 10]';

const options = parseCommandLine((argv) => {
  const { values } = parseArgs({ args: argv, options: { rows: { type: 'string' }, boxes: { type: 'string' }, 'after-seconds': { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) return 'help';
  return {
    rows: numberOption(values.rows, 'rows', 2_000_000, 1000, 50_000_000, true),
    boxes: numberOption(values.boxes, 'boxes', 40, 1, 1000, true),
    afterSeconds: numberOption(values['after-seconds'], 'after-seconds', 10, 1, 600),
  };
}, USAGE);
if (typeof options === 'number') process.exit(options);

interface Sample {
  at: number;
  ms: number;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function describe(label: string, samples: Sample[], seconds: number): string {
  const ms = samples.map((s) => s.ms);
  const rate = samples.length / Math.max(seconds, 0.001);
  return `${label.padEnd(22)} ${String(samples.length).padStart(6)} reports  ${rate.toFixed(0).padStart(5)}/s  p50 ${percentile(ms, 50).toFixed(1).padStart(6)} ms  p99 ${percentile(ms, 99).toFixed(1).padStart(6)} ms  max ${Math.max(0, ...ms).toFixed(1).padStart(6)} ms`;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'fleetgate-bench-upgrade-'));
await chmod(dir, 0o777); // the embedded server runs as `postgres` when this runs as root
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port: await freePort(), log: createLogger('warn') });
try {
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query('create database upgrade_bench');
  await admin.end();
  const url = new URL(postgres.url);
  url.pathname = '/upgrade_bench';
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  await migrateBefore(db, 7);
  let started = Date.now();
  stderrLine(`filling ${options.rows.toLocaleString('en')} events at migration 0006 ...`);
  await fillOldHistory(db, { boxes: 1000, devicesPerBox: 16, rows: options.rows, days: 30 });
  await db.query('analyze');
  stderrLine(`filled in ${((Date.now() - started) / 1000).toFixed(1)} s; starting the gateway`);

  // The gateway's log, read for the upgrade's progress and its end.
  const entries: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        const entry = JSON.parse(line);
        entries.push(entry);
        if (entry.msg === 'partitioning the status history') stderrLine(`  copied ${entry.copied.toLocaleString('en')} of ${entry.of.toLocaleString('en')} (${entry.percent}%), ETA ${entry.etaSeconds} s`);
      }
      done();
    },
  });
  const config = loadConfig(NO_LIMITS_ENV, { port: 0, host: '127.0.0.1', databaseUrl: url.toString(), adminToken: `fgt_${'b'.repeat(43)}` });
  const app = buildApp(config, createLogger('info', sink));
  started = Date.now();
  await app.start();
  const servingAfterMs = Date.now() - started;

  // Boxes report without pause, each report a change of one device.
  const samples: Sample[] = [];
  let running = true;
  let failures = 0;
  const box = async (n: number) => {
    for (let i = 0; running; i++) {
      const body = JSON.stringify({ mq_license_key: `UPGRADE-BENCH-${n}`, media_devices: [{ media_device_id: 'door', media_device_status: i % 2 ? 'offline' : 'online', media_device_type: 'rtsp' }] });
      const t0 = performance.now();
      const response = await fetch(`${app.url}/DeviceStatus`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await response.arrayBuffer();
      if (response.status === 200) samples.push({ at: Date.now(), ms: performance.now() - t0 });
      else failures++;
    }
  };
  const load = Array.from({ length: options.boxes }, (_, n) => box(n));
  let done: Record<string, any> | undefined;
  while (!(done = entries.find((e) => e.msg === 'status history partitioned by month'))) await new Promise((r) => setTimeout(r, 100));
  const doneAt = Date.now();
  await new Promise((r) => setTimeout(r, options.afterSeconds * 1000));
  running = false;
  await Promise.all(load);
  await app.stop();
  await db.end();

  const swapEnd = doneAt;
  const swapStart = swapEnd - done.swapLockWaitMs - done.swapHeldMs;
  const copy = samples.filter((s) => s.at < swapStart);
  const aroundSwap = samples.filter((s) => s.at >= swapStart - 1000 && s.at <= swapEnd + 1000);
  const after = samples.filter((s) => s.at > swapEnd + 1000);
  console.log(`partitioning ${options.rows.toLocaleString('en')} status events (1,000 boxes x 16 devices, 30 days) while ${options.boxes} boxes report without pause`);
  console.log(`conditions: embedded Postgres 17, ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(2)}, gateway in this process`);
  console.log(`the gateway served ${servingAfterMs} ms after start; the copy and swap took ${(done.ms / 1000).toFixed(1)} s (${Math.round(done.rows / (done.ms / 1000)).toLocaleString('en')} rows/s); the swap waited ${done.swapLockWaitMs} ms for its locks, then held ingest ${done.swapHeldMs} ms`);
  console.log(describe('ingest during the copy', copy, (swapStart - started - servingAfterMs) / 1000));
  console.log(describe('ingest ±1 s of the swap', aroundSwap, 2 + (swapEnd - swapStart) / 1000));
  console.log(describe('ingest after (baseline)', after, options.afterSeconds - 1));
  console.log(`reports refused: ${failures}`);
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
