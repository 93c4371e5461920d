/**
 * Live-delivery benchmark (issue 4): websocket subscribers on a gateway while status changes are
 * ingested at a steady rate; the delay from each ingest's 200 to each subscriber's receipt, the
 * deliveries lost, and the gateway's memory and CPU. First one gateway process, then two replicas
 * sharing one Postgres, with the reports going to replica A only.
 *
 *   npm run bench:live -- [--subscribers 5000] [--boxes 500] [--watch-all 50] [--interval-ms 10]
 *                         [--duration 30] [--single-only | --replicas-only] [--connections-per-process 2500]
 *
 * The gateways, the subscriber processes and this process (the ingest driver) are separate processes
 * on loopback, so no load generator's event loop sits inside a measured delay. See `--help`.
 *
 * How a receipt is matched to its change: each report flips exactly one device, and the ingest answer
 * carries no event id, so after the run the stored events (`status_events`, id order) are paired with
 * the flips of the same (box, device) in the order they were posted, checking `to_status`. A subscriber
 * records only the event id (from `StatusEvent.id`) and the time, taken before parsing the message;
 * the join happens here. Both times come from CLOCK_MONOTONIC (`process.hrtime`), one clock for every
 * process on the machine. A subscription counts as registered once it has received a change: measuring
 * starts after a warm-up round that reaches every subscriber.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { createFleet, type SimulatedBox } from '../tools/simulator/fleet';
import { formatMs, LatencyHistogram, type LatencySummary } from '../tools/simulator/latency';
import { BareBroadcastServer, type BareSend } from './lib/bare-broadcast';
import { checkReplay, historyPositions, replayDepth, statusEventNumber, type ReplayCheck } from './lib/live-replay';
import { Cleanups, UsageError, freePort, numberOption, parseCommandLine, postmasterPid, settlesWithin, sleep, stderrLine, stopLeftoverPostgres } from './lib/common';
import { BENCH_ADMIN_TOKEN, describeExit, startServer, stopServer, type ServerProcess } from './lib/server-process';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const THIS_FILE = fileURLToPath(import.meta.url);
/** Set on the subscriber processes this benchmark forks from its own file. */
const SUBSCRIBER_ROLE_ENV = 'FLEETGATE_BENCH_LIVE_SUBSCRIBERS';

const USAGE = `Live-delivery benchmark: websocket subscribers, a status change ingested every few ms.

Usage: npm run bench:live -- [options]

  --subscribers N              websocket connections, one subscription each (default 5000)
  --boxes N                    boxes in the fleet; changes go round-robin over them (default 500)
  --devices N                  devices per box; a box's changes cycle through them (default 4)
  --watch-all N                subscribers watching every device event (no filter); the others
                               watch one box each, spread evenly over the boxes (default 50)
  --interval-ms MS             one status change ingested every MS (default 10, i.e. 100/s)
  --duration S                 measured seconds per section (default 30)
  --quiet-duration S           per section, before its subscribers connect: seconds of the same ingest
                               (same rate, fleet and gateway) with no subscriber, the quiet baseline
                               its ingest latency is judged against (default 10)
  --broadcast-subscribers N    the broadcast section: N websocket subscribers, none filtered
                               (default 10000)
  --broadcast-interval-ms MS   its pace: one change every MS (default 1000)
  --broadcast-duration S       its measured seconds; 0 skips it and its bare-websocket baseline: the
                               same subscribers on a bare \`ws\` server (no GraphQL, no database) that
                               sends a message of the same size at the same pace (default 10)
  --replay-clients N           the replay storm: N websocket clients subscribe at once to
                               statusEvents(after: cursor), while changes go on at --interval-ms;
                               0 skips it (default 1000)
  --replay-events N            how far back their cursors are: N stored events, spread over
                               ±--replay-window events between clients (default 1000)
  --replay-window N            (default 50)
  --replay-interval-ms MS      the storm's ingest (and its quiet baseline): one change every MS
                               (default 100; at 10, the live traffic alone to 1,000 unfiltered
                               clients is 100,000 messages/s, beyond one process on two cores)
  --replay-duration S          least seconds of ingest during the storm; it goes on until every client
                               has replayed, within --ready-timeout (default 10)
  --single-only                only the one-process sections
  --replicas-only              only the two-replica section
  --connections-per-process N  subscriber connections per subscriber process (default 2500)
  --drain S                    longest wait for late deliveries after the last change (default 10)
  --seed N                     seed of the fleet (default 1)
  --profile                    run the gateways with --cpu-prof; profiles are kept in a temp folder
  --gateway-node-options=OPTS  extra node options for the gateways, e.g.
                               --gateway-node-options="--max-semi-space-size=64"
  --gateway-entry FILE         the gateway's entry point (default src/main.ts)
  --ready-timeout S            seconds for a gateway to start, and for subscribers to connect (default 120)
  --hard-timeout S             the whole benchmark stops after this (default: a generous bound)
  -h, --help                   this text

Environment: DATABASE_URL makes the gateways use that database instead of a fresh embedded Postgres.`;

interface BenchOptions {
  subscribers: number;
  boxes: number;
  devices: number;
  watchAll: number;
  intervalMs: number;
  durationSeconds: number;
  quietDurationSeconds: number;
  broadcastSubscribers: number;
  broadcastIntervalMs: number;
  broadcastDurationSeconds: number;
  replayClients: number;
  replayEvents: number;
  replayWindow: number;
  replayDurationSeconds: number;
  replayIntervalMs: number;
  single: boolean;
  replicas: boolean;
  connectionsPerProcess: number;
  drainMs: number;
  seed: number;
  profile: boolean;
  /** Extra node options for the gateway processes (GC tuning experiments). */
  gatewayNodeOptions: string[];
  gatewayEntry: string;
  readyTimeoutMs: number;
  hardTimeoutMs: number;
}



function parseOptions(argv: string[]): BenchOptions | 'help' {
  const stringOption = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      subscribers: stringOption,
      boxes: stringOption,
      devices: stringOption,
      'watch-all': stringOption,
      'interval-ms': stringOption,
      duration: stringOption,
      'quiet-duration': stringOption,
      'broadcast-subscribers': stringOption,
      'broadcast-interval-ms': stringOption,
      'replay-clients': stringOption,
      'replay-events': stringOption,
      'replay-window': stringOption,
      'replay-duration': stringOption,
      'replay-interval-ms': stringOption,
      'broadcast-duration': stringOption,
      'single-only': { type: 'boolean', default: false },
      'replicas-only': { type: 'boolean', default: false },
      'connections-per-process': stringOption,
      drain: stringOption,
      seed: stringOption,
      profile: { type: 'boolean', default: false },
      'gateway-node-options': stringOption,
      'gateway-entry': stringOption,
      'ready-timeout': stringOption,
      'hard-timeout': stringOption,
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) return 'help';
  if (Number(v['replay-window'] ?? 50) >= Number(v['replay-events'] ?? 1000)) throw new UsageError('--replay-window must be less than --replay-events');
  if (v['single-only'] && v['replicas-only']) throw new UsageError('--single-only and --replicas-only exclude each other');
  const subscribers = numberOption(v.subscribers, 'subscribers', 5000, 1, 100_000, true);
  const watchAll = numberOption(v['watch-all'], 'watch-all', Math.min(50, subscribers), 0, subscribers, true);
  const durationSeconds = numberOption(v.duration, 'duration', 30, 1, 3600);
  const broadcastDurationSeconds = numberOption(v['broadcast-duration'], 'broadcast-duration', 10, 0, 3600);
  const quietDurationSeconds = numberOption(v['quiet-duration'], 'quiet-duration', 10, 1, 3600);
  const replayDurationSeconds = numberOption(v['replay-duration'], 'replay-duration', 10, 1, 3600);
  const replayIntervalMs = numberOption(v['replay-interval-ms'], 'replay-interval-ms', 100, 1, 60_000);
  const replayClients = numberOption(v['replay-clients'], 'replay-clients', 1000, 0, 100_000, true);
  const readyTimeoutMs = numberOption(v['ready-timeout'], 'ready-timeout', 120, 1, 3600) * 1000;
  const drainMs = numberOption(v.drain, 'drain', 10, 1, 600) * 1000;
  // Per section: gateway start, subscribers connecting, warm-up, measuring, drain, shutdown.
  const section = (seconds: number) => readyTimeoutMs / 1000 + 60 + quietDurationSeconds + seconds * 2 + drainMs / 1000 + 60;
  // The storm: filling the table, then its measured part, which may go on for up to --ready-timeout.
  const storm = replayClients > 0 ? section(replayDurationSeconds) + readyTimeoutMs / 1000 + 120 : 0;
  const generous = 2 * (section(durationSeconds) * 2 + section(broadcastDurationSeconds) + storm + 120);
  const boxes = numberOption(v.boxes, 'boxes', 500, 1, 100_000, true);
  return {
    subscribers,
    boxes,
    devices: numberOption(v.devices, 'devices', 4, 1, 256, true),
    watchAll,
    intervalMs: numberOption(v['interval-ms'], 'interval-ms', 10, 1, 60_000),
    durationSeconds,
    quietDurationSeconds,
    broadcastSubscribers: numberOption(v['broadcast-subscribers'], 'broadcast-subscribers', 10_000, 1, 100_000, true),
    broadcastIntervalMs: numberOption(v['broadcast-interval-ms'], 'broadcast-interval-ms', 1000, 1, 60_000),
    broadcastDurationSeconds,
    replayClients,
    replayEvents: numberOption(v['replay-events'], 'replay-events', 1000, 1, 1_000_000, true),
    replayWindow: numberOption(v['replay-window'], 'replay-window', 50, 0, 100_000, true),
    replayDurationSeconds,
    replayIntervalMs,
    single: !v['replicas-only'],
    replicas: !v['single-only'],
    connectionsPerProcess: numberOption(v['connections-per-process'], 'connections-per-process', 2500, 1, 100_000, true),
    drainMs,
    seed: numberOption(v.seed, 'seed', 1, 0, 2 ** 32 - 1, true),
    profile: v.profile,
    gatewayNodeOptions: (v['gateway-node-options'] ?? '').split(/\s+/).filter(Boolean),
    gatewayEntry: v['gateway-entry'] ?? 'src/main.ts',
    readyTimeoutMs,
    hardTimeoutMs: numberOption(v['hard-timeout'], 'hard-timeout', Math.ceil(generous), 1, 86_400) * 1000,
  };
}

// ---------------------------------------------------------------------------------------------
// Shared by both roles

/**
 * Milliseconds on CLOCK_MONOTONIC (what `process.hrtime` reads on Linux). It is one clock for every
 * process on the machine, so a time taken here and one taken in a subscriber process subtract exactly;
 * `performance.now()` would not (each process counts from its own start).
 */
function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}



