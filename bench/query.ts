/**
 * Query benchmark: latency and throughput of the GraphQL read API over a seeded fleet, as dashboards
 * query it, with one gateway process and concurrent keep-alive clients.
 *
 *   npm run bench:query -- [--boxes 10000] [--devices 16] [--days 30] [--duration 15] [--warmup 3]
 *                          [--concurrency 16] [--data-dir DIR] [--only devices,boxes,summary,history]
 *
 * The gateway runs as `npm start` runs it (same node flags), in a child process with its embedded Postgres in a temporary
 * folder (or --data-dir, kept and reused), seeded first when it does not hold the fleet asked for.
 * Before the queries, two baselines run the same way: `{ __typename }` (HTTP + yoga, no database) and
 * the devices page's SQL sent straight to Postgres (the database's share).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { createPool, migrateDatabase } from '../src/db/connection';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { createLogger } from '../src/log';
import { fleetSize, hasFleet, refreshOnlineBoxes, seedFleet } from '../tools/seed/fleet';
import { progressBar } from '../tools/seed/progress';
import { freePort, postmasterPid } from './lib/common';
import { BENCH_ADMIN_TOKEN, BENCH_GATEWAY_ENV, entryArgs } from './lib/server-process';
import { GATEWAY_NODE_FLAGS } from '../src/node-flags';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `Query benchmark: p50/p99 latency and requests/s of dashboard queries against a seeded fleet.

Usage: npm run bench:query -- [options]

  --boxes N         boxes in the fleet (default 10000)
  --devices N       devices per box (default 16)
  --days N          days of status history (default 30)
  --duration S      measured seconds per query (default 15)
  --warmup S        unmeasured seconds before each (default 3)
  --concurrency N   clients, one keep-alive connection each (default 16)
  --data-dir DIR    embedded Postgres data folder to keep and reuse (default: a temporary one)
  --only LIST       some of: baseline,devices,boxes,summary,history (default all)
  --modes LIST      cached (as clients get them: the gateway's exact response cache on) and/or executed
                    (every request sent with Cache-Control: no-cache, so each one runs) (default both)
  --gateway-node-args=A  node flags for the gateway after npm start's own, space-separated
                    (e.g. --gateway-node-args="--max-semi-space-size=16" for V8's default young generation)
  -h, --help        this text

DATABASE_URL, when set, is used instead of an embedded Postgres; the bench seeds it only when it is empty.`;

const SCENARIOS = ['baseline', 'devices', 'boxes', 'summary', 'history'] as const;
type Scenario = (typeof SCENARIOS)[number];

function parseOptions() {
  const { values } = parseArgs({
    options: {
      boxes: { type: 'string', default: '10000' },
      devices: { type: 'string', default: '16' },
      days: { type: 'string', default: '30' },
      duration: { type: 'string', default: '15' },
      warmup: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '16' },
      'data-dir': { type: 'string' },
      only: { type: 'string', default: SCENARIOS.join(',') },
      modes: { type: 'string', default: 'cached,executed' },
      'gateway-node-args': { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const number = (name: keyof typeof values, min: number) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) {
      console.error(`bench:query: --${name} must be a number of at least ${min}\n\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  const only = values.only!.split(',').map((s) => s.trim());
  for (const name of only) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      console.error(`bench:query: unknown --only entry ${name}; use ${SCENARIOS.join(', ')}`);
      process.exit(2);
    }
  }
  const modes = values.modes!.split(',').map((s) => s.trim());
  if (modes.length === 0 || modes.some((m) => m !== 'cached' && m !== 'executed')) {
    console.error('bench:query: --modes takes cached, executed or both');
    process.exit(2);
  }
  return {
    modes: modes as ('cached' | 'executed')[],
    boxes: number('boxes', 1),
    devices: number('devices', 1),
    days: number('days', 1),
    duration: number('duration', 1),
    warmup: number('warmup', 0),
    concurrency: number('concurrency', 1),
    dataDir: values['data-dir'] ? path.resolve(values['data-dir']) : undefined,
    only: only as Scenario[],
    gatewayNodeArgs: values['gateway-node-args']!.split(' ').filter((arg) => arg !== ''),
  };
}


// ---------------------------------------------------------------------------------------------
// Queries, as a fleet dashboard sends them

const DEVICES_PAGE = `query DevicesByStatus($status: [DeviceStatus!], $after: String) {
  devices(first: 50, after: $after, filter: { status: $status }) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name ip type status statusSince lastSeenAt box { id licenseKey name } } }
  }
}`;

const BOXES_PAGE = `query BoxesWithDevices($after: String) {
  boxes(first: 50, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id licenseKey name status lastReportAt reportPeriodSeconds
        deviceCounts { total online offline unknown }
        devices(first: 20) { edges { node { id name ip type status statusSince } } }
      }
    }
  }
}`;

const FLEET_SUMMARY = `query FleetSummary {
  fleetSummary {
    countedAt
    boxes { total online offline byFormat { format total online offline } }
    devices { total online offline unknown removed byType { type total online offline unknown removed } }
  }
}`;

const DEVICE_HISTORY = `query DeviceHistory($id: ID!, $since: DateTime!) {
  device(id: $id) {
    id name status statusSince
    statusEvents(first: 100, filter: { since: $since }) {
      totalCount
      edges { node { fromStatus toStatus at } }
    }
  }
}`;

interface Request {
  body: string;
}

function request(query: string, variables: Record<string, unknown> = {}): Request {
  return { body: JSON.stringify({ query, variables }) };
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };
const NO_CACHE_HEADERS = { ...HEADERS, 'cache-control': 'no-cache' };

async function post(client: Pool, req: Request, noCache = false): Promise<{ status: number; body: string }> {
  const response = await client.request({ path: '/graphql', method: 'POST', headers: noCache ? NO_CACHE_HEADERS : HEADERS, body: req.body });
  return { status: response.statusCode, body: await response.body.text() };
}

async function data<T>(client: Pool, req: Request): Promise<T> {
  const { status, body } = await post(client, req);
  const parsed = JSON.parse(body) as { data?: T; errors?: unknown };
  if (status !== 200 || parsed.errors || !parsed.data) throw new Error(`query failed (${status}): ${body.slice(0, 500)}`);
  return parsed.data;
}

/** Variables that spread the load over the data: several statuses and pages, many devices. */
async function prepareRequests(client: Pool): Promise<Record<Exclude<Scenario, 'baseline'>, Request[]>> {
  const devices: Request[] = [];
  for (const status of ['OFFLINE', 'ONLINE']) {
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      devices.push(request(DEVICES_PAGE, { status: [status], after }));
      const result: { devices: { pageInfo: { endCursor: string | null; hasNextPage: boolean } } } = await data(
        client,
        request(DEVICES_PAGE, { status: [status], after }),
      );
      if (!result.devices.pageInfo.hasNextPage) break;
      after = result.devices.pageInfo.endCursor;
    }
  }
  const boxes: Request[] = [];
  let after: string | null = null;
  for (let page = 0; page < 20; page++) {
    boxes.push(request(BOXES_PAGE, { after }));
    const result: { boxes: { pageInfo: { endCursor: string | null; hasNextPage: boolean } } } = await data(client, request(BOXES_PAGE, { after }));
    if (!result.boxes.pageInfo.hasNextPage) break;
    after = result.boxes.pageInfo.endCursor;
  }
  const since = new Date(Date.now() - 30 * 86_400_000).toISOString();
  const history: Request[] = [];
  const pick: { devices: { nodes: { id: string }[] } } = await data(
    client,
    request(`{ devices(first: 500, orderBy: { field: NAME }) { nodes { id } } }`),
  );
  for (const { id } of pick.devices.nodes) history.push(request(DEVICE_HISTORY, { id, since }));
  return { devices, boxes, summary: [request(FLEET_SUMMARY)], history };
}

