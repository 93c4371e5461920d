import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { BoxApiServer } from './box-api';
import { FAULT_COMMANDS, parseDuration, startFaultControls, type TimedFaults } from './fault-controls';
import { FleetFaults, parseFaultAmount } from './faults';
import { createFleet, type BoxIdentity, type FleetFormat, type SimulatedBox } from './fleet';
import { parseKeyList, type LoginOutcome } from './login';
import { formatMs } from './latency';
import { registerApiPorts } from './register';
import { runSimulator, SIMULATOR_DEFAULTS, type SimulatorOptions, type SimulatorProgress, type SimulatorTotals } from './run';
import { startConsoleWatcher, watchOnly } from './watch';

const USAGE = `Simulates a fleet of SOPHON SE AI boxes posting device-status reports.

Usage: npm run simulate -- [options]

  --boxes N            simulated boxes (default ${SIMULATOR_DEFAULTS.boxes})
  --devices N          capture devices per box (default ${SIMULATOR_DEFAULTS.devicesPerBox})
  --period S           seconds between a box's reports, ±10% (default ${SIMULATOR_DEFAULTS.reportPeriodSeconds})
  --format F           new | old | mixed (default ${SIMULATOR_DEFAULTS.format}); mixed alternates boxes
  --url URL            report receiver (default ${SIMULATOR_DEFAULTS.url})
  --seed N             seed of all ids and flips; same seed, same fleet (default ${SIMULATOR_DEFAULTS.seed})
  --flip-rate P        probability a device flips online/offline per report (default ${SIMULATOR_DEFAULTS.flipRate})
  --connections N      keep-alive connections to the receiver (default ${SIMULATOR_DEFAULTS.connections})
  --timeout S          seconds before an unanswered report fails (default ${SIMULATOR_DEFAULTS.requestTimeoutMs / 1000})
  --duration S         stop after S seconds (default: until Ctrl-C)
  --reports-per-box N  stop once every box has sent N reports
  --json               print the totals as JSON
  --silence AMOUNT     silence a share (10%) or a count (25) of the boxes: they stop reporting
  --silence-after T    ... after T (30s, 2m; default 0s)
  --flap AMOUNT        make a share (5%) or a count of all devices flap: online/offline at every report
  --flap-after T       ... after T (default 0s)
                       Which boxes and devices: drawn from --seed, so a re-run picks the same ones.
  --login-url URL      login mode: each box first logs in there (GET ?dev_sno=<key>&device_sn=<serial>, as
                       newer boxes do) and reports where and how often the reply says; --url is not used
  --keys FILE          licence keys for the boxes: the CSV of \`npm run boxes -- issue N\` (its license_key
                       column, and device_sn when present) or one key per line; --boxes defaults to their number
  --replaced-hardware AMOUNT
                       replace the hardware of a share (10%) or count (2) of the boxes: same key, new serial;
                       they log in again and the gateway refuses the key (600002) until it is rebound
  --replaced-after T   ... after T (default 0s: right after each one's first login)
  --watch              also print every live change the gateway publishes (graphql-ws on --graphql-url):
                       time, box, device, from → to, and ms since the gateway received the report;
                       reconnects by itself and replays what it missed meanwhile
  --watch-only         watch without sending reports (until Ctrl-C or --duration)
  -h, --help           this text

Each box also serves its own REST API (POST /sophon/v2/face/setconfigs, getconfigs, addmediadevice and
deletemediadevice, as a real box on port 5555) and obeys it: a new MEDIA_DEVICE_MONITOR_URL or
MEDIA_DEVICE_MONITOR_REPORT_PEROID changes where and how often it reports (a shorter period within one
new period); a device added or deleted (at most 16 per box) is in or out of its next report.
  --api-host H         interface the box APIs listen on (default 127.0.0.1)
  --api-base-port N    box n listens on N + n (default: a free port each)
  --list               print each box's licence key, format and API address at start
  --register-api-ports tell the gateway each box's API port (registerBox, or updateBox when it knows
                       the box) through its GraphQL API before the first report
  --graphql-url URL    the gateway's GraphQL endpoint (default: --url's origin + /graphql)
  --token T            API token for --watch (viewer) and --register-api-ports (operator);
                       default: the FLEETGATE_TOKEN environment variable
  --no-api             no box APIs (for large fleets: one listening socket per box)

${FAULT_COMMANDS}

Progress goes to stderr once a second; totals go to stdout at the end.
Exit status: 0, or 1 when reports were sent but none was acknowledged, 2 for bad options.`;

class UsageError extends Error {}