/** What dashboards select on a live change: the change, its box and its device. */
const EVENT_SELECTION = 'id cursor fromStatus toStatus at box { id licenseKey status } device { id externalId name type status }';
const QUERY_ONE_BOX = `subscription OneBox($boxes: [ID!]) { deviceStatusChanged(filter: { boxes: $boxes }) { ${EVENT_SELECTION} } }`;
const QUERY_EVERYTHING = `subscription Everything { deviceStatusChanged { ${EVENT_SELECTION} } }`;
/** The replay storm's: every event stored after the cursor, then the live ones. */
const QUERY_REPLAY = `subscription Replay($after: String) { statusEvents(after: $after) { ${EVENT_SELECTION} } }`;

/** One subscriber, as handed to a subscriber process. */
interface SubscriberSpec {
  /** Index over the whole section; receipts are reported against it. */
  index: number;
  url: string;
  /** Global id of the one box watched; absent: watches every device event. */
  box?: string;
  /** A StatusEvent cursor: subscribes to statusEvents(after:) instead (the replay storm). */
  after?: string;
  /** With `after`: the newest event stored when the storm began; its receipt ends the client's replay. */
  replayUntil?: number;
}

type ToSubscribers = { type: 'start'; subscribers: SubscriberSpec[]; handshakes: number } | { type: 'collect' } | { type: 'close' };

interface SubscriberProgress {
  type: 'progress';
  /** Connections acknowledged (connection_ack) and sent their subscribe message. */
  subscribed: number;
  /** Subscribers that have received at least one event. */
  withEvent: number;
  /** Replay clients that have received their `replayUntil` event. */
  replayed: number;
  received: number;
  /** Close codes of connections the server (or the network) closed, with counts. */
  closes: Record<string, number>;
  /** Socket errors (refused, reset, ...) by code. */
  socketErrors: Record<string, number>;
  /** `error` messages for a subscription (a refused operation), and the last one's text. */
  operationErrors: number;
  lastOperationError?: string;
  completes: number;
  /** Every subscriber was handed to a socket and sent its subscribe message, or failed. */
  settled: boolean;
}

interface SubscriberReceipts {
  type: 'receipts';
  subscriber: Int32Array;
  event: Float64Array;
  at: Float64Array;
  /** When each of this process's subscribers (by its index, in order) sent its subscribe message; NaN if never. */
  subscriberIndex: Int32Array;
  subscribedAt: Float64Array;
  /** How each subscription ended, parallel to `subscriberIndex`: see SUBSCRIPTION_END. */
  ended: Uint8Array;
}

/** How a subscription ended, as a subscriber process records it (0: it did not). */
const SUBSCRIPTION_END = { open: 0, error: 1, complete: 2, closed: 3 } as const;

type FromSubscribers = SubscriberProgress | SubscriberReceipts;

// ---------------------------------------------------------------------------------------------
// Subscriber process: raw graphql-transport-ws over `ws`, as little work per message as possible

/**
 * Speaks graphql-transport-ws directly (connection_init -> connection_ack -> subscribe -> next...):
 * the graphql-ws client's per-message bookkeeping costs more CPU than 2,500 sockets per process can
 * spare on a small machine. Each message is timed before it is parsed.
 */
const CONNECTION_INIT = JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } });

function runSubscriberProcess(): void {
  const send = (message: FromSubscribers) => process.send?.(message);
  const receiptSubscriber: number[] = [];
  const receiptEvent: number[] = [];
  const receiptAt: number[] = [];
  const sockets: WebSocket[] = [];
  let closing = false;
  let specs: SubscriberSpec[] = [];
  let gotEvent = new Uint8Array(0);
  let subscribedAt = new Float64Array(0);
  let ended = new Uint8Array(0);
  const end = (local: number, how: number) => {
    if (ended[local] === SUBSCRIPTION_END.open) ended[local] = how;
  };
  const progress: SubscriberProgress = {
    type: 'progress',
    subscribed: 0,
    withEvent: 0,
    replayed: 0,
    received: 0,
    closes: {},
    socketErrors: {},
    operationErrors: 0,
    completes: 0,
    settled: false,
  };
  const count = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);

  function open(local: number, done: () => void): void {
    const spec = specs[local]!;
    const subscribe = JSON.stringify({
      id: '1',
      type: 'subscribe',
      payload:
        spec.after !== undefined
          ? { query: QUERY_REPLAY, variables: { after: spec.after } }
          : spec.box
            ? { query: QUERY_ONE_BOX, variables: { boxes: [spec.box] } }
            : { query: QUERY_EVERYTHING },
    });
    const socket = new WebSocket(spec.url, 'graphql-transport-ws', { perMessageDeflate: false });
    sockets.push(socket);
    let handshaking = true;
    const handshakeOver = () => {
      if (handshaking) {
        handshaking = false;
        done();
      }
    };
    socket.on('open', () => socket.send(CONNECTION_INIT));
    socket.on('message', (data: WebSocket.RawData) => {
      const at = monotonicMs();
      type Event = { id?: string } | undefined;
      const message = JSON.parse((data as Buffer).toString('utf8')) as { type: string; payload?: { data?: { deviceStatusChanged?: Event; statusEvents?: Event } } };
      switch (message.type) {
        case 'next': {
          receiptSubscriber.push(spec.index);
          const data = message.payload?.data;
          const eventId = statusEventNumber((data?.deviceStatusChanged ?? data?.statusEvents)?.id);
          receiptEvent.push(eventId);
          if (eventId === spec.replayUntil) progress.replayed++;
          receiptAt.push(at);
          progress.received++;
          if (gotEvent[local] === 0) {
            gotEvent[local] = 1;
            progress.withEvent++;
          }
          return;
        }
        case 'connection_ack':
          subscribedAt[local] = monotonicMs();
          socket.send(subscribe);
          progress.subscribed++;
          handshakeOver();
          return;
        case 'ping':
          socket.send('{"type":"pong"}');
          return;
        case 'error':
          end(local, SUBSCRIPTION_END.error);
          progress.operationErrors++;
          progress.lastOperationError = JSON.stringify(message.payload).slice(0, 300);
          return;
        case 'complete':
          end(local, SUBSCRIPTION_END.complete);
          progress.completes++;
          return;
      }
    });
    socket.on('error', (error: Error & { code?: string }) => {
      count(progress.socketErrors, error.code ?? error.message.slice(0, 60));
      handshakeOver();
    });
    socket.on('close', (code: number) => {
      if (!closing) {
        count(progress.closes, String(code));
        end(local, SUBSCRIPTION_END.closed);
      }
      handshakeOver();
    });
  }

  /** Opens every socket, at most `handshakes` handshaking at once, so the gateway is not flooded. */
  function openAll(handshakes: number): void {
    let next = 0;
    let finished = 0;
    const startNext = () => {
      if (next >= specs.length) return;
      open(next++, () => {
        finished++;
        if (finished === specs.length) progress.settled = true;
        startNext();
      });
    };
    for (let i = 0; i < Math.min(handshakes, specs.length); i++) startNext();
    if (specs.length === 0) progress.settled = true;
  }

  const timer = setInterval(() => send({ ...progress }), 250);
  process.on('message', (message: ToSubscribers) => {
    if (message.type === 'start') {
      specs = message.subscribers;
      gotEvent = new Uint8Array(specs.length);
      subscribedAt = new Float64Array(specs.length).fill(Number.NaN);
      ended = new Uint8Array(specs.length);
      openAll(message.handshakes);
    } else if (message.type === 'collect') {
      send({ ...progress });
      send({
        type: 'receipts',
        subscriber: Int32Array.from(receiptSubscriber),
        event: Float64Array.from(receiptEvent),
        at: Float64Array.from(receiptAt),
        subscriberIndex: Int32Array.from(specs, (spec) => spec.index),
        subscribedAt,
        ended,
      });
    } else if (message.type === 'close') {
      closing = true;
      clearInterval(timer);
      for (const socket of sockets) socket.terminate();
      process.disconnect?.();
      setTimeout(() => process.exit(0), 100).unref();
    }
  });
  // The parent went away without saying goodbye: do not linger with open sockets.
  process.on('disconnect', () => process.exit(0));
  send({ ...progress });
}

// ---------------------------------------------------------------------------------------------
// Processes: gateways and subscriber processes



type GatewayProcess = ServerProcess;

