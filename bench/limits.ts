/**
 * Limits benchmark: from a viewer token, the most expensive GraphQL requests the limits admit and the
 * ones just past them, each sent while a probe measures how long `/healthz` and an ingest report take.
 * It prints, per request, its answer, how long the answer took, and the worst probe latency while it
 * ran (the stall it caused to everyone else), beside the probe's latency with nothing else running.
 * The probe runs in a process of its own, so this process's own work on a request does not delay it.
 *
 *   [GRAPHQL_MAX_COST=… GRAPHQL_MAX_TOKENS=…] npm run bench:limits -- [--boxes 500] [--devices 16] [--repeat 5]
 *
 * The gateway runs as `npm start` runs it, in a child process with a fresh embedded Postgres, with the
 * limits of this environment (default unless set; no rate limits: one address sends everything).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config';
import { Cleanups, freePort, numberOption, parseCommandLine, sleep, stopLeftoverPostgres } from './lib/common';
import { BENCH_ADMIN_TOKEN, describeExit, startServer, stopServer, type ServerProcess } from './lib/server-process';

const USAGE = `Limits benchmark: the worst stall each admitted or refused GraphQL request causes to /healthz and ingest.

Usage: npm run bench:limits -- [options]

  --boxes N    boxes reported before the requests, so the largest page is full (default 500)
  --devices N  devices per box (default 16)
  --repeat N   times each request is sent, one after another (default 5)
  -h, --help   this text`;

interface Options {
  boxes: number;
  devices: number;
  repeat: number;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: { boxes: { type: 'string' }, devices: { type: 'string' }, repeat: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) return 'help';
  return {
    boxes: numberOption(values.boxes, 'boxes', 500, 1, 100_000, true),
    devices: numberOption(values.devices, 'devices', 16, 1, 1_000, true),
    repeat: numberOption(values.repeat, 'repeat', 5, 1, 1_000, true),
  };
}

const cleanups = new Cleanups();
const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000 });

async function send(origin: string, pathname: string, body: string | undefined, headers: Record<string, string>) {
  const started = performance.now();
  const response = await request(`${origin}${pathname}`, { method: body === undefined ? 'GET' : 'POST', body, headers, dispatcher: agent, headersTimeout: 120_000, bodyTimeout: 120_000 });
  const text = await response.body.text();
  return { status: response.statusCode, text, ms: performance.now() - started };
}

function report(licenseKey: string, devices: number, sequence: number) {
  return JSON.stringify({
    mq_license_key: licenseKey,
    media_devices: Array.from({ length: devices }, (_, d) => ({
      media_device_id: `cam-${d}`,
      media_device_name: `camera ${d}`,
      media_device_status: (sequence + d) % 7 === 0 ? 'offline' : 'online',
      media_device_type: 'rtsp',
      media_device_ip: `10.1.${d}.1`,
      media_device_url: `rtsp://10.1.${d}.1:554/live`,
    })),
  });
}

async function graphql(origin: string, token: string, query: string, variables?: unknown) {
  return send(origin, '/graphql', JSON.stringify({ query, variables }), { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` });
}

interface Sample {
  at: number;
  ms: number;
  kind: 'healthz' | 'ingest';
}

/**
 * Latencies of /healthz and of an ingest report, sent back to back (one of each in flight) from a
 * process of its own (this file again, with --probe): the requests sent meanwhile (a 20 MB body, say)
 * must not delay the probe in this process's event loop and be counted as the gateway's stall.
 * Times are milliseconds since the epoch (performance.timeOrigin + now), the same in both processes.
 */
class Probe {
  private readonly child: ChildProcess;
  private samples: Sample[] = [];
  constructor(origin: string, devices: number) {
    this.child = fork(new URL(import.meta.url), ['--probe', origin, String(devices)], { execArgv: ['--import', 'tsx'] });
    this.child.on('message', (batch: Sample[]) => this.samples.push(...batch));
  }

