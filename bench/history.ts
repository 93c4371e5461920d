/**
 * History benchmark: the same fleet seeded with a short and a long history (30 and 365 days by
 * default), and side by side for each: a history page, a page after a cursor, one device's
 * availability over 7 days, fleet availability by day over 30 days, and the ingest rate; then, on the
 * long one, ingest latency while a month's partition is dropped.
 *
 *   npm run bench:history -- [--boxes 1000] [--devices 16] [--lengths 30,365] [--duration 5] [--warmup 1]
 *
 * Each length: an embedded Postgres in a temporary folder, seeded (npm run seed's code), then the
 * gateway as `npm start` runs it (built) in a child process over it, on loopback.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { createPool, migrateDatabase } from '../src/db/connection';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { isPartitioned, listPartitions, monthStart } from '../src/history/partitions';
import { dropPartitionsBefore } from '../src/history/retention';
import { createLogger, type Logger } from '../src/log';
import { fleetSize, refreshOnlineBoxes, seedFleet } from '../tools/seed/fleet';
import { progressBar } from '../tools/seed/progress';
import { Cleanups, UsageError, freePort, numberOption, parseCommandLine, sleep, stderrLine, stopLeftoverPostgres } from './lib/common';
import { data, historyField, loadSchema, measure, mergeLatencies, type Latencies } from './lib/history-queries';
import { describeExit, startServer, stopServer, type ServerProcess } from './lib/server-process';
import { summarize, TimedIngest, type IngestSummary } from './lib/timed-ingest';

const USAGE = `History benchmark: history reads and ingest at a short and a long history, side by side.

Usage: npm run bench:history -- [options]

  --boxes N          boxes of the seeded fleet (default 1000)
  --devices N        devices per box (default 16)
  --lengths A,B      days of history to compare, short then long (default 30,365)
  --duration S       measured seconds per query and for ingest (default 5)
  --warmup S         unmeasured seconds before each (default 1)
  --concurrency N    GraphQL clients (default 4)
  --ingest-boxes N   simulated boxes reporting for the ingest rate (default 200, 16 devices each)
  -h, --help         this text

Targets: each query's p99 at the long history within 1.2x of the short; ingest unchanged within noise;
a month's partition dropped while ingest runs holds no report up more than 50 ms.`;

interface Options {
  boxes: number;
  devices: number;
  lengths: number[];
  duration: number;
  warmup: number;
  concurrency: number;
  ingestBoxes: number;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      boxes: { type: 'string' },
      devices: { type: 'string' },
      lengths: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      'ingest-boxes': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return 'help';
  const lengths = (v.lengths ?? '30,365').split(',').map((d) => numberOption(d.trim(), 'lengths', 30, 1, 3650, true));
  if (lengths.length !== 2) throw new UsageError('--lengths: expected two numbers of days, e.g. 30,365');
  return {
    boxes: numberOption(v.boxes, 'boxes', 1000, 1, 100_000, true),
    devices: numberOption(v.devices, 'devices', 16, 1, 256, true),
    lengths,
    duration: numberOption(v.duration, 'duration', 5, 1, 120),
    warmup: numberOption(v.warmup, 'warmup', 1, 0, 60),
    concurrency: numberOption(v.concurrency, 'concurrency', 4, 1, 256, true),
    ingestBoxes: numberOption(v['ingest-boxes'], 'ingest-boxes', 200, 1, 4096, true),
  };
}

/** The history reads, by label, in the order printed. */
const QUERIES = ['history page (newest 50)', 'history page after a cursor', 'device availability, 7 days', 'fleet availability by DAY, 30 days'] as const;
type QueryName = (typeof QUERIES)[number];

interface Conditions {
  statusEvents: number;
  boxHealthRows: number;
  partitions: string;
  seedSeconds: number;
  loadBefore: number;
  loadAfter: number;
}

interface DropResult {
  dropped: string;
  dropMs: number;
  /** Longest an ingest session was seen waiting on a lock while the drop ran (sampled every 5 ms). */
  longestLockWaitMs: number;
  before: IngestSummary;
  during: IngestSummary;
}