function startGatewayProcess(label: string, options: BenchOptions, env: NodeJS.ProcessEnv, port: number, profileDir: string | undefined): GatewayProcess {
  // A folder per gateway, default file names: tsx's loader thread writes a profile of its own beside the main thread's.
  const profiling = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, label.replace(/\W+/g, '-'))}`] : [];
  return startServer(label, options.gatewayEntry, env, port, [...options.gatewayNodeOptions, ...profiling]);
}

async function waitUntilHealthy(gateway: GatewayProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gateway.exitCode !== undefined) throw new Error(`${describeExit(gateway)}\n  before it became healthy`);
    const healthy = await fetch(`${gateway.origin}/healthz`, { signal: AbortSignal.timeout(2_000) })
      .then((response) => response.ok)
      .catch(() => false);
    if (healthy) return;
    await sleep(250);
  }
  throw new Error(`${gateway.label} did not answer /healthz within ${timeoutMs / 1000} s`);
}

const stopGateway = stopServer;


// ---------------------------------------------------------------------------------------------
// /proc readings: memory and CPU of one process, or of a process and its descendants

interface MemoryReading {
  rssKiB: number;
  hwmKiB: number;
  anonKiB: number;
  shmemKiB: number;
}

function readMemory(pid: number): MemoryReading | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM'), anonKiB: field('RssAnon'), shmemKiB: field('RssShmem') };
}

/** utime + stime of one process, in seconds (USER_HZ is 100 on every mainstream Linux). */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** A process and all its descendants, from /proc. */
function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited while we looked
    }
  }
  const tree: number[] = [];
  const pending = [rootPid];
  while (pending.length) {
    const pid = pending.pop()!;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** Machine-wide CPU time from /proc/stat, in seconds: busy (user..softirq), iowait, steal and the total. */
interface MachineCpu {
  busy: number;
  iowait: number;
  steal: number;
  total: number;
}

function machineCpu(): MachineCpu | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
    return { busy: (user + nice + system + irq + softirq) / 100, iowait: iowait / 100, steal: steal / 100, total: (user + nice + system + idle + iowait + irq + softirq + steal) / 100 };
  } catch {
    return undefined;
  }
}

const sum = (values: Array<number | undefined>) => values.reduce<number>((a, b) => a + (b ?? 0), 0);

/** Peak memory of the gateways (every 250 ms) and of the embedded Postgres (every second) during a section. */
class MemorySampler {
  readonly peakRssKiB = new Map<GatewayProcess, number>();
  postgresPeak = { privateKiB: 0, sharedKiB: 0, processes: 0 };
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly gateways: GatewayProcess[],
    private readonly postgresDataDir: string | undefined,
  ) {}

  start(): void {
    this.sampleGateways();
    this.samplePostgres();
    this.timers.push(setInterval(() => this.sampleGateways(), 250), setInterval(() => this.samplePostgres(), 1000));
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.sampleGateways();
  }

  current(gateway: GatewayProcess): number | undefined {
    return gateway.child.pid === undefined ? undefined : readMemory(gateway.child.pid)?.rssKiB;
  }

  private sampleGateways(): void {
    for (const gateway of this.gateways) {
      const rss = this.current(gateway);
      if (rss !== undefined) this.peakRssKiB.set(gateway, Math.max(rss, this.peakRssKiB.get(gateway) ?? 0));
    }
  }

  private samplePostgres(): void {
    const postmaster = this.postgresDataDir ? postmasterPid(this.postgresDataDir) : undefined;
    if (postmaster === undefined) return;
    const readings = processTree(postmaster).map(readMemory).filter((r): r is MemoryReading => r !== undefined);
    const privateKiB = sum(readings.map((r) => r.anonKiB));
    const sharedKiB = Math.max(0, ...readings.map((r) => r.shmemKiB));
    const peak = this.postgresPeak;
    if (privateKiB + sharedKiB > peak.privateKiB + peak.sharedKiB) this.postgresPeak = { privateKiB, sharedKiB, processes: readings.length };
  }
}

function postgresCpuSeconds(dataDir: string | undefined): number | undefined {
  const postmaster = dataDir ? postmasterPid(dataDir) : undefined;
  return postmaster === undefined ? undefined : sum(processTree(postmaster).map(cpuSeconds));
}

// ---------------------------------------------------------------------------------------------
// Subscriber processes, seen from the driver

class SubscriberProcess {
  readonly child: ChildProcess;
  progress: SubscriberProgress | undefined;
  private receipts: ((receipts: SubscriberReceipts) => void) | undefined;
  exited = false;

  /** `handshakes`: connections handshaking at once (the replay storm opens every one at once). */
  constructor(
    readonly specs: SubscriberSpec[],
    handshakes = 64,
  ) {
    this.child = fork(THIS_FILE, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [SUBSCRIBER_ROLE_ENV]: '1' },
      serialization: 'advanced', // typed arrays cross the channel as bytes, not JSON
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: FromSubscribers) => {
      if (message.type === 'progress') this.progress = message;
      else this.receipts?.(message);
    });
    this.child.once('exit', () => (this.exited = true));
    // Its first progress message says it is listening: a message sent before that could be lost.
    this.child.once('message', () => this.child.send({ type: 'start', subscribers: specs, handshakes } satisfies ToSubscribers));
  }

  collect(timeoutMs: number): Promise<SubscriberReceipts> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('a subscriber process did not hand over its receipts')), timeoutMs);
      this.receipts = (receipts) => {
        clearTimeout(timer);
        resolve(receipts);
      };
      this.child.send({ type: 'collect' } satisfies ToSubscribers);
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'close' } satisfies ToSubscribers);
    if (!(await settlesWithin(exited, 5_000))) {
      this.child.kill('SIGKILL');
      await settlesWithin(exited, 2_000);
    }
  }
}

/** Waits until the subscribers have received `expected` messages in all, nothing more came for 3 s, or `drainMs` passed. */
async function drained(subscribers: SubscriberProcess[], expected: number, drainMs: number): Promise<void> {
  const deadline = Date.now() + drainMs;
  let previous = -1;
  let stalledSince = Date.now();
  for (;;) {
    const received = totalOf(subscribers, (p) => p.received);
    if (received >= expected || Date.now() > deadline) return;
    if (received !== previous) {
      previous = received;
      stalledSince = Date.now();
    } else if (Date.now() - stalledSince > 3_000) return;
    await sleep(250);
  }
}

function totalOf(processes: SubscriberProcess[], pick: (p: SubscriberProgress) => number): number {
  return sum(processes.map((p) => (p.progress ? pick(p.progress) : 0)));
}

function mergeCounts(maps: Array<Record<string, number> | undefined>): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const map of maps) for (const [key, n] of Object.entries(map ?? {})) merged[key] = (merged[key] ?? 0) + n;
  return merged;
}

// ---------------------------------------------------------------------------------------------
// The fleet and the ingest driver

interface Fleet {
  boxes: SimulatedBox[];
  /** Global id (`Box:n` in base64) of each box, from its registration's answer. */
  boxIds: string[];
  /** Next device to flip per box: a box's changes cycle through its devices. */
  nextDevice: number[];
  /** Next box to change: round-robin. */
  cursor: number;
}

/** One report that flipped one device, with the times this process saw it leave and answered. */
interface PostRecord {
  box: number;
  device: number;
  toStatus: 'online' | 'offline';
  sentAt: number;
  answeredAt: number;
  /** HTTP status, or what went wrong when there was no answer. */
  outcome: number | string;
  /** `changes` in the answer: 1 when the gateway saw exactly this flip. */
  changes: number | undefined;
  measured: boolean;
}

class IngestDriver {
  private readonly pool: Pool;
  readonly posts: PostRecord[] = [];
  inFlight = 0;
  answered = 0;
  errors = new Map<string, number>();

  constructor(origin: string) {
    this.pool = new Pool(origin, { connections: 8, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  }

  async postJson(body: unknown): Promise<{ status: number; json: unknown }> {
    const response = await this.pool.request({ path: '/DeviceStatus', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    const text = await response.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.statusCode, json };
  }

  /** Flips the next device of the next box and posts that box's report; resolves once answered. */
  async flip(fleet: Fleet, measured: boolean): Promise<void> {
    const boxIndex = fleet.cursor;
    fleet.cursor = (fleet.cursor + 1) % fleet.boxes.length;
    const box = fleet.boxes[boxIndex]!;
    const deviceIndex = fleet.nextDevice[boxIndex]!;
    fleet.nextDevice[boxIndex] = (deviceIndex + 1) % box.devices.length;
    const device = box.devices[deviceIndex]!;
    device.status = device.status === 'online' ? 'offline' : 'online';
    const body = JSON.stringify(box.buildReport());
    const record: PostRecord = { box: boxIndex, device: deviceIndex, toStatus: device.status, sentAt: monotonicMs(), answeredAt: Number.NaN, outcome: 'pending', changes: undefined, measured };
    this.posts.push(record);
    this.inFlight++;
    try {
      const response = await this.pool.request({ path: '/DeviceStatus', method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
      record.answeredAt = monotonicMs();
      record.outcome = response.statusCode;
      const text = await response.body.text();
      if (response.statusCode === 200) record.changes = (JSON.parse(text) as { changes?: number }).changes;
      else this.errors.set(`HTTP ${response.statusCode}`, (this.errors.get(`HTTP ${response.statusCode}`) ?? 0) + 1);
    } catch (error) {
      const e = error as { name?: string; code?: string };
      record.outcome = e.name === 'TimeoutError' ? 'timeout' : (e.code ?? e.name ?? 'unknown error');
      this.errors.set(record.outcome, (this.errors.get(record.outcome) ?? 0) + 1);
    } finally {
      this.inFlight--;
      this.answered++;
    }
  }

  /**
   * `count` flips (or as many as fit before `untilMs`), one every `intervalMs` on a fixed schedule:
   * a late timer does not push the later ones back. Resolves when all are answered.
   */
  async paced(
    fleet: Fleet,
    intervalMs: number,
    { count = Infinity, untilMs = Infinity, measured, goOn }: { count?: number; untilMs?: number; measured: boolean; goOn?: () => boolean },
  ): Promise<void> {
    const started = monotonicMs();
    const pending: Promise<void>[] = [];
    for (let k = 0; k < count; k++) {
      const due = started + k * intervalMs;
      if (due >= untilMs && !goOn?.()) break;
      const wait = due - monotonicMs();
      if (wait > 0) await sleep(wait);
      pending.push(this.flip(fleet, measured));
    }
    await Promise.all(pending);
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => this.pool.destroy());
  }
}

async function registerFleet(driver: IngestDriver, options: BenchOptions): Promise<Fleet> {
  const boxes = createFleet({
    boxes: options.boxes,
    devicesPerBox: options.devices,
    format: 'new', // media_device_id is the device's external id, so events map back to devices exactly
    seed: options.seed,
    reportPeriodSeconds: 5,
    monitorUrl: 'http://127.0.0.1/',
    initialOfflineRate: 0,
  });
  const boxIds: string[] = new Array(boxes.length);
  let next = 0;
  const worker = async () => {
    while (next < boxes.length) {
      const index = next++;
      const { status, json } = await driver.postJson(boxes[index]!.buildReport());
      const boxId = (json as { boxId?: string } | undefined)?.boxId;
      if (status !== 200 || !boxId) throw new Error(`registering box ${index + 1} was answered ${status}: ${JSON.stringify(json).slice(0, 300)}`);
      boxIds[index] = boxId;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return { boxes, boxIds, nextDevice: boxes.map(() => 0), cursor: 0 };
}

/** Report sent -> 200 over a set of reports: the figures every section compares with its quiet baseline. */
interface IngestFigures {
  latency: LatencySummary;
  /** Reports answered 200 (the latencies are theirs), and the others by outcome (HTTP status, timeout, ...). */
  answered200: number;
  failed: Record<string, number>;
}

function ingestFigures(posts: PostRecord[]): IngestFigures {
  const latency = new LatencyHistogram();
  const failed: Record<string, number> = {};
  for (const post of posts) {
    if (post.outcome === 200) latency.record(post.answeredAt - post.sentAt);
    else failed[String(post.outcome)] = (failed[String(post.outcome)] ?? 0) + 1;
  }
  return { latency: latency.summary(), answered200: latency.count, failed };
}

/** "1,000 reports", and those not answered 200 by outcome. */
function reportsCounted(figures: IngestFigures): string {
  const failed = Object.keys(figures.failed).length ? `; not answered 200: ${describeCounts(figures.failed)}` : '';
  return `${fmt(figures.answered200)} reports answered 200${failed}`;
}

/**
 * The quiet baseline: `seconds` of the section's own ingest (same rate, same fleet, same gateway) with
 * no subscriber connected, from a driver of its own so its reports count in no delivery figure.
 */
async function quietIngest(origin: string, fleet: Fleet, intervalMs: number, seconds: number): Promise<IngestFigures> {
  const driver = new IngestDriver(origin);
  try {
    await driver.paced(fleet, intervalMs, { untilMs: monotonicMs() + seconds * 1000, measured: true });
    return ingestFigures(driver.posts);
  } finally {
    await driver.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Sections

/** Who watches what: subscriber `i` watches `watchedBox[i]`, or everything when it is -1. */
interface SubscriptionPlan {
  watchedBox: Int32Array;
  /** Gateway (index into the section's gateways) each subscriber connects to. */
  gateway: Uint8Array;
  watchersOfBox: number[];
  watchAll: number;
}

/**
 * The first `watchAll` subscribers watch everything; the rest watch one box each, in contiguous
 * blocks so each box has about the same number of watchers. Replicas alternate by subscriber.
 */
function planSubscriptions(subscribers: number, watchAll: number, boxes: number, gateways: number): SubscriptionPlan {
  const watchedBox = new Int32Array(subscribers);
  const watchersOfBox = new Array<number>(boxes).fill(0);
  const perBox = subscribers - watchAll;
  for (let i = 0; i < subscribers; i++) {
    if (i < watchAll) watchedBox[i] = -1;
    else {
      const box = Math.floor(((i - watchAll) * boxes) / perBox);
      watchedBox[i] = box;
      watchersOfBox[box]!++;
    }
  }
  const gateway = Uint8Array.from({ length: subscribers }, (_, i) => i % gateways);
  return { watchedBox, gateway, watchersOfBox, watchAll };
}

interface SectionSpec {
  label: string;
  key: 'single' | 'broadcast' | 'replicas';
  gateways: GatewayProcess[];
  databaseUrl: string;
  postgresDataDir: string | undefined;
  fleet: Fleet;
  plan: SubscriptionPlan;
  intervalMs: number;
  durationSeconds: number;
}

interface DelayFigures {
  fromAnswer: LatencySummary;
  fromSend: LatencySummary;
  beforeAnswer: number;
  count: number;
}

interface SectionResult {
  spec: SectionSpec;
  seconds: number;
  postsMeasured: number;
  postsAnswered200: number;
  postErrors: Record<string, number>;
  postsNotOneChange: number;
  /** Events stored for measured 200-answered flips, matched to them by (box, device, order). */
  eventsMatched: number;
  eventsUnmatched: number;
  expected: number;
  received: number;
  duplicates: number;
  outsideFilter: number;
  lost: number;
  delay: DelayFigures;
  delayByGateway: DelayFigures[];
  subscribersConnected: number;
  closes: Record<string, number>;
  socketErrors: Record<string, number>;
  operationErrors: number;
  lastOperationError: string | undefined;
  peakRssKiB: number[];
  hwmKiB: Array<number | undefined>;
  postgres: { privateKiB: number; sharedKiB: number; processes: number };
  gatewayCores: Array<number | undefined>;
  postgresCores: number | undefined;
  subscriberCores: number | undefined;
  driverCores: number;
  messagesPerSecond: number;
  /** Report sent -> 200, over measured reports answered 200. */
  ingestLatency: LatencySummary;
  /** The same over the quiet baseline: the same ingest before any subscriber connected. */
  quiet: IngestFigures;
  /** Gateway RSS (first gateway; summed over replicas) before the subscribers connected, and with them connected and idle. */
  rssBeforeKiB: number;
  /** Once every subscriber has sent its subscribe message; and once each has received its warm-up change. */
  rssConnectedKiB: number;
  rssIdleKiB: number;
  /** Machine-wide, in cores: busy (all processes, ours included), waiting for disk, stolen by the hypervisor. */
  machine: { cores: number; busy: number; iowait: number; steal: number } | undefined;
  /** The broadcast section's bare-websocket baseline, or why it failed. */
  bare?: BareBaseline | string;
}

function histogramFigures(): { answer: LatencyHistogram; send: LatencyHistogram; before: number } {
  return { answer: new LatencyHistogram(), send: new LatencyHistogram(), before: 0 };
}

function progressLine(label: string, stage: () => string, tick: () => string): { stop(): void } {
  const tty = process.stderr.isTTY;
  const started = performance.now();
  const timer = setInterval(() => {
    const line = `[${label}] ${stage()} ${((performance.now() - started) / 1000).toFixed(0).padStart(4)}s  ${tick()}`;
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (kib: number) => `${fmt(kib / 1024)} MiB`;

async function runSection(spec: SectionSpec, options: BenchOptions): Promise<SectionResult> {
  const { plan, gateways, fleet } = spec;
  const subscriberCount = plan.watchedBox.length;
  const wsUrls = gateways.map((g) => `${g.origin.replace(/^http/, 'ws')}/graphql`);
  const processCount = Math.ceil(subscriberCount / options.connectionsPerProcess);
  const byProcess: SubscriberSpec[][] = Array.from({ length: processCount }, () => []);
  for (let i = 0; i < subscriberCount; i++) {
    const box = plan.watchedBox[i]!;
    byProcess[i % processCount]!.push({ index: i, url: wsUrls[plan.gateway[i]!]!, ...(box >= 0 ? { box: fleet.boxIds[box]! } : {}) });
  }

  const driver = new IngestDriver(gateways[0]!.origin);
  const subscribers: SubscriberProcess[] = [];
  const memory = new MemorySampler(gateways, spec.postgresDataDir);
  let stage = 'quiet baseline';
  let lastReceived = 0;
  let lastAnswered = 0;
  const progress = progressLine(
    spec.label,
    () => stage,
    () => {
      const received = totalOf(subscribers, (p) => p.received);
      const closed = sum(subscribers.map((s) => sum(Object.values(s.progress?.closes ?? {}))));
      const text =
        `subscribed ${fmt(totalOf(subscribers, (p) => p.subscribed))}/${fmt(subscriberCount)}, closed ${closed}` +
        `  ingest ${driver.answered - lastAnswered}/s (in flight ${driver.inFlight})  deliveries ${fmt(received - lastReceived)}/s` +
        `  RSS ${gateways.map((g) => mib(memory.current(g) ?? 0)).join(' + ')}`;
      lastReceived = received;
      lastAnswered = driver.answered;
      return text;
    },
  );
  const db = new pg.Client({ connectionString: spec.databaseUrl });
  await db.connect();
  try {
    const quiet = await quietIngest(gateways[0]!.origin, fleet, spec.intervalMs, options.quietDurationSeconds);
    const rssBeforeKiB = sum(gateways.map((g) => memory.current(g)));
    stage = 'connecting subscribers';
    memory.start();
    for (const group of byProcess) subscribers.push(new SubscriberProcess(group));

    // Every subscriber connected and sent its subscribe message (or failed).
    const connectDeadline = Date.now() + options.readyTimeoutMs;
    while (!subscribers.every((s) => s.progress?.settled)) {
      for (const gateway of gateways) if (gateway.exitCode !== undefined) throw new Error(describeExit(gateway));
      if (subscribers.some((s) => s.exited)) throw new Error('a subscriber process exited early');
      if (Date.now() > connectDeadline) throw new Error(`subscribers did not connect within ${options.readyTimeoutMs / 1000} s`);
      await sleep(100);
    }
    const subscribed = totalOf(subscribers, (p) => p.subscribed);
    if (subscribed < subscriberCount) {
      const errors = mergeCounts(subscribers.map((s) => s.progress?.socketErrors));
      throw new Error(`only ${subscribed} of ${subscriberCount} subscribers connected; socket errors: ${JSON.stringify(errors)}`);
    }

    const rssConnectedKiB = sum(gateways.map((g) => memory.current(g)));

    // Warm-up: changes until every subscriber has received one, so every subscription is registered.
    const { rows } = await db.query<{ id: string }>('select coalesce(max(id), 0)::bigint as id from status_events');
    const startId = Number(rows[0]!.id);
    // One round over the boxes (a few changes when everyone watches everything), within about 10 s.
    stage = 'warm-up';
    const warmupFlips = plan.watchersOfBox.some((n) => n > 0) ? Math.max(3, fleet.boxes.length) : 3;
    await driver.paced(fleet, Math.min(spec.intervalMs, 10_000 / warmupFlips), { count: warmupFlips, measured: false });
    const warmDeadline = Date.now() + 30_000;
    while (totalOf(subscribers, (p) => p.withEvent) < subscriberCount) {
      if (Date.now() > warmDeadline) {
        const missing = subscriberCount - totalOf(subscribers, (p) => p.withEvent);
        const lastError = subscribers.map((s) => s.progress?.lastOperationError).find(Boolean);
        throw new Error(`${missing} subscribers received nothing during the warm-up${lastError ? `; last operation error: ${lastError}` : ''}`);
      }
      if (Date.now() > warmDeadline - 25_000) await driver.flip(fleet, false); // a quiet box: change again
      await sleep(250);
    }
    // Every subscription registered and its warm-up change delivered: connected and idle.
    const rssIdleKiB = sum(gateways.map((g) => memory.current(g)));

    // Measure.
    stage = 'measuring';
    const cpuBefore = {
      gateways: gateways.map((g) => cpuSeconds(g.child.pid)),
      postgres: postgresCpuSeconds(spec.postgresDataDir),
      subscribers: sum(subscribers.map((s) => cpuSeconds(s.child.pid))),
      driver: process.cpuUsage(),
      machine: machineCpu(),
    };
    const started = monotonicMs();
    await driver.paced(fleet, spec.intervalMs, { untilMs: started + spec.durationSeconds * 1000, measured: true });
    const seconds = (monotonicMs() - started) / 1000;
    const cpuAfter = {
      gateways: gateways.map((g) => cpuSeconds(g.child.pid)),
      postgres: postgresCpuSeconds(spec.postgresDataDir),
      subscribers: sum(subscribers.map((s) => cpuSeconds(s.child.pid))),
      driver: process.cpuUsage(cpuBefore.driver),
      machine: machineCpu(),
    };

    // Drain: wait until every delivery the answered flips imply has arrived, or nothing more comes.
    stage = 'draining';
    const expectedAll = sum(driver.posts.filter((p) => p.outcome === 200).map((p) => plan.watchersOfBox[p.box]! + plan.watchAll));
    await drained(subscribers, expectedAll, options.drainMs);
    memory.stop();
    const hwmKiB = gateways.map((g) => (g.child.pid === undefined ? undefined : readMemory(g.child.pid)?.hwmKiB));

    stage = 'collecting';
    const receipts = await Promise.all(subscribers.map((s) => s.collect(60_000)));
    const final = subscribers.map((s) => s.progress!);

    // Which stored event is which flip: per (box, device), events in id order are the flips in order.
    const { rows: events } = await db.query<{ id: string; license_key: string; external_id: string; to_status: string }>(
      `select e.id, b.license_key, d.external_id, e.to_status
       from status_events e join boxes b on b.id = e.box_id join devices d on d.id = e.device_id
       where e.id > $1 order by e.id`,
      [startId],
    );
    const postsByDevice = new Map<string, PostRecord[]>();
    for (const post of driver.posts) {
      if (post.outcome !== 200) continue;
      const box = fleet.boxes[post.box]!;
      const key = `${box.licenseKey}\u0000${box.devices[post.device]!.id}`;
      const list = postsByDevice.get(key) ?? [];
      list.push(post);
      postsByDevice.set(key, list);
    }
    const postOfEvent = new Map<number, PostRecord>();
    let eventsUnmatched = 0;
    for (const event of events) {
      const post = postsByDevice.get(`${event.license_key}\u0000${event.external_id}`)?.shift();
      if (!post || post.toStatus !== event.to_status) eventsUnmatched++;
      else postOfEvent.set(Number(event.id), post);
    }

    const matchedPosts = new Set(postOfEvent.values());

    // Join receipts to flips.
    const measuredPosts = driver.posts.filter((p) => p.measured);
    const answered200 = measuredPosts.filter((p) => p.outcome === 200);
    const expected = sum(answered200.map((p) => plan.watchersOfBox[p.box]! + plan.watchAll));
    const all = histogramFigures();
    const perGateway = gateways.map(() => histogramFigures());
    const seen = new Set<number>();
    let received = 0;
    let duplicates = 0;
    let outsideFilter = 0;
    for (const batch of receipts) {
      for (let r = 0; r < batch.subscriber.length; r++) {
        const subscriber = batch.subscriber[r]!;
        const eventId = batch.event[r]!;
        const post = postOfEvent.get(eventId);
        if (!post?.measured) continue;
        const watched = plan.watchedBox[subscriber]!;
        if (watched !== -1 && watched !== post.box) {
          outsideFilter++;
          continue;
        }
        const key = eventId * subscriberCount + subscriber;
        if (seen.has(key)) {
          duplicates++;
          continue;
        }
        seen.add(key);
        received++;
        const at = batch.at[r]!;
        const delay = at - post.answeredAt;
        for (const figures of [all, perGateway[plan.gateway[subscriber]!]!]) {
          if (delay < 0) figures.before++;
          figures.answer.record(Math.max(0, delay));
          figures.send.record(at - post.sentAt);
        }
      }
    }
    const summarize = (f: ReturnType<typeof histogramFigures>): DelayFigures => ({
      fromAnswer: f.answer.summary(),
      fromSend: f.send.summary(),
      beforeAnswer: f.before,
      count: f.answer.count,
    });
    const answerTimes = new LatencyHistogram();
    for (const post of answered200) answerTimes.record(post.answeredAt - post.sentAt);
    const errors = new Map<string, number>();
    for (const post of measuredPosts) if (post.outcome !== 200) errors.set(String(post.outcome), (errors.get(String(post.outcome)) ?? 0) + 1);
    const core = (before: number | undefined, after: number | undefined) => (before === undefined || after === undefined ? undefined : (after - before) / seconds);
    const { machine: m0 } = cpuBefore;
    const { machine: m1 } = cpuAfter;
    const machine =
      m0 && m1
        ? { cores: os.cpus().length, busy: (m1.busy - m0.busy) / seconds, iowait: (m1.iowait - m0.iowait) / seconds, steal: (m1.steal - m0.steal) / seconds }
        : undefined;
    return {
      spec,
      seconds,
      postsMeasured: measuredPosts.length,
      postsAnswered200: answered200.length,
      postErrors: Object.fromEntries(errors),
      postsNotOneChange: answered200.filter((p) => p.changes !== 1).length,
      eventsMatched: answered200.filter((p) => matchedPosts.has(p)).length,
      eventsUnmatched,
      expected,
      received,
      duplicates,
      outsideFilter,
      lost: expected - received,
      delay: summarize(all),
      delayByGateway: perGateway.map(summarize),
      subscribersConnected: sum(final.map((p) => p.subscribed)),
      closes: mergeCounts(final.map((p) => p.closes)),
      socketErrors: mergeCounts(final.map((p) => p.socketErrors)),
      operationErrors: sum(final.map((p) => p.operationErrors)),
      lastOperationError: final.map((p) => p.lastOperationError).find(Boolean),
      peakRssKiB: gateways.map((g) => memory.peakRssKiB.get(g) ?? 0),
      hwmKiB,
      postgres: memory.postgresPeak,
      gatewayCores: gateways.map((_, i) => core(cpuBefore.gateways[i], cpuAfter.gateways[i])),
      postgresCores: core(cpuBefore.postgres, cpuAfter.postgres),
      subscriberCores: core(cpuBefore.subscribers, cpuAfter.subscribers),
      driverCores: (cpuAfter.driver.user + cpuAfter.driver.system) / 1e6 / seconds,
      messagesPerSecond: expected / seconds,
      ingestLatency: answerTimes.summary(),
      quiet,
      rssBeforeKiB,
      rssConnectedKiB,
      rssIdleKiB,
      machine,
    };
  } finally {
    progress.stop();
    memory.stop();
    await Promise.all(subscribers.map((s) => s.close()));
    await driver.close();
    await db.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// The replay storm

interface ReplayResult {
  label: string;
  check: ReplayCheck;
  /** Seconds from the storm's start to the last change ingested during it. */
  seconds: number;
  /** Reports during the storm (at the quiet rate) and the same ingest before, with no client. */
  ingest: IngestFigures;
  quiet: IngestFigures;
  /** Events stored after the deepest cursor when the storm began, and the newest of them. */
  newestAtStart: number;
  subscribersConnected: number;
  closes: Record<string, number>;
  socketErrors: Record<string, number>;
  operationErrors: number;
  lastOperationError: string | undefined;
  peakRssKiB: number;
  gatewayCores: number | undefined;
  postgresCores: number | undefined;
}

/**
 * `--replay-clients` websocket clients subscribe at once to statusEvents(after: cursor), each cursor
 * about `--replay-events` back (from the history query), while changes go on at `--interval-ms`;
 * the changes go on until every client has replayed (within --ready-timeout), then the live ones drain.
 */
async function runReplayStorm(base: { gateways: GatewayProcess[]; databaseUrl: string; postgresDataDir: string | undefined; fleet: Fleet }, options: BenchOptions): Promise<ReplayResult> {
  const gateway = base.gateways[0]!;
  const { fleet } = base;
  const clients = options.replayClients;
  const label = `replay storm: ${fmt(clients)} websocket clients resume statusEvents(after:) at once, ${fmt(options.replayEvents)} ± ${options.replayWindow} events back, a change every ${options.replayIntervalMs} ms`;
  const driver = new IngestDriver(gateway.origin);
  const subscribers: SubscriberProcess[] = [];
  const memory = new MemorySampler([gateway], base.postgresDataDir);
  let stage = 'filling the history';
  let lastAnswered = 0;
  const progress = progressLine(
    'replay storm',
    () => stage,
    () => {
      const text =
        `subscribed ${fmt(totalOf(subscribers, (p) => p.subscribed))}/${fmt(clients)}, replayed ${fmt(totalOf(subscribers, (p) => p.replayed))}, received ${fmt(totalOf(subscribers, (p) => p.received))}` +
        `  ingest ${driver.answered - lastAnswered}/s (in flight ${driver.inFlight})  RSS ${mib(memory.current(gateway) ?? 0)}`;
      lastAnswered = driver.answered;
      return text;
    },
  );
  const db = new pg.Client({ connectionString: base.databaseUrl });
  await db.connect();
  try {
    // Enough history behind the deepest cursor, driven as fast as 16 reports in flight allow.
    const depth = options.replayEvents + options.replayWindow + 1;
    const { rows: counted } = await db.query<{ n: string }>('select count(*)::bigint as n from status_events');
    const missing = depth - Number(counted[0]!.n);
    if (missing > 0) {
      const filler = new IngestDriver(gateway.origin);
      let left = missing;
      const worker = async () => {
        while (left-- > 0) await filler.flip(fleet, false);
      };
      await Promise.all(Array.from({ length: 16 }, worker)).finally(() => filler.close());
      if (filler.errors.size) throw new Error(`filling the history: ${describeCounts(Object.fromEntries(filler.errors))}`);
    }

    stage = 'quiet baseline';
    const quiet = await quietIngest(gateway.origin, fleet, options.replayIntervalMs, options.quietDurationSeconds);

    // Cursors as a client holds them: from the history query, newest first; nothing is ingested until the storm.
    stage = 'reading cursors';
    const positions = await historyPositions(gateway.origin, BENCH_ADMIN_TOKEN, depth, 30_000);
    const newestAtStart = positions[0]!.eventId;
    const afterIds: number[] = [];
    const wsUrl = `${gateway.origin.replace(/^http/, 'ws')}/graphql`;
    const processCount = Math.ceil(clients / options.connectionsPerProcess);
    const byProcess: SubscriberSpec[][] = Array.from({ length: processCount }, () => []);
    for (let i = 0; i < clients; i++) {
      const position = positions[replayDepth(i, clients, options.replayEvents, options.replayWindow)]!;
      afterIds.push(position.eventId);
      byProcess[i % processCount]!.push({ index: i, url: wsUrl, after: position.cursor, replayUntil: newestAtStart });
    }

    // The storm: every client handshakes at once, and the ingest goes on at its quiet rate meanwhile.
    stage = 'storm';
    const cpuBefore = { gateway: cpuSeconds(gateway.child.pid), postgres: postgresCpuSeconds(base.postgresDataDir) };
    memory.start();
    for (const group of byProcess) subscribers.push(new SubscriberProcess(group, group.length));
    // A subscriber process's first message says it is listening; it is then told to open every socket at once.
    const deadline = Date.now() + options.readyTimeoutMs;
    while (!subscribers.every((s) => s.progress)) {
      if (Date.now() > deadline || subscribers.some((s) => s.exited)) throw new Error('the storm’s subscriber processes did not start');
      await sleep(20);
    }
    const startedAt = monotonicMs();
    const closedCount = () => sum(subscribers.map((s) => sum(Object.values(s.progress?.closes ?? {}))));
    const stormOver = () =>
      Date.now() > deadline ||
      subscribers.some((s) => s.exited) ||
      gateway.exitCode !== undefined ||
      totalOf(subscribers, (p) => p.replayed + p.operationErrors) + closedCount() >= clients;
    await driver.paced(fleet, options.replayIntervalMs, { untilMs: startedAt + options.replayDurationSeconds * 1000, measured: true, goOn: () => !stormOver() });
    const seconds = (monotonicMs() - startedAt) / 1000;
    const cpuAfter = { gateway: cpuSeconds(gateway.child.pid), postgres: postgresCpuSeconds(base.postgresDataDir) };
    if (gateway.exitCode !== undefined) throw new Error(describeExit(gateway));
    if (subscribers.some((s) => s.exited)) throw new Error('a subscriber process exited early');

    // Drain: every client should reach the newest stored event; stop when all have, or nothing more comes.
    stage = 'draining';
    const { rows: newest } = await db.query<{ id: string }>('select coalesce(max(id), 0)::bigint as id from status_events');
    const newestAtEnd = Number(newest[0]!.id);
    const { rows: counts } = await db.query<{ n: string }>(
      'select count(e.id)::bigint as n from unnest($1::bigint[]) with ordinality as c(after, client) left join status_events e on e.id > c.after and e.id <= $2 group by c.client',
      [afterIds, newestAtEnd],
    );
    const expectedAll = sum(counts.map((r) => Number(r.n)));
    await drained(subscribers, expectedAll, options.drainMs);
    memory.stop();

    stage = 'collecting';
    const batches = await Promise.all(subscribers.map((s) => s.collect(60_000)));
    const final = subscribers.map((s) => s.progress!);
    // Read after the receipts: every event a client may have received is stored by now.
    const { rows: storedRows } = await db.query<{ id: string }>('select id from status_events where id > $1 order by id', [afterIds.reduce((a, b) => Math.min(a, b))]);
    const storedIds = storedRows.map((r) => Number(r.id));
    const endNames = ['still open', 'an error message', 'complete', 'the socket closed'];
    const receipts = { events: afterIds.map((): number[] => []), at: afterIds.map((): number[] => []), subscribedAt: afterIds.map(() => Number.NaN), ended: afterIds.map(() => endNames[0]!) };
    for (const batch of batches) {
      batch.subscriberIndex.forEach((client, local) => {
        receipts.subscribedAt[client] = batch.subscribedAt[local]!;
        receipts.ended[client] = endNames[batch.ended[local]!]!;
      });
      for (let r = 0; r < batch.subscriber.length; r++) {
        receipts.events[batch.subscriber[r]!]!.push(batch.event[r]!);
        receipts.at[batch.subscriber[r]!]!.push(batch.at[r]!);
      }
    }
    const core = (before: number | undefined, after: number | undefined) => (before === undefined || after === undefined ? undefined : (after - before) / seconds);
    return {
      label,
      check: checkReplay(afterIds, storedIds, receipts, newestAtStart, newestAtEnd),
      seconds,
      ingest: ingestFigures(driver.posts.filter((p) => p.measured)),
      quiet,
      newestAtStart,
      subscribersConnected: sum(final.map((p) => p.subscribed)),
      closes: mergeCounts(final.map((p) => p.closes)),
      socketErrors: mergeCounts(final.map((p) => p.socketErrors)),
      operationErrors: sum(final.map((p) => p.operationErrors)),
      lastOperationError: final.map((p) => p.lastOperationError).find(Boolean),
      peakRssKiB: memory.peakRssKiB.get(gateway) ?? 0,
      gatewayCores: core(cpuBefore.gateway, cpuAfter.gateway),
      postgresCores: core(cpuBefore.postgres, cpuAfter.postgres),
    };
  } finally {
    progress.stop();
    memory.stop();
    await Promise.all(subscribers.map((s) => s.close()));
    await driver.close();
    await db.end().catch(() => {});
  }
}

function printReplay(result: ReplayResult): void {
  const { check } = result;
  const cores = (n: number | undefined) => (n === undefined ? 'n/a' : `${n.toFixed(2)} cores`);
  const inexact = check.clients - check.exact;
  const lines = [
    result.label,
    `  clients        ${fmt(check.exact)} exact / ${fmt(check.clients)}: exactly the stored events after its cursor, in id order, no gap, no duplicate, then the live ones` +
      (inexact
        ? `; inexact: ${check.withGap} with a gap, ${check.withDuplicate} with a duplicate, ${check.outOfOrder} out of order, ${check.cutShort} cut short (ended by: ${describeCounts(check.cutShortBy)})`
        : ''),
    ...check.examples.map((example) => `                 ${example}`),
    `  replay done    from a client's subscribe message to its receipt of event ${result.newestAtStart}, the newest when the storm began:` +
      ` p50 ${formatMs(check.replayDone.p50Ms)}, p99 ${formatMs(check.replayDone.p99Ms)}, max ${formatMs(check.replayDone.maxMs)} (${fmt(check.replayFinished)} of ${fmt(check.clients)} clients got there);`,
    `                 the last client got there ${formatMs(check.lastDoneMs)} after the first subscribe message (every client handshaking at once)`,
    `  deliveries     ${fmt(check.expected)} expected, ${fmt(check.received)} received over ${result.seconds.toFixed(1)} s of storm and the drain`,
    `  ingest         report -> 200 during the storm: p50 ${formatMs(result.ingest.latency.p50Ms)}, p99 ${formatMs(result.ingest.latency.p99Ms)}, max ${formatMs(result.ingest.latency.maxMs)}` +
      ` (${reportsCounted(result.ingest)})`,
    quietLine(result.quiet, result.ingest.latency),
    `  subscribers    ${fmt(result.subscribersConnected)} connected; closed by the server or network: ${describeCounts(result.closes)} (4009 = slow consumer);` +
      ` socket errors: ${describeCounts(result.socketErrors)}; operation errors: ${result.operationErrors}${result.lastOperationError ? ` (last: ${result.lastOperationError})` : ''}`,
    `  gateway        peak RSS ${mib(result.peakRssKiB)}, CPU ${cores(result.gatewayCores)}; postgres CPU ${cores(result.postgresCores)}`,
    `  targets        ${describeVerdicts(replayVerdicts(result))}`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function replayVerdicts(result: ReplayResult): Verdict[] {
  const { check } = result;
  return [{ line: `${fmt(check.exact)}/${fmt(check.clients)} clients exact (all)`, met: check.exact === check.clients && check.clients > 0 }, ingestVerdict(result.ingest.latency, result.quiet)];
}