  /** Asks the probe for what it measured so far; resolves once it arrived. */
  async collect(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.child.once('message', () => resolve());
      this.child.send('collect');
    });
  }

  /** The worst latency of each kind among probes that were under way between `from` and `to`. */
  worst(from: number, to: number) {
    const within = this.samples.filter((s) => s.at + s.ms >= from && s.at <= to);
    const max = (kind: string) => Math.max(0, ...within.filter((s) => s.kind === kind).map((s) => s.ms));
    return { healthz: max('healthz'), ingest: max('ingest'), count: within.length };
  }

  quantile(from: number, to: number, kind: 'healthz' | 'ingest', q: number): number {
    const values = this.samples.filter((s) => s.kind === kind && s.at >= from && s.at <= to).map((s) => s.ms).sort((a, b) => a - b);
    return values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;
  }

  async stop(): Promise<void> {
    await this.collect();
    this.child.kill();
  }
}

const now = () => performance.timeOrigin + performance.now();

/** The probe's own loop, in its own process. */
function runProbe(origin: string, devices: number): void {
  let samples: Sample[] = [];
  process.on('message', () => {
    process.send!(samples);
    samples = [];
  });
  const loop = async (kind: 'healthz' | 'ingest') => {
    for (let sequence = 0; ; sequence++) {
      const at = now();
      const answer = kind === 'healthz' ? await send(origin, '/healthz', undefined, {}) : await send(origin, '/DeviceStatus', report('PROBE-BOX', devices, sequence), { 'content-type': 'application/json' });
      if (answer.status !== 200) throw new Error(`probe ${kind} answered ${answer.status}: ${answer.text.slice(0, 200)}`);
      samples.push({ at, ms: now() - at, kind });
      await sleep(kind === 'healthz' ? 5 : 20);
    }
  };
  void loop('healthz');
  void loop('ingest');
}

/** Scalar fields of a type without required arguments, from introspection, that `probe` answers for this token without an error. */
async function scalarFields(origin: string, token: string, type: string, probe: (field: string) => string): Promise<string[]> {
  const answer = await graphql(origin, token, `query($t: String!) { __type(name: $t) { fields { name args { type { kind } } type { kind ofType { kind ofType { kind } } } } } }`, { t: type });
  const fields = JSON.parse(answer.text).data.__type.fields as Array<{ name: string; args: Array<{ type: { kind: string } }>; type: { kind: string; ofType?: { kind: string; ofType?: { kind: string } } } }>;
  const leaf = (t: { kind: string; ofType?: { kind: string; ofType?: { kind: string } } }): boolean => (t.kind === 'NON_NULL' ? leaf(t.ofType!) : t.kind === 'SCALAR' || t.kind === 'ENUM');
  const readable: string[] = [];
  for (const field of fields.filter((f) => leaf(f.type) && f.args.every((a) => a.type.kind !== 'NON_NULL'))) {
    const answer = JSON.parse((await graphql(origin, token, probe(field.name))).text) as { errors?: unknown[] };
    if (!answer.errors) readable.push(field.name);
  }
  return readable;
}

interface Case {
  name: string;
  /** Whether the limits should admit it. */
  admitted: boolean;
  body: () => { query: string; variables?: unknown } | string;
}