interface CliOptions {
  simulator: SimulatorOptions;
  json: boolean;
  list: boolean;
  /** The GraphQL endpoint to register API ports with; undefined: do not register. */
  registerAt: string | undefined;
  /** Print live changes from `graphqlUrl` beside the reports, or instead of them. */
  watch: 'off' | 'also' | 'only';
  graphqlUrl: string;
  /** API token for GraphQL (--token, else FLEETGATE_TOKEN). */
  token: string | undefined;
  faults: TimedFaults;
  /** Licence keys (and serials) from --keys: box n takes identity n. */
  identities: BoxIdentity[] | undefined;
}

function numberOption(
  raw: string | undefined,
  name: string,
  { min, max, integer = false }: { min: number; max: number; integer?: boolean },
): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} ${raw}: expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

function formatOption(raw: string | undefined): FleetFormat | undefined {
  if (raw === undefined || raw === 'new' || raw === 'old' || raw === 'mixed') return raw;
  throw new UsageError(`--format ${raw}: expected new, old or mixed`);
}

function urlOption(raw: string | undefined, name = 'url'): string | undefined {
  if (raw === undefined) return undefined;
  const protocol = URL.canParse(raw) ? new URL(raw).protocol : '';
  if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`--${name} ${raw}: expected an http:// or https:// URL`);
  return raw;
}

function parseCli(argv: string[]): CliOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      boxes: { type: 'string' },
      devices: { type: 'string' },
      period: { type: 'string' },
      format: { type: 'string' },
      url: { type: 'string' },
      seed: { type: 'string' },
      'flip-rate': { type: 'string' },
      connections: { type: 'string' },
      timeout: { type: 'string' },
      duration: { type: 'string' },
      'reports-per-box': { type: 'string' },
      'api-host': { type: 'string' },
      'api-base-port': { type: 'string' },
      list: { type: 'boolean', default: false },
      'register-api-ports': { type: 'boolean', default: false },
      'graphql-url': { type: 'string' },
      token: { type: 'string' },
      'no-api': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      silence: { type: 'string' },
      'silence-after': { type: 'string' },
      flap: { type: 'string' },
      'flap-after': { type: 'string' },
      watch: { type: 'boolean', default: false },
      'watch-only': { type: 'boolean', default: false },
      'login-url': { type: 'string' },
      keys: { type: 'string' },
      'replaced-hardware': { type: 'string' },
      'replaced-after': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const timeoutSeconds = numberOption(values.timeout, 'timeout', { min: 0.01, max: 3600 });
  const api = !values['no-api'];
  if (!api && (values['register-api-ports'] || values['api-base-port'] !== undefined || values['api-host'] !== undefined)) {
    throw new UsageError('--no-api: the box APIs are off, so --api-host, --api-base-port and --register-api-ports do not apply');
  }
  const basePort = numberOption(values['api-base-port'], 'api-base-port', { min: 1, max: 65_535, integer: true });
  const loginUrl = urlOption(values['login-url'], 'login-url');
  const identities = values.keys === undefined ? undefined : keysOption(values.keys);
  const boxes = numberOption(values.boxes, 'boxes', { min: 1, max: 1_000_000, integer: true }) ?? identities?.length;
  if (identities && boxes! > identities.length) {
    throw new UsageError(`--boxes ${boxes}: --keys ${values.keys} has only ${identities.length} licence keys`);
  }
  if (values['replaced-hardware'] !== undefined && !loginUrl) throw new UsageError('--replaced-hardware needs --login-url: a replaced box shows itself at its next login');
  const url = urlOption(values.url) ?? (loginUrl ? `${new URL(loginUrl).origin}/DeviceStatus` : SIMULATOR_DEFAULTS.url);
  const graphqlUrl = urlOption(values['graphql-url'], 'graphql-url') ?? `${new URL(url).origin}/graphql`;
  return {
    json: values.json,
    list: values.list,
    registerAt: values['register-api-ports'] ? graphqlUrl : undefined,
    watch: values['watch-only'] ? 'only' : values.watch ? 'also' : 'off',
    graphqlUrl,
    token: values.token || process.env.FLEETGATE_TOKEN || undefined,
    faults: {
      silence: faultOption(values.silence, 'silence'),
      silenceAfterMs: durationOption(values['silence-after'], 'silence-after'),
      flap: faultOption(values.flap, 'flap'),
      flapAfterMs: durationOption(values['flap-after'], 'flap-after'),
      replace: faultOption(values['replaced-hardware'], 'replaced-hardware'),
      replaceAfterMs: durationOption(values['replaced-after'], 'replaced-after'),
    },
    identities,
    simulator: {
      ...SIMULATOR_DEFAULTS,
      ...defined({
        boxes,
        devicesPerBox: numberOption(values.devices, 'devices', { min: 0, max: 4096, integer: true }),
        reportPeriodSeconds: numberOption(values.period, 'period', { min: 0.01, max: 86_400 }),
        format: formatOption(values.format),
        url: urlOption(values.url),
        seed: numberOption(values.seed, 'seed', { min: 0, max: 2 ** 32 - 1, integer: true }),
        flipRate: numberOption(values['flip-rate'], 'flip-rate', { min: 0, max: 1 }),
        connections: numberOption(values.connections, 'connections', { min: 1, max: 10_000, integer: true }),
        requestTimeoutMs: timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000,
        durationSeconds: numberOption(values.duration, 'duration', { min: 0, max: 31_536_000 }),
        reportsPerBox: numberOption(values['reports-per-box'], 'reports-per-box', { min: 1, max: 1e9, integer: true }),
        boxApi: api ? { host: values['api-host'] ?? '127.0.0.1', basePort } : false,
        login: loginUrl ? { url: loginUrl } : undefined,
      }),
    },
  };
}