// ---------------------------------------------------------------------------------------------
// Output

function describeCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? 'none' : entries.map(([key, n]) => `${key} ×${n}`).join(', ');
}

function delayLine(d: DelayFigures): string {
  const before = d.count === 0 ? '' : `; ${((d.beforeAnswer / d.count) * 100).toFixed(1)}% arrived before the 200 reached the driver, counted as 0`;
  return `p50 ${formatMs(d.fromAnswer.p50Ms)}, p99 ${formatMs(d.fromAnswer.p99Ms)}, max ${formatMs(d.fromAnswer.maxMs)}${before}`;
}

/** The commit measured, and whether the work tree differs from it. */
function gitRevision(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return `git ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'git revision unknown';
  }
}

function printConditions(options: BenchOptions, fdLimit: number | undefined): void {
  const cpus = os.cpus();
  const perBox = options.subscribers - options.watchAll;
  const watchersPerEvent = perBox / options.boxes;
  const perEvent = Math.min(watchersPerEvent, perBox) + options.watchAll;
  const rate = 1000 / options.intervalMs;
  const processes = Math.ceil(options.subscribers / options.connectionsPerProcess);
  const sections = [options.single && '1 gateway process', options.replicas && '2 replicas (B reads A’s Postgres; reports go to A only; subscribers alternate A, B)'].filter(Boolean);
  const lines = [
    'fleetgate live-delivery benchmark (issue 4)',
    `  subscribers    ${fmt(options.subscribers)} websocket connections, one subscription each, graphql-transport-ws spoken by raw \`ws\` clients`,
    `                 in ${processes} subscriber process${processes === 1 ? '' : 'es'} of up to ${fmt(options.connectionsPerProcess)} (not this process)`,
    `  subscriptions  ${fmt(perBox)} watch one box each: deviceStatusChanged(filter: { boxes: [$box] }), ${watchersPerEvent.toFixed(1)} per box over ${fmt(options.boxes)} boxes`,
    `                 ${fmt(options.watchAll)} watch every device: deviceStatusChanged (no filter)`,
    `                 each selects { ${EVENT_SELECTION} }`,
    `  events         one device status change ingested every ${options.intervalMs} ms (${fmt(rate)}/s) for ${options.durationSeconds} s, boxes round-robin,`,
    `                 one device flipped per report (${options.devices} devices per box, newer report format), all reports to replica A`,
    `  deliveries     each change goes to ~${watchersPerEvent.toFixed(1)} box watchers + ${options.watchAll} all-watchers = ~${perEvent.toFixed(1)} messages;`,
    `                 ~${fmt(perEvent * rate)} messages/s from the gateway(s) in all`,
    `  warm-up        one change per box before measuring; measuring starts once every subscriber has received one`,
    `  sections       ${sections.join(', then ')}`,
    ...(options.single && options.broadcastDurationSeconds > 0
      ? [
          `  broadcast      last, on a fresh gateway and database of its own: ${fmt(options.broadcastSubscribers)} subscribers with no filter,`,
          `                 one change every ${options.broadcastIntervalMs} ms for ${options.broadcastDurationSeconds} s (${fmt(options.broadcastSubscribers)} messages per change);`,
          `                 then its baseline: the same subscriber processes' code and size on a bare \`ws\` server in its own process (no GraphQL,`,
          `                 no database) sending a message of the gateway's size to every socket at the same pace, timed from its first socket.send`,
        ]
      : []),
    ...(options.single && options.replayClients > 0
      ? [
          `  replay storm   after the first section, on a gateway and database of its own: ${fmt(options.replayClients)} websocket clients subscribe at once to statusEvents(after: $cursor) { ${EVENT_SELECTION} },`,
          `                 cursors from the history query, ${fmt(options.replayEvents)} events back ± ${options.replayWindow} (spread evenly over the clients);`,
          `                 changes go on every ${options.replayIntervalMs} ms for at least ${options.replayDurationSeconds} s and until every client has replayed`,
        ]
      : []),
    `  quiet baseline per section, before its subscribers connect: ${options.quietDurationSeconds} s of the same ingest (rate, fleet, gateway) with no subscriber`,
    `  delay          from the moment this process has the ingest's 200 to the moment a subscriber process has the message,`,
    `                 both read from CLOCK_MONOTONIC (process.hrtime): one clock for every process on this machine`,
    `  memory         gateway VmRSS sampled every 250 ms (peak) and VmHWM; embedded Postgres separately`,
    `  machine        node ${process.version}, ${cpus.length} CPU${cpus.length === 1 ? '' : 's'} (${cpus[0]?.model.trim() ?? 'unknown'}), ${os.platform()} ${os.release()}, loopback; open files limit ${fdLimit ?? 'unknown'}`,
    `  code           ${gitRevision()}, gateway entry ${options.gatewayEntry}`,
    ...(options.gatewayNodeOptions.length ? [`  gateway node   ${options.gatewayNodeOptions.join(' ')}`] : []),
    `  database       ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'a fresh embedded Postgres per section group, in a temporary folder'}`,
    `  access         one admin token for every subscriber; rate limits and websocket/subscription caps off (bench/lib/server-process.ts)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

function printResult(result: SectionResult): void {
  const { spec } = result;
  const cores = (n: number | undefined) => (n === undefined ? 'n/a' : `${n.toFixed(2)} cores`);
  const names = spec.gateways.map((g) => g.label);
  const lines = [
    spec.label,
    `  delay          ${delayLine(result.delay)}`,
    ...(spec.gateways.length > 1 ? result.delayByGateway.map((d, i) => `    via ${names[i]!.padEnd(10)} ${delayLine(d)} (${fmt(d.count)} deliveries)`) : []),
    `  from POST      p50 ${formatMs(result.delay.fromSend.p50Ms)}, p99 ${formatMs(result.delay.fromSend.p99Ms)}, max ${formatMs(result.delay.fromSend.maxMs)} (report sent -> receipt, for comparison)`,
    `  deliveries     ${fmt(result.expected)} expected, ${fmt(result.received)} received, ${fmt(result.lost)} lost, ${fmt(result.duplicates)} duplicates, ${fmt(result.outsideFilter)} outside their filter` +
      ` (${fmt(result.messagesPerSecond)} messages/s)`,
    `  changes        ${fmt(result.postsMeasured)} reports in ${result.seconds.toFixed(1)} s, ${fmt(result.postsAnswered200)} answered 200; errors: ${describeCounts(result.postErrors)}` +
      `${result.postsNotOneChange ? `; ${result.postsNotOneChange} answers did not report exactly one change` : ''}`,
    `  ingest         report -> 200: p50 ${formatMs(result.ingestLatency.p50Ms)}, p99 ${formatMs(result.ingestLatency.p99Ms)}, max ${formatMs(result.ingestLatency.maxMs)} (${fmt(result.postsAnswered200)} reports)`,
    quietLine(result.quiet, result.ingestLatency),
    `  memory         gateway RSS ${mib(result.rssBeforeKiB)} before the subscribers connected, ${mib(result.rssIdleKiB)} with them connected and idle` +
      ` (after the warm-up change reached each): ${perSubscriberKiB(result, result.rssIdleKiB).toFixed(1)} KiB per subscriber` +
      ` (${perSubscriberKiB(result, result.rssConnectedKiB).toFixed(1)} KiB right after the last subscribe message, before any change)`,
    `  events         ${fmt(result.eventsMatched)} stored events matched to measured changes${result.eventsUnmatched ? `, ${result.eventsUnmatched} stored events matched no change` : ''}`,
    `  subscribers    ${fmt(result.subscribersConnected)} connected; closed by the server or network: ${describeCounts(result.closes)} (4009 = slow consumer);` +
      ` socket errors: ${describeCounts(result.socketErrors)}; operation errors: ${result.operationErrors}${result.lastOperationError ? ` (last: ${result.lastOperationError})` : ''}`,
    ...spec.gateways.map(
      (g, i) =>
        `  ${`${g.label}`.padEnd(14)} peak RSS ${mib(result.peakRssKiB[i]!)} (VmHWM since start ${result.hwmKiB[i] === undefined ? 'n/a' : mib(result.hwmKiB[i]!)}), CPU ${cores(result.gatewayCores[i])}`,
    ),
    `  postgres       CPU ${cores(result.postgresCores)}; ${spec.postgresDataDir ? `peak memory ${mib(result.postgres.privateKiB)} private + ${mib(result.postgres.sharedKiB)} shared over ${result.postgres.processes} processes` : 'memory n/a (DATABASE_URL)'}`,
    `  load           subscriber processes ${cores(result.subscriberCores)}, ingest driver ${cores(result.driverCores)}`,
    ...(result.machine ? [machineLine(result)] : []),
    ...(result.bare === undefined ? [] : bareLines(result)),
    `  targets        ${describeVerdicts(sectionVerdicts(result))}`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The bare-websocket baseline beside the broadcast's delay, and the ratio of their p99s (information, not a target). */
function bareLines(result: SectionResult): string[] {
  const bare = result.bare!;
  if (typeof bare === 'string') return [`  bare ws        baseline failed: ${bare}`];
  const cores = (n: number | undefined) => (n === undefined ? 'n/a' : `${n.toFixed(2)} cores`);
  return [
    `  bare ws        the same ${fmt(bare.subscribers)} subscribers (${bare.processes} process${bare.processes === 1 ? '' : 'es'}, same code) on a bare \`ws\` server in its own process, no GraphQL, no database:`,
    `                 ${bare.broadcasts} broadcasts of ${fmt(bare.messageBytes)} bytes, one socket.send per socket; first send -> receipt p50 ${formatMs(bare.delay.p50Ms)}, p99 ${formatMs(bare.delay.p99Ms)},` +
      ` max ${formatMs(bare.delay.maxMs)}; send loop p50 ${formatMs(bare.sendLoop.p50Ms)}, max ${formatMs(bare.sendLoop.maxMs)}`,
    `                 ${fmt(bare.received)} of ${fmt(bare.expected)} received, ${fmt(bare.lost)} lost, ${fmt(bare.duplicates)} duplicates; CPU bare server ${cores(bare.serverCores)}, subscriber processes ${cores(bare.subscriberCores)}`,
    `                 ${bareRatio(result, bare)}`,
  ];
}