function cases(box: string[], device: string[], boxIds: string[], maxCost: number): Case[] {
  const repeat = (text: string, n: number, separator = ' ') => Array.from({ length: n }, () => text).join(separator);
  const fragments = (n: number) => Array.from({ length: n }, (_, i) => `fragment F${i} on Query { fleetSummary { boxes { total } } }`).join(' ');
  const spreads = (n: number) => Array.from({ length: n }, (_, i) => `...F${i}`).join(' ');
  // The widest admitted page: 500 boxes with as many fields as the cost limit lets in, and devices with what is left.
  // Cost: 1 + 500 × (1 + boxFields + [1 + perBox × (1 + deviceFields)]).
  const perRow = Math.floor((maxCost - 1) / 500) - 1;
  const boxFields = box.slice(0, Math.min(box.length, perRow));
  const room = perRow - boxFields.length - 1;
  const perBox = room >= 4 ? Math.min(5, Math.floor(room / 4)) : 0;
  const deviceFields = perBox > 0 ? device.slice(0, Math.max(1, Math.floor(room / perBox) - 1)) : [];
  const widest = `{ boxes(first: 500) { nodes { ${boxFields.join(' ')}${perBox > 0 ? ` devices(first: ${perBox}) { nodes { ${deviceFields.join(' ')} } }` : ''} } } }`;
  const widestName = `widest page: 500 boxes × ${boxFields.length} fields${perBox > 0 ? ` × ${perBox} devices × ${deviceFields.length} fields` : ''}`;
  // The largest pages of devices and of nodes the cost admits: 1 + 500 × (totalCount 1 + nodes 1 + fields + box 3) and 1 + 500 × (1 + fields).
  const pageFields = device.slice(0, Math.floor((maxCost - 1) / 500) - 5);
  const nodeFields = box.slice(0, Math.floor((maxCost - 1) / 500) - 1);
  /** `n` box ids, repeating the fleet's when it has fewer. */
  const idList = (n: number) => Array.from({ length: n }, (_, i) => boxIds[i % boxIds.length]);
  const padTo = (query: string, bytes: number) => `# ${'x'.repeat(Math.max(0, bytes - query.length - 3))}\n${query}`;
  return [
    { name: 'baseline { __typename }', admitted: true, body: () => ({ query: '{ __typename }' }) },
    { name: 'repeated field ×63 (1,953 merge checks)', admitted: true, body: () => ({ query: `{ currentToken { ${repeat('name', 63)} } }` }) },
    { name: 'repeated field ×64 (2,016 merge checks)', admitted: false, body: () => ({ query: `{ currentToken { ${repeat('name', 64)} } }` }) },
    { name: 'repeated field ×1,990 (within the tokens)', admitted: false, body: () => ({ query: `{ currentToken { ${repeat('name', 1_990)} } }` }) },
    { name: 'repeated field ×4,990 (the attack)', admitted: false, body: () => ({ query: `{ currentToken { ${repeat('name', 4_990)} } }` }) },
    { name: 'fragments ×25 spread together', admitted: true, body: () => ({ query: `{ ${spreads(25)} } ${fragments(25)}` }) },
    { name: 'fragments ×120 spread together', admitted: false, body: () => ({ query: `{ ${spreads(120)} } ${fragments(120)}` }) },
    { name: widestName, admitted: true, body: () => ({ query: widest }) },
    { name: 'wide: 500 boxes × 1,900 fields', admitted: false, body: () => ({ query: `{ boxes(first: 500) { nodes { ${repeat('name', 1_900)} } } }` }) },
    { name: 'forbidden field ×500 (500 errors)', admitted: true, body: () => ({ query: '{ devices(first: 500) { nodes { url } } }' }) },
    { name: `largest page: 500 devices × ${pageFields.length} fields + box`, admitted: true, body: () => ({ query: `{ devices(first: 500) { totalCount nodes { ${pageFields.join(' ')} box { name licenseKey } } } }` }) },
    { name: `nodes(ids:) ×500 × ${nodeFields.length} fields`, admitted: true, body: () => ({ query: `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Box { ${nodeFields.join(' ')} } } }`, variables: { ids: idList(500) } }) },
    { name: 'nodes(ids:) ×501', admitted: false, body: () => ({ query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, variables: { ids: idList(501) } }) },
    { name: 'nodes(ids:) ×200,000 (the attack)', admitted: false, body: () => ({ query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, variables: { ids: idList(200_000) } }) },
    { name: 'tokens ×1,997 (unused variables)', admitted: true, body: () => ({ query: `query(${Array.from({ length: 498 }, (_, i) => `$v${i}: Int`).join(' ')}) { __typename }` }) },
    { name: 'tokens ×2,005', admitted: false, body: () => ({ query: `query(${Array.from({ length: 500 }, (_, i) => `$v${i}: Int`).join(' ')}) { __typename }` }) },
    { name: 'document of 64 KiB (a comment)', admitted: true, body: () => ({ query: padTo('{ __typename }', 65_536 - 10) }) },
    { name: 'document of 2 MB (a comment, the attack)', admitted: false, body: () => ({ query: padTo('{ __typename }', 2_000_000) }) },
    { name: 'body of 20 MB (variables)', admitted: false, body: () => JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(20_000_000) } }) },
  ];
}