interface LengthResult {
  days: number;
  conditions: Conditions;
  queries: Map<QueryName, Latencies | string>;
  ingest: IngestSummary;
  drop?: DropResult | string;
}

const HISTORY_PAGE = `query HistoryPage($after: String) {
  statusEvents(first: 50, after: $after, orderBy: { field: AT, direction: DESC }) {
    pageInfo { endCursor hasNextPage }
    edges { cursor node { id at fromStatus toStatus } }
  }
}`;

const cleanups = new Cleanups();

async function seed(dataDir: string, pgPort: number, options: Options, days: number, log: Logger): Promise<Omit<Conditions, 'loadBefore' | 'loadAfter'>> {
  const embedded = await startEmbeddedPostgres({ dataDir, port: pgPort, log });
  const pool = createPool(embedded.url, 2, log);
  try {
    await migrateDatabase(pool, log);
    const bar = progressBar(`seed ${days} d`);
    const seeded = await seedFleet(pool, { boxes: options.boxes, devicesPerBox: options.devices, days, seed: 1, reset: true }, bar.update);
    bar.finish(`seeded ${seeded.statusEvents.toLocaleString('en')} status events and ${seeded.boxHealthRows.toLocaleString('en')} health rows in ${(seeded.ms / 1000).toFixed(1)} s`);
    await refreshOnlineBoxes(pool);
    // Now rather than by autovacuum in the middle of a measurement (inserts alone trigger one).
    await pool.query('vacuum analyze boxes, devices, status_events, box_health');
    const client = await pool.connect();
    let partitions: string;
    try {
      const events = (await isPartitioned(client, 'status_events')) ? `${(await listPartitions(client, 'status_events')).length} of status_events` : 'status_events unpartitioned';
      partitions = `${events}, ${(await listPartitions(client, 'box_health')).length} of box_health`;
    } finally {
      client.release();
    }
    return { statusEvents: seeded.statusEvents, boxHealthRows: seeded.boxHealthRows, partitions, seedSeconds: seeded.ms / 1000 };
  } finally {
    await pool.end();
    await embedded.stop();
  }
}

async function startGateway(dataDir: string, pgPort: number): Promise<ServerProcess> {
  const port = await freePort();
  const server = startServer('gateway', 'src/main.ts', {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    FLEETGATE_DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(pgPort),
    LOG_LEVEL: 'warn',
    // The seeded boxes do not report: no offline sweep writing history in the middle of the run.
    OFFLINE_MIN_SECONDS: '86400',
  }, port);
  cleanups.push(() => stopServer(server, 30_000));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (server.exitCode !== undefined) throw new Error(describeExit(server));
    if (await fetch(`${server.origin}/healthz`).then((r) => r.ok, () => false)) return server;
    if (Date.now() > deadline) throw new Error(`the gateway did not answer /healthz within 120 s`);
    await sleep(200);
  }
}

/** The request bodies of each history read, or why it cannot be asked of this gateway. */
async function prepare(client: Pool): Promise<Map<QueryName, string[] | string>> {
  const schema = await loadSchema(client);
  const prepared = new Map<QueryName, string[] | string>();
  prepared.set(QUERIES[0], [JSON.stringify({ query: HISTORY_PAGE, variables: { after: null } })]);
  // Cursors of the first ten pages, newest first.
  const cursors: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < 10; page++) {
    const result: { statusEvents: { pageInfo: { endCursor: string | null; hasNextPage: boolean } } } = await data(client, HISTORY_PAGE, { after });
    if (!result.statusEvents.pageInfo.hasNextPage || !result.statusEvents.pageInfo.endCursor) break;
    after = result.statusEvents.pageInfo.endCursor;
    cursors.push(after);
  }
  prepared.set(QUERIES[1], cursors.map((cursor) => JSON.stringify({ query: HISTORY_PAGE, variables: { after: cursor } })));
  const now = Date.now();
  const device = historyField(schema, 'Device', 'availability', { since: new Date(now - 7 * 86_400_000) });
  if ('missing' in device) prepared.set(QUERIES[2], device.missing);
  else {
    // The same hundred devices at every length: the seed numbers them alike.
    const picked: { devices: { nodes: { id: string }[] } } = await data(client, '{ devices(first: 100) { nodes { id } } }');
    prepared.set(
      QUERIES[2],
      picked.devices.nodes.map((d) => JSON.stringify({ query: `query($id: ID!) { device(id: $id) { id ${device.text} } }`, variables: { id: d.id } })),
    );
  }
  const fleet = historyField(schema, 'Query', 'fleetAvailability', { since: new Date(now - 30 * 86_400_000), bucket: 'DAY' });
  prepared.set(QUERIES[3], 'missing' in fleet ? fleet.missing : [JSON.stringify({ query: `{ ${fleet.text} }` })]);
  return prepared;
}