function bareRatio(result: SectionResult, bare: BareBaseline): string {
  const ratio = result.delay.fromAnswer.p99Ms / Math.max(bare.delay.p99Ms, 0.001);
  return `gateway delivery p99 ${formatMs(result.delay.fromAnswer.p99Ms)} / bare ws p99 ${formatMs(bare.delay.p99Ms)} = ${ratio.toFixed(1)}× (information, not a target)`;
}

/** The quiet baseline beside the section's ingest, and the ratio of their p99s that the targets judge. */
function quietLine(quiet: IngestFigures, during: LatencySummary): string {
  return (
    `  quiet ingest   report -> 200 with no subscriber (same rate, fleet and gateway, just before): p50 ${formatMs(quiet.latency.p50Ms)}, p99 ${formatMs(quiet.latency.p99Ms)},` +
    ` max ${formatMs(quiet.latency.maxMs)} (${reportsCounted(quiet)}); ingest p99 / quiet p99 = ${ingestRatio(during, quiet).toFixed(2)}`
  );
}

function ingestRatio(during: LatencySummary, quiet: IngestFigures): number {
  return during.p99Ms / Math.max(quiet.latency.p99Ms, 0.001);
}

function perSubscriberKiB(result: SectionResult, rssKiB: number): number {
  return (rssKiB - result.rssBeforeKiB) / result.spec.plan.watchedBox.length;
}