// ---------------------------------------------------------------------------------------------
// Load

interface Result {
  name: string;
  requests: number;
  errors: number;
  seconds: number;
  latencies: Float64Array;
}

const percentile = (sorted: Float64Array, p: number) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!);

async function load(
  name: string,
  send: (i: number) => Promise<boolean>,
  options: { concurrency: number; warmup: number; duration: number },
): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  let counter = 0;
  const worker = async () => {
    while (!stop) {
      const i = counter++;
      const started = performance.now();
      let ok = false;
      try {
        ok = await send(i);
      } catch {
        ok = false;
      }
      if (!measuring) continue;
      latencies.push(performance.now() - started);
      if (!ok) errors++;
    }
  };
  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((r) => setTimeout(r, options.warmup * 1000));
  measuring = true;
  const start = performance.now();
  const ticker = setInterval(() => {
    const elapsed = (performance.now() - start) / 1000;
    const sorted = Float64Array.from(latencies.slice(-5000)).sort();
    process.stderr.write(
      `\r  ${name.padEnd(22)} ${elapsed.toFixed(0).padStart(3)}/${options.duration} s  ${Math.round(latencies.length / elapsed)
        .toLocaleString('en')
        .padStart(7)} req/s  p99 ${percentile(sorted, 0.99).toFixed(1)} ms   `,
    );
  }, 1000);
  await new Promise((r) => setTimeout(r, options.duration * 1000));
  stop = true;
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  const count = latencies.length;
  clearInterval(ticker);
  await Promise.all(workers);
  process.stderr.write('\r'.padEnd(80) + '\r');
  return { name, requests: count, errors, seconds, latencies: Float64Array.from(latencies.slice(0, count)).sort() };
}