function keysOption(file: string): BoxIdentity[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--keys ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return parseKeyList(text);
  } catch (error) {
    throw new UsageError(`--keys ${file}: ${(error as Error).message}`);
  }
}

function faultOption(raw: string | undefined, name: string) {
  try {
    return raw === undefined ? undefined : parseFaultAmount(raw);
  } catch (error) {
    throw new UsageError(`--${name} ${(error as Error).message}`);
  }
}

function durationOption(raw: string | undefined, name: string): number {
  try {
    return raw === undefined ? 0 : parseDuration(raw);
  } catch (error) {
    throw new UsageError(`--${name} ${(error as Error).message}`);
  }
}

/** Drops unset keys so they do not overwrite the defaults they were spread over. */
function defined<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Progress on stderr: one line rewritten in place on a terminal, one line per second in a log. */
function progressPrinter(): { print(progress: SimulatorProgress): void; end(): void } {
  const tty = process.stderr.isTTY;
  let printed = false;
  return {
    print(p) {
      const line =
        `${(p.elapsedMs / 1000).toFixed(0).padStart(5)}s` +
        `  sent ${p.sentPerSecond.toFixed(0)}/s acked ${p.ackedPerSecond.toFixed(0)}/s failed ${p.failedPerSecond.toFixed(0)}/s` +
        `  | total sent ${p.sent} acked ${p.acked} failed ${p.failed}, in flight ${p.inFlight}`;
      process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
      printed = true;
    },
    end() {
      if (tty && printed) process.stderr.write('\n');
    },
  };
}

/** `40001-40050`, or the first few ports when they are not consecutive. */
function describePorts(apis: readonly BoxApiServer[]): string {
  const ports = apis.map((api) => api.port);
  const consecutive = ports.every((port, i) => i === 0 || port === ports[i - 1]! + 1);
  if (consecutive) return ports.length === 1 ? String(ports[0]) : `${ports[0]}-${ports[ports.length - 1]}`;
  return ports.length <= 5 ? ports.join(', ') : `${ports.slice(0, 5).join(', ')}, ... (--list shows all)`;
}

function describeCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? 'none' : entries.map(([key, n]) => `${key}: ${n}`).join(', ');
}

/** What the vendor's login codes mean, for the lines the simulator prints. */
const LOGIN_CODES: Record<string, string> = {
  '600000': 'the licence key does not exist (issue it: npm run boxes -- issue, or registerBox)',
  '600002': 'the key is bound to another box (new hardware: rebindBoxHardware)',
};

/**
 * Prints each box's first successful login, and every refusal or failure that differs from the box's
 * previous one (a box retrying keeps quiet until something changes).
 */
function loginPrinter(print: (line: string) => void): (box: SimulatedBox, outcome: LoginOutcome) => void {
  const last = new Map<SimulatedBox, string>();
  /** Lines printed; past the cap the totals count what follows. */
  let printed = 0;
  const CAP = 50;
  return (box, outcome) => {
    const said =
      outcome.kind === 'ok'
        ? `logged in: reports to ${outcome.monitorUrl.replace(/\/DeviceStatus\/[^/?#]+/i, '/DeviceStatus/<secret>')} every ${outcome.reportPeriodSeconds} s`
        : outcome.kind === 'refused'
          ? `login refused (HTTP ${outcome.status}${outcome.code ? `, ${outcome.code}` : ''}): ${(outcome.code && LOGIN_CODES[outcome.code]) || outcome.message || 'no reason given'}; retrying`
          : `login got no answer (${outcome.error}); retrying`;
    const key = outcome.kind === 'ok' ? `ok ${outcome.monitorUrl} ${outcome.reportPeriodSeconds}` : said;
    if (last.get(box) === key) return;
    last.set(box, key);
    if (++printed > CAP) return;
    print(`${box.name} (serial ${box.serialNumber}): ${said}`);
    if (printed === CAP) print(`(${CAP} login lines printed; the totals count the rest)`);
  };
}