/** The whole machine while measuring: what ran besides this benchmark shows as the busy cores not listed above. */
function machineLine(result: SectionResult): string {
  const m = result.machine!;
  const ours = sum([...result.gatewayCores, result.postgresCores, result.subscriberCores, result.driverCores]);
  const others = Math.max(0, m.busy - ours);
  return (
    `  machine        ${m.busy.toFixed(2)} of ${m.cores} cores busy (${ours.toFixed(2)} by the processes above, ${others.toFixed(2)} by processes outside this benchmark),` +
    ` iowait ${m.iowait.toFixed(2)}, steal ${m.steal.toFixed(2)} cores`
  );
}

interface Verdict {
  line: string;
  met: boolean;
}

/** The issue's targets per section: the mixed load and the replicas, the broadcast. */
function sectionVerdicts(result: SectionResult): Verdict[] {
  const gib = 1024 * 1024;
  const worstRss = Math.max(...result.peakRssKiB);
  const p99 = (targetMs: number) => ({ line: `delivery p99 ${formatMs(result.delay.fromAnswer.p99Ms)} (≤ ${targetMs} ms)`, met: result.delay.fromAnswer.p99Ms <= targetMs });
  const lost = { line: `${fmt(result.lost)} lost (0)`, met: result.lost === 0 && result.received > 0 };
  const rss = { line: `peak RSS ${mib(worstRss)} per gateway process (≤ 1 GiB)`, met: worstRss <= gib };
  const ingest = ingestVerdict(result.ingestLatency, result.quiet);
  switch (result.spec.key) {
    case 'single':
      return [p99(50), lost, ingest];
    case 'broadcast':
      return [p99(100), lost, rss];
    case 'replicas':
      return [p99(150), lost, rss, ingest];
  }
}