function outcome(status: number, text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ extensions?: { code?: string } }> };
    if (body.errors?.length) return `${status} ${body.errors[0]!.extensions?.code ?? 'error'}`;
  } catch {
    return status === 0 ? 'closed while sending' : `${status} (not JSON)`;
  }
  return `${status} data`;
}

async function main(): Promise<number> {
  const options = parseCommandLine(parseOptions, USAGE);
  if (typeof options === 'number') return options;
  const port = await freePort();
  const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-bench-limits-'));
  await fs.chmod(tempDir, 0o777); // the embedded Postgres runs as `postgres` when we are root
  const dataDir = path.join(tempDir, 'postgres');
  cleanups.push(async () => {
    await stopLeftoverPostgres(dataDir);
    await fs.rm(tempDir, { recursive: true, force: true });
  });
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', FLEETGATE_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()) };
  delete env.DATABASE_URL;
  const server: ServerProcess = startServer('gateway', 'src/main.ts', env, port);
  cleanups.push(() => stopServer(server, 30_000));
  process.once('SIGINT', () => cleanups.abandon('interrupted', 130));
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (server.exitCode !== undefined) throw new Error(describeExit(server));
      const ready = await send(server.origin, '/readyz', undefined, {}).catch(() => undefined);
      if (ready?.status === 200) break;
      if (Date.now() > deadline) throw new Error('the gateway was not ready within 120 s');
      await sleep(200);
    }
    process.stderr.write(`reporting ${options.boxes} boxes × ${options.devices} devices…\n`);
    for (let i = 0; i < options.boxes; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, options.boxes - i) }, (_, j) => send(server.origin, '/DeviceStatus', report(`LIMITS-${i + j}`, options.devices, 0), { 'content-type': 'application/json' })));
    }
    const created = await graphql(server.origin, BENCH_ADMIN_TOKEN, `mutation { createApiToken(name: "bench viewer", role: VIEWER) { ... on CreateApiTokenSuccess { token } } }`);
    const viewer = JSON.parse(created.text).data.createApiToken.token as string;
    // The fields a viewer may read: the admitted requests are the most expensive a viewer can make succeed.
    const box = await scalarFields(server.origin, viewer, 'Box', (field) => `{ boxes(first: 1) { nodes { ${field} } } }`);
    const device = await scalarFields(server.origin, viewer, 'Device', (field) => `{ devices(first: 1) { nodes { ${field} } } }`);
    const ids = JSON.parse((await graphql(server.origin, viewer, '{ boxes(first: 500) { nodes { id } } }')).text).data.boxes.nodes.map((n: { id: string }) => n.id) as string[];

    const probe = new Probe(server.origin, options.devices);
    await sleep(3_000); // the quiet baseline, measured in this run
    await probe.collect();
    const quietTo = now();
    const quiet = { healthz: probe.quantile(0, quietTo, 'healthz', 0.99), ingest: probe.quantile(0, quietTo, 'ingest', 0.99), worst: probe.worst(0, quietTo) };

    const rows: string[][] = [];
    for (const item of cases(box, device, ids, loadConfig(process.env).graphqlMaxCost)) {
      const payload = item.body();
      const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
      let worstAnswer = 0;
      const answers = new Set<string>();
      let worst = { healthz: 0, ingest: 0 };
      // Each send's own worst /healthz: their median tells a stall every send causes from one-off noise.
      const healthzPerSend: number[] = [];
      for (let i = 0; i < options.repeat; i++) {
        const from = now();
        const answer = await send(server.origin, '/graphql', body, { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${viewer}` }).catch((error: Error) => ({ status: 0, text: `connection closed: ${error.message}`, ms: now() - from }));
        await sleep(30); // let probes that were waiting behind it finish and be counted
        await probe.collect();
        const stalled = probe.worst(from, now());
        worst = { healthz: Math.max(worst.healthz, stalled.healthz), ingest: Math.max(worst.ingest, stalled.ingest) };
        healthzPerSend.push(stalled.healthz);
        worstAnswer = Math.max(worstAnswer, answer.ms);
        answers.add(outcome(answer.status, answer.text));
      }
      const expected = item.admitted ? 'admitted' : 'refused';
      const got = [...answers].join(', ');
      const ok = item.admitted ? [...answers].every((a) => /data|GRAPHQL_VALIDATION_FAILED|FORBIDDEN/.test(a)) : [...answers].every((a) => !a.endsWith('data'));
      const typical = healthzPerSend.sort((a, b) => a - b)[Math.floor((healthzPerSend.length - 1) / 2)]!;
      rows.push([item.name, `${expected}${ok ? '' : ' (NOT AS EXPECTED)'}`, got, worstAnswer.toFixed(1), worst.healthz.toFixed(1), typical.toFixed(1), worst.ingest.toFixed(1)]);
    }
    await probe.stop();

    const header = ['request (viewer token)', 'limits', 'answer', 'answer ms (worst)', 'healthz ms (worst)', 'healthz ms (median)', 'ingest ms (worst)'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
    const limits = loadConfig(process.env);
    console.log(`\nConditions: one gateway as npm start runs it (GRAPHQL_MAX_TOKENS ${limits.graphqlMaxTokens}, GRAPHQL_MAX_COST ${limits.graphqlMaxCost}, other limits as configured), fresh embedded Postgres, ${options.boxes} boxes × ${options.devices} devices; each request sent ${options.repeat} times in a row;`);
    console.log(`a probe sends GET /healthz every 5 ms and an ingest report every 20 ms throughout (one of each in flight, from a process of its own). Node ${process.version}, ${os.cpus().length} cores.`);
    console.log(`Quiet baseline (same run, nothing else sent): healthz p99 ${quiet.healthz.toFixed(1)} ms, worst ${quiet.worst.healthz.toFixed(1)} ms; ingest p99 ${quiet.ingest.toFixed(1)} ms, worst ${quiet.worst.ingest.toFixed(1)} ms.\n`);
    console.log(line(header));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const row of rows) console.log(line(row));
    const stall = Math.max(...rows.map((r) => Math.max(Number(r[4]), Number(r[6]))));
    const typicalStall = Math.max(...rows.map((r) => Number(r[5])));
    const refusal = Math.max(...rows.filter((r) => r[1]!.startsWith('refused')).map((r) => Number(r[3])));
    console.log(`\nWorst stall of /healthz or ingest while any of these ran: ${stall.toFixed(1)} ms (quiet worst ${Math.max(quiet.worst.healthz, quiet.worst.ingest).toFixed(1)} ms); largest median /healthz stall: ${typicalStall.toFixed(1)} ms; slowest refusal: ${refusal.toFixed(1)} ms.`);
    return rows.some((r) => r[1]!.includes('NOT AS EXPECTED')) ? 1 : 0;
  } finally {
    await cleanups.run();
    await agent.close();
  }
}

if (process.argv[2] !== '--probe') {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`bench:limits failed: ${(error as Error).stack ?? String(error)}\n`);
      void cleanups.run().finally(() => process.exit(1));
    },
  );
} else {
  runProbe(process.argv[3]!, Number(process.argv[4]));
}