function row(result: Result) {
  const { latencies } = result;
  return {
    query: result.name,
    'req/s': Math.round(result.requests / result.seconds),
    p50: percentile(latencies, 0.5),
    p90: percentile(latencies, 0.9),
    p99: percentile(latencies, 0.99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    requests: result.requests,
    errors: result.errors,
  };
}

function printTable(results: Result[]) {
  const rows = results.map(row);
  const header = ['query', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'requests', 'errors'];
  const lines = rows.map((r) => [
    r.query,
    r['req/s'].toLocaleString('en'),
    r.p50.toFixed(2),
    r.p90.toFixed(2),
    r.p99.toFixed(2),
    r.max.toFixed(1),
    r.requests.toLocaleString('en'),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(format(header));
  for (const line of lines) console.log(format(line));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseOptions();
  const log = createLogger('warn');
  const externalUrl = process.env.DATABASE_URL || undefined;
  let dataDir = options.dataDir;
  if (!dataDir) {
    const temp = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-bench-'));
    // When we are root, the embedded server runs as the `postgres` user: it must be able to enter the folder.
    await fs.chmod(temp, 0o777);
    dataDir = path.join(temp, 'postgres');
  }
  const keepDataDir = options.dataDir !== undefined;
  const pgPort = await freePort();
  let gateway: ChildProcess | undefined;
  const cleanup = async () => {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway!.once('exit', r));
      gateway.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    }
    if (!keepDataDir && !externalUrl) await fs.rm(path.dirname(dataDir), { recursive: true, force: true });
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    const pid = externalUrl ? undefined : postmasterPid(dataDir);
    if (pid !== undefined) {
      const alive = (() => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      })();
      if (alive) throw new Error(`${dataDir} is in use by a running Postgres (pid ${pid}); stop it, or pass another --data-dir`);
    }
    // 1. The fleet: seeded unless the database already holds it.
    const embedded = externalUrl ? undefined : await startEmbeddedPostgres({ dataDir, port: pgPort, log });
    const databaseUrl = externalUrl ?? embedded!.url;
    const pool = createPool(databaseUrl, 4, log);
    await migrateDatabase(pool, log);
    const fleet = { boxes: options.boxes, devicesPerBox: options.devices, days: options.days, seed: 1 };
    if (await hasFleet(pool, fleet)) {
      console.error(`fleet already seeded in ${externalUrl ? 'DATABASE_URL' : dataDir}`);
    } else {
      const size = await fleetSize(pool);
      if (externalUrl && size.boxes > 0) throw new Error('DATABASE_URL holds another fleet; seed it with `npm run seed -- --reset ...` first');
      const bar = progressBar('seed');
      const seeded = await seedFleet(pool, { ...fleet, reset: true }, bar.update);
      bar.finish(`seeded ${seeded.boxes} boxes, ${seeded.devices} devices, ${seeded.statusEvents} status events in ${(seeded.ms / 1000).toFixed(1)} s`);
    }
    // The seeded boxes do not report; move their last report to now so the gateway's sweep keeps them online.
    await refreshOnlineBoxes(pool);
    await pool.query('vacuum analyze boxes');
    const size = await fleetSize(pool);
    const { rows: version } = await pool.query('show server_version');
    await pool.end();
    await embedded?.stop();

    // 2. The gateway, in its own process, as `npm start` runs it (built).
    const port = await freePort();
    let output = '';
    gateway = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, ...options.gatewayNodeArgs, ...entryArgs('src/main.ts')], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...BENCH_GATEWAY_ENV,
        PORT: String(port),
        HOST: '127.0.0.1',
        FLEETGATE_DATA_DIR: dataDir,
        EMBEDDED_PG_PORT: String(pgPort),
        LOG_LEVEL: 'warn',
        // Its dashboards ask 50 boxes × 20 devices (cost 13,651): above the default cost limit of 10,000.
        GRAPHQL_MAX_COST: '50000',
        // The seeded boxes do not report: the offline sweep waits a day instead of taking them offline
        // (and writing history) in the middle of the run.
        OFFLINE_MIN_SECONDS: '86400',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.on('data', (d) => (output += d));
    gateway.stderr!.on('data', (d) => (output += d));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (gateway.exitCode !== null) throw new Error(`gateway exited with ${gateway.exitCode}:\n${output}`);
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`gateway did not start in 120 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const client = new Pool(url, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
    const requests = await prepareRequests(client);
    const loadOptions = { concurrency: options.concurrency, warmup: options.warmup, duration: options.duration };
    const results: Result[] = [];
    const loadBefore = os.loadavg()[0]!;

    const rotating = (list: Request[], noCache: boolean) => async (i: number) => (await post(client, list[i % list.length]!, noCache)).status === 200;
    if (options.only.includes('baseline')) {
      const typename = request('{ __typename }');
      results.push(await load('baseline: { __typename }', async () => (await post(client, typename)).status === 200, loadOptions));
      // The devices page's own statement, straight to Postgres: what the database costs without the gateway.
      const direct = new pg.Pool({ connectionString: databaseUrl, max: options.concurrency });
      const statement = {
        name: 'bench_devices_page',
        text: `select d.id, d.box_id, d.external_id, d.name, d.ip, d.type, d.url, d.status, d.status_since,
                 case when d.removed_at is null then b.last_report_at else d.removed_at end as last_seen_at,
                 b.id as b_id, b.license_key, b.name as b_name, b.last_report_at, b.gateway, b.gateway_ext_data
               from devices d join boxes b on b.id = d.box_id
               where b.removed_at is null and d.removed_at is null and d.status = $1
               order by d.id limit 51`,
      };
      const statuses = ['offline', 'online'];
      if (!externalUrl) {
        results.push(
          await load('baseline: SQL devices page', async (i) => {
            await direct.query({ ...statement, values: [statuses[i % 2]] });
            return true;
          }, loadOptions),
        );
      }
      await direct.end();
    }
    const scenarios: [Scenario, string, Request[]][] = [
      ['devices', 'devices page (50, status)', requests.devices],
      ['boxes', 'boxes page (50 x 20 devices)', requests.boxes],
      ['summary', 'fleetSummary', requests.summary],
      ['history', 'device 30-day history', requests.history],
    ];
    for (const mode of options.modes) {
      for (const [scenario, label, list] of scenarios) {
        if (!options.only.includes(scenario)) continue;
        results.push(await load(`${label}${mode === 'executed' ? ' [executed]' : ''}`, rotating(list, mode === 'executed'), loadOptions));
      }
    }
    await client.close();

    const cpus = os.cpus();
    console.log('');
    console.log(
      [
        `fleet: ${size.boxes.toLocaleString('en')} boxes, ${size.devices.toLocaleString('en')} devices, ${size.statusEvents.toLocaleString('en')} status events (${options.days} days)`,
        `gateway: OFFLINE_MIN_SECONDS=86400 (the seeded boxes do not report; no offline sweep during the run); every request with one admin token, rate limits off`,
        `load: ${options.concurrency} concurrent clients (keep-alive, undici), ${options.warmup} s warm-up + ${options.duration} s per query, one gateway process`,
        `machine: ${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, shared by Postgres, the gateway and this load generator`,
        `software: Node ${process.version}, PostgreSQL ${version[0].server_version}${externalUrl ? ' (DATABASE_URL)' : ' (embedded)'}; load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0]!.toFixed(2)} after`,
        `gateway node flags: ${[...GATEWAY_NODE_FLAGS, ...options.gatewayNodeArgs].join(' ') || 'none'}`,
      ].join('\n'),
    );
    console.log('');
    printTable(results);
    const target = results.filter((r) => !r.name.startsWith('baseline') && !r.name.endsWith('[executed]')).map(row);
    const slow = target.filter((r) => r.p99 > 20).map((r) => r.query);
    const devices = target.find((r) => r.query.startsWith('devices page'));
    console.log('');
    console.log('[executed]: every request sent with Cache-Control: no-cache, so the gateway runs it (no response cache).');
    if (target.length > 0) {
      console.log(`target p99 <= 20 ms (as clients get them): ${slow.length === 0 ? 'met' : `missed by ${slow.join(', ')}`}`);
    }
    if (devices) console.log(`target >= 3,000 req/s for the devices page: ${devices['req/s'] >= 3000 ? 'met' : 'missed'} (${devices['req/s'].toLocaleString('en')})`);
    if (results.some((r) => r.errors > 0)) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

await main();