/** Drops the oldest month of both history tables through the retention code while ingest runs. */
async function measureDrop(ingest: TimedIngest, databaseUrl: string, log: Logger): Promise<DropResult | string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    if (!(await isPartitioned(client, 'status_events'))) return 'n/a: status_events is not partitioned in this version';
    const oldest = (await listPartitions(client, 'status_events'))[0];
    if (!oldest) return 'n/a: status_events has no partition';
    const cutoff = monthStart(oldest.from, 1);
    const steady = 3_000;
    const beforeStart = performance.now();
    await sleep(steady);
    const watcher = new pg.Client({ connectionString: databaseUrl });
    await watcher.connect();
    let longestLockWaitMs = 0;
    let dropping = true;
    const { rows: self } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    // Any other session waiting on a lock (ingest's inserts, the gateway's reads): how long it has waited.
    const watching = (async () => {
      while (dropping) {
        const { rows } = await watcher.query<{ ms: number | null }>(
          `select max(extract(epoch from clock_timestamp() - query_start) * 1000)::float8 as ms from pg_stat_activity
           where wait_event_type = 'Lock' and backend_type = 'client backend' and pid <> $1`,
          [self[0]!.pid],
        );
        longestLockWaitMs = Math.max(longestLockWaitMs, rows[0]?.ms ?? 0);
        await sleep(5);
      }
    })();
    const dropStart = performance.now();
    let dropped: Awaited<ReturnType<typeof dropPartitionsBefore>>;
    try {
      dropped = [
        ...(await dropPartitionsBefore(client, 'status_events', cutoff, log)),
        ...(await dropPartitionsBefore(client, 'box_health', cutoff, log)),
      ];
    } finally {
      dropping = false;
      await watching.catch(() => {});
      await watcher.end();
    }
    const dropEnd = performance.now();
    await sleep(1_000);
    return {
      dropped: dropped.map((d) => `${d.name} (${d.rows.toLocaleString('en')} rows, ${d.ms} ms)`).join(', ') || 'nothing',
      dropMs: dropEnd - dropStart,
      longestLockWaitMs,
      before: summarize(ingest.between(beforeStart, dropStart), (dropStart - beforeStart) / 1000),
      during: summarize(ingest.overlapping(dropStart, dropEnd), Math.max(0.001, (dropEnd - dropStart) / 1000)),
    };
  } finally {
    await client.end();
  }
}

/** A seeded fleet with its own Postgres and gateway, kept running while the other is measured. */
interface Fleet {
  days: number;
  pgPort: number;
  gateway: ServerProcess;
  client: Pool;
  prepared: Map<QueryName, string[] | string>;
  seeded: Omit<Conditions, 'loadBefore' | 'loadAfter'>;
  loadBefore: number;
}