function ingestVerdict(during: LatencySummary, quiet: IngestFigures): Verdict {
  const ratio = ingestRatio(during, quiet);
  return { line: `ingest p99 ${formatMs(during.p99Ms)} = ${ratio.toFixed(2)}× quiet ${formatMs(quiet.latency.p99Ms)} (≤ 2×)`, met: ratio <= 2 };
}

function describeVerdicts(checks: Verdict[]): string {
  return checks.map((c) => `${c.line} target ${c.met ? 'met' : 'missed'}`).join('; ');
}

// ---------------------------------------------------------------------------------------------
// Main

const cleanups = new Cleanups();

/** The soft "Max open files" of this process (children inherit it), from /proc. */
function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return undefined;
  }
}

interface Database {
  url: string;
  /** The embedded Postgres's data folder, for its memory and CPU; undefined with DATABASE_URL. */
  dataDir: string | undefined;
  /** Environment for the first gateway: it starts the embedded Postgres. */
  env: NodeJS.ProcessEnv;
}

async function prepareDatabase(): Promise<Database> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) return { url: fromEnv, dataDir: undefined, env: { DATABASE_URL: fromEnv } };
  const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-bench-live-'));
  // As root, the embedded Postgres runs as the `postgres` user, which must be able to enter the folder.
  await fs.chmod(tempDir, 0o777);
  const dataDir = path.join(tempDir, 'postgres');
  const pgPort = await freePort();
  cleanups.push(async () => {
    await stopLeftoverPostgres(dataDir);
    await fs.rm(tempDir, { recursive: true, force: true });
  });
  return {
    url: `postgres://fleetgate:fleetgate@127.0.0.1:${pgPort}/postgres`,
    dataDir,
    env: { FLEETGATE_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort) },
  };
}