const STOPPED_BY: Record<SimulatorTotals['stoppedBy'], string> = {
  'reports-per-box': 'every box sent its reports',
  duration: 'duration reached',
  signal: 'interrupted',
};

function printTotals(totals: SimulatorTotals): void {
  const { latency } = totals;
  process.stdout.write(
    [
      `totals after ${(totals.elapsedMs / 1000).toFixed(1)} s (${STOPPED_BY[totals.stoppedBy]}):`,
      `  sent          ${totals.sent}`,
      `  acknowledged  ${totals.acked}`,
      `  failed        ${totals.failed}`,
      `  by status     ${describeCounts(totals.byStatus)}`,
      `  no answer     ${describeCounts(totals.byError)}`,
      Object.keys(totals.byStatus).length === 0
        ? '  latency       no answers'
        : `  latency       p50 ${formatMs(latency.p50Ms)}, p99 ${formatMs(latency.p99Ms)}, max ${formatMs(latency.maxMs)}`,
      `  device flips  ${totals.deviceFlips}`,
      ...(totals.logins
        ? [
            `  logins ok     ${totals.logins.ok}`,
            `  refused       ${describeCounts(totals.logins.refused)}`,
            `  login failed  ${describeCounts(totals.logins.failed)}`,
          ]
        : []),
      '',
    ].join('\n'),
  );
}

async function main(): Promise<number> {
  let cli: CliOptions | 'help';
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (cli === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const { simulator } = cli;
  const stop = new AbortController();
  process.on('SIGINT', () => {
    // A second Ctrl-C means "now": do not wait for the reports still in flight.
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}stopping (Ctrl-C again to quit at once)\n`);
    stop.abort();
  });
  process.on('SIGTERM', () => stop.abort());
  if (cli.watch === 'only') return watchOnly(cli.graphqlUrl, cli.token, stop.signal, simulator.durationSeconds);
  const watcher = cli.watch === 'also' ? startConsoleWatcher(cli.graphqlUrl, cli.token) : undefined;

  process.stderr.write(
    simulator.login
      ? `simulating ${simulator.boxes} boxes × ${simulator.devicesPerBox} devices, ${simulator.format} format,` +
          ` logging in at ${simulator.login.url}${cli.identities ? ' with the keys given' : ''}, then reporting where and as often as the reply says (seed ${simulator.seed})\n`
      : `simulating ${simulator.boxes} boxes × ${simulator.devicesPerBox} devices, ${simulator.format} format,` +
          ` a report every ${simulator.reportPeriodSeconds} s ±10%, to ${simulator.url} (seed ${simulator.seed})\n`,
  );
  const onReady = async (apis: readonly BoxApiServer[]) => {
    if (apis.length > 0) process.stderr.write(`box APIs listening on ${apis[0]!.host}, ports ${describePorts(apis)}\n`);
    if (cli.list) {
      for (const { box, host, port } of apis.length > 0 ? apis : []) process.stdout.write(`${box.licenseKey}  ${box.format}  ${box.name}  ${host}:${port}\n`);
    }
    if (cli.registerAt) {
      // An API on a wildcard interface: the gateway calls the address the box's reports come from.
      const host = simulator.boxApi ? simulator.boxApi.host : undefined;
      const address = host === '0.0.0.0' || host === '::' ? undefined : host;
      const registered = await registerApiPorts(cli.registerAt, apis, { address, token: cli.token });
      const fresh = registered.filter((r) => r.action === 'registered').length;
      process.stderr.write(`told ${cli.registerAt} the API ports of ${registered.length} boxes (${fresh} registered, ${registered.length - fresh} updated)\n`);
    }
  };
  const progress = progressPrinter();
  const fleet = createFleet({ ...simulator, monitorUrl: simulator.url, identities: cli.identities });
  const login = simulator.login && { ...simulator.login, onOutcome: loginPrinter((line) => (progress.end(), process.stderr.write(`${line}\n`))) };
  const stopFaults = startFaultControls(new FleetFaults(fleet, simulator.seed), cli.faults, process.stdin, (line) => {
    progress.end();
    process.stderr.write(`${line}\n`);
  });
  let totals: SimulatorTotals;
  try {
    totals = await runSimulator({ ...simulator, login, onProgress: progress.print }, { signal: stop.signal, onReady, fleet });
  } catch (error) {
    stopFaults();
    progress.end();
    await watcher?.stop();
    process.stderr.write(`simulator could not start: ${(error as Error).message}\n`);
    return 1;
  }
  stopFaults();
  progress.end();
  await watcher?.stop();
  if (cli.json) process.stdout.write(`${JSON.stringify(totals, null, 2)}\n`);
  else printTotals(totals);
  return totals.sent > 0 && totals.acked === 0 ? 1 : 0;
}

process.exitCode = await main();