async function openFleet(options: Options, days: number, log: Logger): Promise<Fleet> {
  const temp = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-bench-history-'));
  // As root, the embedded Postgres runs as `postgres`, which must be able to enter the folder.
  await fs.chmod(temp, 0o777);
  const dataDir = path.join(temp, 'postgres');
  cleanups.push(async () => {
    await stopLeftoverPostgres(dataDir);
    await fs.rm(temp, { recursive: true, force: true });
  });
  const pgPort = await freePort();
  const seeded = await seed(dataDir, pgPort, options, days, log);
  const loadBefore = os.loadavg()[0]!;
  const gateway = await startGateway(dataDir, pgPort);
  const client = new Pool(gateway.origin, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  cleanups.push(() => client.close());
  return { days, pgPort, gateway, client, seeded, loadBefore, prepared: await prepare(client) };
}

/**
 * Both fleets are up at once and measured in turn, query by query, in `ROUNDS` rounds whose order
 * alternates (short then long, long then short): the machine's drift over the run falls on both alike,
 * instead of on whichever ran second.
 */
const ROUNDS = 4;

async function measureBoth(options: Options, fleets: [Fleet, Fleet], log: Logger): Promise<[LengthResult, LengthResult]> {
  const queries = fleets.map(() => new Map<QueryName, Latencies[] | string>());
  const rounds = { ...options, duration: options.duration / ROUNDS };
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of QUERIES) {
      for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
        const bodies = fleets[i]!.prepared.get(name)!;
        if (typeof bodies === 'string') queries[i]!.set(name, bodies);
        else {
          stderrLine(`  round ${round + 1}/${ROUNDS}, ${fleets[i]!.days} d: ${name}`);
          const taken = queries[i]!.get(name);
          const measured = await measure(fleets[i]!.client, bodies, { ...rounds, warmup: round === 0 ? options.warmup : 0.2 });
          queries[i]!.set(name, [...(Array.isArray(taken) ? taken : []), measured]);
        }
      }
    }
  }
  // Ingest, in turn the same way: each fleet's gateway gets the same boxes (its own licence keys).
  const ingests = fleets.map((fleet, i) => new TimedIngest(fleet.gateway.origin, { boxes: options.ingestBoxes, devicesPerBox: 16, changeRate: 0.01, seed: 4242 + i }));
  const reports = fleets.map(() => [] as ReturnType<TimedIngest['between']>);
  const seconds = fleets.map(() => 0);
  try {
    for (const ingest of ingests) await ingest.register();
    for (let round = 0; round < 2; round++) {
      for (const i of round === 0 ? [0, 1] : [1, 0]) {
        stderrLine(`  round ${round + 1}/2, ${fleets[i]!.days} d: ingest`);
        ingests[i]!.start();
        await sleep(options.warmup * 1000);
        const from = performance.now();
        await sleep((options.duration / 2) * 1000);
        const to = performance.now();
        reports[i]!.push(...ingests[i]!.between(from, to));
        seconds[i]! += (to - from) / 1000;
        await ingests[i]!.stop();
      }
    }
    stderrLine(`  ${fleets[1].days} d: dropping the oldest month while ingest runs`);
    ingests[1]!.start();
    await sleep(options.warmup * 1000);
    const drop = await measureDrop(ingests[1]!, `postgres://fleetgate:fleetgate@127.0.0.1:${fleets[1].pgPort}/postgres`, log);
    return fleets.map((fleet, i) => ({
      days: fleet.days,
      conditions: { ...fleet.seeded, loadBefore: fleet.loadBefore, loadAfter: os.loadavg()[0]! },
      queries: new Map([...queries[i]!].map(([name, value]) => [name, typeof value === 'string' ? value : mergeLatencies(value)])),
      ingest: summarize(reports[i]!, seconds[i]!),
      drop: i === 1 ? drop : undefined,
    })) as [LengthResult, LengthResult];
  } finally {
    for (const ingest of ingests) await ingest.close();
  }
}

const ms = (n: number) => (Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1));