async function launchGateway(label: string, options: BenchOptions, env: NodeJS.ProcessEnv, profileDir: string | undefined): Promise<GatewayProcess> {
  const port = await freePort();
  const gateway = startGatewayProcess(label, options, { ...process.env, DATABASE_URL: '', ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, port, profileDir);
  // The gateway drains its batches and stops its embedded Postgres on SIGTERM; give it time.
  cleanups.push(() => stopGateway(gateway, 30_000));
  await waitUntilHealthy(gateway, options.readyTimeoutMs);
  return gateway;
}

/** A fresh database and one gateway process on it, with the fleet registered. */
async function startOneGateway(options: BenchOptions, profileDir: string | undefined) {
  const database = await prepareDatabase();
  const gateway = await launchGateway('gateway', options, database.env, profileDir);
  const registration = new IngestDriver(gateway.origin);
  stderrLine(`registering ${options.boxes} boxes`);
  const fleet = await registerFleet(registration, options).finally(() => registration.close());
  return { gateways: [gateway], databaseUrl: database.url, postgresDataDir: database.dataDir, fleet };
}

/**
 * The mixed load; then the replay storm on a gateway and database of its own (it fills the history it
 * needs first), so its quiet baseline is not the mixed section's 5,000 subscribers being torn down.
 */
async function runSingle(options: BenchOptions, profileDir: string | undefined): Promise<{ single: SectionResult; replay: ReplayResult | undefined }> {
  let single: SectionResult;
  let mark = cleanups.size;
  try {
    const base = await startOneGateway(options, profileDir);
    single = await runSection(
      {
        ...base,
        label: 'one gateway process',
        key: 'single',
        plan: planSubscriptions(options.subscribers, options.watchAll, options.boxes, 1),
        intervalMs: options.intervalMs,
        durationSeconds: options.durationSeconds,
      },
      options,
    );
    printResult(single);
  } finally {
    await cleanups.run(mark);
  }
  if (options.replayClients === 0) return { single, replay: undefined };
  mark = cleanups.size;
  try {
    const replay = await runReplayStorm(await startOneGateway(options, profileDir), options);
    printReplay(replay);
    return { single, replay };
  } finally {
    await cleanups.run(mark);
  }
}

/**
 * The broadcast, on a gateway of its own: memory per subscriber is read against the RSS of a gateway
 * that has held no subscriber yet (a heap grown by an earlier section would hide the subscribers').
 * Then, with that gateway stopped, the bare-websocket baseline with the same subscriber processes' code
 * and connections per process, sending a message of the size and shape the gateway sent.
 */
async function runBroadcast(options: BenchOptions, profileDir: string | undefined): Promise<SectionResult> {
  const mark = cleanups.size;
  let broadcast: SectionResult;
  let sample: Record<string, unknown>;
  try {
    const base = await startOneGateway(options, profileDir);
    broadcast = await runSection(
      {
        ...base,
        label: `broadcast: one gateway process, ${fmt(options.broadcastSubscribers)} subscribers, none filtered, a change every ${options.broadcastIntervalMs} ms`,
        key: 'broadcast',
        plan: planSubscriptions(options.broadcastSubscribers, options.broadcastSubscribers, options.boxes, 1),
        intervalMs: options.broadcastIntervalMs,
        durationSeconds: options.broadcastDurationSeconds,
      },
      options,
    );
    sample = await newestEventAsSubscribersSeeIt(base.gateways[0]!.origin);
  } finally {
    await cleanups.run(mark);
  }
  try {
    broadcast.bare = await runBareBaseline(options, sample);
  } catch (error) {
    broadcast.bare = (error as Error).message;
  }
  printResult(broadcast);
  return broadcast;
}

/** The newest stored event with the subscribers' selection: what a broadcast message carries. */
async function newestEventAsSubscribersSeeIt(origin: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
    body: JSON.stringify({ query: `{ statusEvents(first: 1, orderBy: { field: ID, direction: DESC }) { edges { node { ${EVENT_SELECTION} } } } }` }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { data?: { statusEvents?: { edges: Array<{ node: Record<string, unknown> }> } }; errors?: unknown };
  const node = body.data?.statusEvents?.edges[0]?.node;
  if (!node) throw new Error(`the newest event query was answered ${response.status}: ${JSON.stringify(body.errors ?? body).slice(0, 300)}`);
  return node;
}

/** The bare-websocket baseline of the broadcast: see bench/lib/bare-broadcast.ts. */
interface BareBaseline {
  subscribers: number;
  processes: number;
  broadcasts: number;
  messageBytes: number;
  /** From the bare server's first `socket.send` of a broadcast to each subscriber's receipt. */
  delay: LatencySummary;
  /** How long the server's loop of `socket.send` calls took per broadcast. */
  sendLoop: LatencySummary;
  expected: number;
  received: number;
  duplicates: number;
  lost: number;
  serverCores: number | undefined;
  subscriberCores: number | undefined;
}

/**
 * The same number of subscribers, in processes of the same code and size as the broadcast section's,
 * connected to a bare `ws` server in its own process, which sends a message to every socket once per
 * --broadcast-interval-ms for --broadcast-duration seconds, after a warm-up broadcast reached each.
 */
async function runBareBaseline(options: BenchOptions, sample: Record<string, unknown>): Promise<BareBaseline> {
  const server = new BareBroadcastServer(sample);
  const subscribers: SubscriberProcess[] = [];
  const count = options.broadcastSubscribers;
  let stage = 'connecting subscribers';
  const progress = progressLine(
    'bare ws baseline',
    () => stage,
    () => `subscribed ${fmt(totalOf(subscribers, (p) => p.subscribed))}/${fmt(count)}, received ${fmt(totalOf(subscribers, (p) => p.received))}`,
  );
  try {
    const url = await server.url(options.readyTimeoutMs);
    const processCount = Math.ceil(count / options.connectionsPerProcess);
    const byProcess: SubscriberSpec[][] = Array.from({ length: processCount }, () => []);
    for (let i = 0; i < count; i++) byProcess[i % processCount]!.push({ index: i, url });
    for (const group of byProcess) subscribers.push(new SubscriberProcess(group));
    const connectDeadline = Date.now() + options.readyTimeoutMs;
    while (!subscribers.every((s) => s.progress?.settled)) {
      if (server.exited) throw new Error('the bare websocket server exited');
      if (subscribers.some((s) => s.exited)) throw new Error('a subscriber process exited early');
      if (Date.now() > connectDeadline) throw new Error(`bare baseline: subscribers did not connect within ${options.readyTimeoutMs / 1000} s`);
      await sleep(100);
    }
    if (totalOf(subscribers, (p) => p.subscribed) < count) throw new Error(`bare baseline: only ${totalOf(subscribers, (p) => p.subscribed)} of ${count} subscribers connected`);

    // Warm-up: broadcasts (negative sequence numbers, not measured) until each subscriber has one.
    stage = 'warm-up';
    let warmups = 0;
    const warmDeadline = Date.now() + 30_000;
    while (totalOf(subscribers, (p) => p.withEvent) < count) {
      if (Date.now() > warmDeadline) throw new Error(`bare baseline: ${count - totalOf(subscribers, (p) => p.withEvent)} subscribers received no warm-up broadcast`);
      if (warmups === 0 || Date.now() > warmDeadline - 25_000) await server.broadcast(-++warmups);
      await sleep(250);
    }
    const warmupDeliveries = totalOf(subscribers, (p) => p.received);

    stage = 'measuring';
    const broadcasts = Math.max(1, Math.round((options.broadcastDurationSeconds * 1000) / options.broadcastIntervalMs));
    const cpuBefore = { server: cpuSeconds(server.child.pid), subscribers: sum(subscribers.map((s) => cpuSeconds(s.child.pid))) };
    const started = monotonicMs();
    const sends = new Map<number, BareSend>();
    for (let k = 0; k < broadcasts; k++) {
      await sleep(started + k * options.broadcastIntervalMs - monotonicMs());
      const sent = await server.broadcast(k + 1);
      sends.set(sent.sequence, sent);
    }
    const seconds = (monotonicMs() - started) / 1000;
    const core = (before: number | undefined, after: number | undefined) => (before === undefined || after === undefined ? undefined : (after - before) / seconds);
    const serverCores = core(cpuBefore.server, cpuSeconds(server.child.pid));
    const subscriberCores = core(cpuBefore.subscribers, sum(subscribers.map((s) => cpuSeconds(s.child.pid))));

    stage = 'draining';
    const expected = broadcasts * count;
    const drainDeadline = Date.now() + options.drainMs;
    while (totalOf(subscribers, (p) => p.received) - warmupDeliveries < expected && Date.now() < drainDeadline) await sleep(100);

    stage = 'collecting';
    const receipts = await Promise.all(subscribers.map((s) => s.collect(60_000)));
    const delay = new LatencyHistogram();
    const seen = new Set<number>();
    let duplicates = 0;
    for (const batch of receipts) {
      for (let r = 0; r < batch.subscriber.length; r++) {
        const sent = sends.get(batch.event[r]!);
        if (!sent) continue; // a warm-up broadcast
        const key = sent.sequence * count + batch.subscriber[r]!;
        if (seen.has(key)) {
          duplicates++;
          continue;
        }
        seen.add(key);
        delay.record(batch.at[r]! - sent.startedAt);
      }
    }
    const sendLoop = new LatencyHistogram();
    for (const sent of sends.values()) sendLoop.record(sent.finishedAt - sent.startedAt);
    return {
      subscribers: count,
      processes: processCount,
      broadcasts,
      messageBytes: sends.get(1)?.bytes ?? 0,
      delay: delay.summary(),
      sendLoop: sendLoop.summary(),
      expected,
      received: seen.size,
      duplicates,
      lost: expected - seen.size,
      serverCores,
      subscriberCores,
    };
  } finally {
    progress.stop();
    await Promise.all(subscribers.map((s) => s.close()));
    await server.close();
  }
}

async function runReplicas(options: BenchOptions, profileDir: string | undefined): Promise<SectionResult> {
  const mark = cleanups.size;
  try {
    const database = await prepareDatabase();
    const a = await launchGateway('replica A', options, database.env, profileDir);
    const b = await launchGateway('replica B', options, { DATABASE_URL: database.url }, profileDir);
    const registration = new IngestDriver(a.origin);
    stderrLine(`registering ${options.boxes} boxes`);
    const fleet = await registerFleet(registration, options).finally(() => registration.close());
    const result = await runSection(
      {
        label: 'two replicas: subscribers split between A and B, reports to A only',
        key: 'replicas',
        gateways: [a, b],
        databaseUrl: database.url,
        postgresDataDir: database.dataDir,
        fleet,
        plan: planSubscriptions(options.subscribers, options.watchAll, options.boxes, 2),
        intervalMs: options.intervalMs,
        durationSeconds: options.durationSeconds,
      },
      options,
    );
    printResult(result);
    return result;
  } finally {
    await cleanups.run(mark);
  }
}

async function main(): Promise<number> {
  const bench = parseCommandLine(parseOptions, USAGE);
  if (typeof bench === 'number') return bench;

  // Each subscriber process holds its connections; each gateway holds all of its subscribers'.
  const fdLimit = openFilesLimit();
  const needed = Math.max(bench.subscribers, bench.broadcastDurationSeconds > 0 ? bench.broadcastSubscribers : 0, bench.replayClients) + 256;
  if (fdLimit !== undefined && fdLimit < needed) {
    process.stderr.write(
      `The open-files limit is ${fdLimit}, but a gateway process needs about ${needed} descriptors for ${bench.subscribers} websockets.\n` +
        `Raise it in this shell first (ulimit -n ${Math.max(needed, 65536)}; the hard limit is in /proc/self/limits) or pass fewer --subscribers.\n`,
    );
    return 1;
  }

  const hardTimeout = setTimeout(() => abandon(`hard timeout: the benchmark took more than ${bench.hardTimeoutMs / 1000} s`, 1), bench.hardTimeoutMs);
  process.once('SIGINT', () => abandon('interrupted', 130));
  process.once('SIGTERM', () => abandon('terminated', 143));

  printConditions(bench, fdLimit);
  let profileDir: string | undefined;
  if (bench.profile) {
    profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-live-profile-'));
    stderrLine(`CPU profiles of the gateways go to ${profileDir} (written when they stop)`);
  }
  try {
    const titles: Record<SectionSpec['key'], string> = { single: 'mixed', broadcast: 'broadcast', replicas: 'two replicas' };
    const judged: Array<{ title: string; checks: Verdict[]; note?: string }> = [];
    // Wrong answers, as opposed to slow ones: the run fails.
    const wrong: string[] = [];
    const judge = (result: SectionResult) => {
      const bare = result.bare;
      const note = bare === undefined ? undefined : typeof bare === 'string' ? `bare ws baseline failed: ${bare}` : bareRatio(result, bare);
      judged.push({ title: titles[result.spec.key], checks: sectionVerdicts(result), note });
      if (result.lost !== 0) wrong.push(`${titles[result.spec.key]}: ${fmt(result.lost)} deliveries lost`);
    };
    if (bench.single) {
      const { single, replay } = await runSingle(bench, profileDir);
      judge(single);
      if (replay) {
        judged.push({ title: 'replay storm', checks: replayVerdicts(replay) });
        if (replay.check.exact !== replay.check.clients) wrong.push(`replay storm: ${fmt(replay.check.clients - replay.check.exact)} clients not exact`);
      }
      if (bench.broadcastDurationSeconds > 0) judge(await runBroadcast(bench, profileDir));
    }
    if (bench.replicas) judge(await runReplicas(bench, profileDir));

    process.stdout.write('targets\n');
    for (const { title, checks, note } of judged) {
      process.stdout.write(`  ${title.padEnd(13)} ${describeVerdicts(checks)}\n`);
      if (note) process.stdout.write(`  ${''.padEnd(13)} ${note}\n`);
    }
    if (profileDir) process.stdout.write(`CPU profiles: ${profileDir}\n`);
    if (wrong.length) {
      process.stdout.write(`FAILED: ${wrong.join('; ')} (see above)\n`);
      return 1;
    }
    process.stdout.write('done; gateways and subscriber processes stopped, temporary files removed\n');
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
  cleanups.abandon(`${reason}; stopping the gateways`, exitCode);
}

if (process.env[SUBSCRIBER_ROLE_ENV]) runSubscriberProcess();
else process.exitCode = await main();