function printResults(options: Options, short: LengthResult, long: LengthResult): void {
  const cpus = os.cpus();
  const lines = [
    'fleetgate history benchmark',
    `  fleet        ${options.boxes.toLocaleString('en')} boxes x ${options.devices} devices (npm run seed's fleet, seed 1)`,
    ...[short, long].map(
      (r) =>
        `  ${`${r.days} days`.padEnd(12)} ${r.conditions.statusEvents.toLocaleString('en')} status events, ${r.conditions.boxHealthRows.toLocaleString('en')} box health rows;` +
        ` partitions: ${r.conditions.partitions}; seeded in ${r.conditions.seedSeconds.toFixed(0)} s; load average ${r.conditions.loadBefore.toFixed(2)} before, ${r.conditions.loadAfter.toFixed(2)} after`,
    ),
    `  reads        ${options.concurrency} GraphQL clients, ${options.warmup} s warm-up + ${options.duration} s per query and history length, in ${ROUNDS} rounds alternating the two fleets (both up); Cache-Control: no-cache (every request runs)`,
    `  ingest       ${options.ingestBoxes} simulated boxes x 16 devices, 1% change per report, one report in flight per box`,
    `  machine      node ${process.version}, ${cpus.length} CPU${cpus.length === 1 ? '' : 's'} (${cpus[0]?.model.trim() ?? 'unknown'}), shared by Postgres, the gateway and this load generator`,
    '',
  ];
  const header = ['', `${short.days} d p50`, 'p99', `${long.days} d p50`, 'p99', `p99 ${long.days}/${short.days}`, 'target'];
  const rows: string[][] = [];
  for (const name of QUERIES) {
    const a = short.queries.get(name)!;
    const b = long.queries.get(name)!;
    if (typeof a === 'string' || typeof b === 'string') {
      rows.push([name, typeof a === 'string' ? a : `${ms(a.p50)} / ${ms(a.p99)} ms`]);
      continue;
    }
    const ratio = b.p99 / a.p99;
    const errors = a.errors + b.errors > 0 ? ` (${a.errors + b.errors} errors: ${a.firstError ?? b.firstError})` : '';
    rows.push([name, ms(a.p50), ms(a.p99), ms(b.p50), ms(b.p99), `${ratio.toFixed(2)}x`, `${ratio <= 1.2 ? 'met' : 'missed'} (<= 1.2x)${errors}`]);
  }
  const rateRatio = long.ingest.reportsPerSecond / short.ingest.reportsPerSecond;
  rows.push([
    'ingest reports/s',
    Math.round(short.ingest.reportsPerSecond).toLocaleString('en'),
    `p99 ${ms(short.ingest.p99)}`,
    Math.round(long.ingest.reportsPerSecond).toLocaleString('en'),
    `p99 ${ms(long.ingest.p99)}`,
    `${rateRatio.toFixed(2)}x rate`,
    `errors ${short.ingest.errors + long.ingest.errors}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length === header.length).map((r) => r[i]!.length)));
  const format = (cells: string[]) => (cells.length === 2 ? `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]}` : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  console.log([...lines, format(header), ...rows.map(format), ''].join('\n'));
  const drop = long.drop;
  if (typeof drop === 'string' || drop === undefined) console.log(`partition drop during ingest (${long.days} d): ${drop ?? 'not run'}`);
  else {
    const held = drop.during.max - drop.before.p99;
    console.log(
      [
        `partition drop during ingest (${long.days} d): ${drop.dropped}; ${ms(drop.dropMs)} ms in all`,
        `  before   ${drop.before.reports} reports, p99 ${ms(drop.before.p99)} ms, max ${ms(drop.before.max)} ms`,
        `  during   ${drop.during.reports} reports in flight, p99 ${ms(drop.during.p99)} ms, max ${ms(drop.during.max)} ms, errors ${drop.during.errors}`,
        `  locks    longest wait of any other session on a lock meanwhile: ${ms(drop.longestLockWaitMs)} ms (pg_stat_activity, sampled every 5 ms)`,
        `  target   ingest held up no more than 50 ms: ${drop.longestLockWaitMs <= 50 ? 'met' : 'missed'} by the lock waits;` +
          ` max during - p99 before = ${ms(held)} ms (this includes the machine's noise)`,
      ].join('\n'),
    );
  }
}

async function main(): Promise<number> {
  const options = parseCommandLine(parseOptions, USAGE);
  if (typeof options === 'number') return options;
  process.once('SIGINT', () => cleanups.abandon('interrupted; stopping the gateway', 130));
  const log = createLogger('warn');
  try {
    const fleets: [Fleet, Fleet] = [await openFleet(options, options.lengths[0]!, log), await openFleet(options, options.lengths[1]!, log)];
    const [short, long] = await measureBoth(options, fleets, log);
    printResults(options, short, long);
    return 0;
  } catch (error) {
    console.log(`FAILED: ${(error as Error).message}`);
    return 1;
  } finally {
    await cleanups.run();
  }
}

process.exitCode = await main();
