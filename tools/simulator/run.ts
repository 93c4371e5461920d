import { Agent } from 'undici';
import { MEDIA_DEVICE_MONITOR_REPORT_PEROID } from '../../src/box-api/config-keys';
import { startBoxApi, type BoxApiServer } from './box-api';
import { createFleet, type FleetFormat, type SimulatedBox } from './fleet';
import { LatencyHistogram, type LatencySummary } from './latency';
import { logIn, type LoginOutcome } from './login';

export interface SimulatorOptions {
  /** Number of simulated boxes. */
  boxes: number;
  /** Capture devices per box. */
  devicesPerBox: number;
  /** Seconds between a box's reports (each ±10%); boxes may change theirs at runtime. */
  reportPeriodSeconds: number;
  format: FleetFormat;
  /** Where every box reports at start, e.g. `http://localhost:4000/DeviceStatus`. */
  url: string;
  /** Seed of every id, name and status flip: the same seed reports the same boxes and devices. */
  seed: number;
  /** Probability that a device flips online/offline between two reports of its box. */
  flipRate: number;
  /** Most keep-alive connections per target origin; reports beyond that wait in the client's queue. */
  connections: number;
  /** A report not answered within this many ms counts as failed (`timeout`). */
  requestTimeoutMs: number;
  /** Stop after this many seconds. Default: run until `reportsPerBox` or the signal. */
  durationSeconds?: number;
  /** Stop once every box has sent this many reports. */
  reportsPerBox?: number;
  /** Called every `progressIntervalMs` with rates over the last interval and running totals. */
  onProgress?: (progress: SimulatorProgress) => void;
  /** Default 1000. */
  progressIntervalMs?: number;
  /**
   * Serve each box's own REST API (setconfigs, getconfigs) over HTTP, as a real box does on port 5555,
   * and obey it: a new MEDIA_DEVICE_MONITOR_URL or report period changes where and how often the box
   * reports. Box n listens on `basePort + n`, or on a free port of its own when `basePort` is 0 or
   * unset; `SimulatedBox.apiPort` says which (and older boxes report it as `gateway_port`). Host
   * default 127.0.0.1. Unset or `false`: no API (the CLI serves it unless `--no-api`).
   */
  boxApi?: { host?: string; basePort?: number } | false;
  /**
   * Login mode: each box first logs in at `url` with its licence key and hardware serial, and reports
   * where and how often the reply says (`url` above is not used). A box whose login fails tries again
   * after 1, 2, 4 ... s (at most 60 s) and reports nothing meanwhile; a box whose hardware is replaced
   * (`SimulatedBox.replaceHardware`) logs in again before its next report. `onOutcome` hears every login.
   */
  login?: { url: string; onOutcome?: (box: SimulatedBox, outcome: LoginOutcome) => void };
}

export const SIMULATOR_DEFAULTS = {
  boxes: 50,
  devicesPerBox: 8,
  reportPeriodSeconds: 5,
  format: 'new',
  url: 'http://localhost:4000/DeviceStatus',
  seed: 1,
  flipRate: 0.02,
  connections: 32,
  requestTimeoutMs: 10_000,
} as const satisfies Partial<SimulatorOptions>;

export interface SimulatorProgress {
  elapsedMs: number;
  sentPerSecond: number;
  ackedPerSecond: number;
  failedPerSecond: number;
  sent: number;
  acked: number;
  failed: number;
  inFlight: number;
}

export type StopReason = 'reports-per-box' | 'duration' | 'signal';

export interface SimulatorTotals {
  elapsedMs: number;
  stoppedBy: StopReason;
  /** Reports posted; every one ends as acked or failed before the totals are returned. */
  sent: number;
  /** Answered 2xx. */
  acked: number;
  /** Answered otherwise, or no answer (network error, timeout, aborted at stop). */
  failed: number;
  /** Count per HTTP status answered, e.g. `{ "200": 950, "503": 50 }`. */
  byStatus: Record<string, number>;
  /** Count per kind of request that got no answer, e.g. `{ "ECONNREFUSED": 3, "timeout": 1 }`. */
  byError: Record<string, number>;
  /** Time to a complete answer, over answered requests; includes waiting for a free connection. */
  latency: LatencySummary;
  /** Device status flips carried by the reports sent. */
  deviceFlips: number;
  /** Login mode only: logins that succeeded, refusals by vendor code (or HTTP status), and logins with no answer. */
  logins?: { ok: number; refused: Record<string, number>; failed: Record<string, number> };
}

export interface SimulatorContext {
  /** Aborting stops the run: no new reports, in-flight ones get a short grace, then totals. */
  signal?: AbortSignal;
  /** Boxes to drive instead of `createFleet(options)`, for callers that reach into them while running. */
  fleet?: SimulatedBox[];
  /**
   * Called once every box API listens (with `boxApi`), before the first report is planned: e.g. to
   * tell the gateway where each box's API is. Throwing ends the run with that error.
   */
  onReady?: (apis: readonly BoxApiServer[], fleet: readonly SimulatedBox[]) => Promise<void> | void;
}

const JSON_HEADERS = { 'content-type': 'application/json', 'user-agent': 'fleetgate-simulator' };
/**
 * After a login the first report is planned within this share of the period, so that it is stored
 * within one period of the login, its own round trip included (as a box that reports at once would).
 */
const FIRST_REPORT_AFTER_LOGIN = 0.9;
/** How long reports in flight may still finish after Ctrl-C or `durationSeconds`. */
const STOP_GRACE_MS = 2_000;

interface Target {
  origin: string;
  path: string;
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function sortedRecord(map: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...map].sort(([a], [b]) => a.localeCompare(b)));
}

/** One run over a fleet: a timer per box, an undici agent shared by all, counters. */
class Simulation {
  private readonly agent: Agent;
  /** Aborts the requests still in flight once the stop grace is over. */
  private readonly abortInFlight = new AbortController();
  /** Each box's next report, and when it is due (performance.now() time). */
  private readonly timers = new Map<SimulatedBox, { timer: NodeJS.Timeout; dueAt: number }>();
  private readonly reportsSent = new Map<SimulatedBox, number>();
  private readonly targets = new Map<string, Target>();
  private readonly latency = new LatencyHistogram();
  private readonly byStatus = new Map<string, number>();
  private readonly byError = new Map<string, number>();
  private sent = 0;
  private acked = 0;
  private failed = 0;
  private deviceFlips = 0;
  private inFlight = 0;
  private loginsInFlight = 0;
  private loginsOk = 0;
  private readonly loginsRefused = new Map<string, number>();
  private readonly loginsFailed = new Map<string, number>();
  private boxesDone = 0;
  private stopReason: StopReason | undefined;
  private onStop: (reason: StopReason) => void = () => {};
  private onIdle: (() => void) | undefined;

  constructor(
    private readonly options: SimulatorOptions,
    private readonly fleet: SimulatedBox[],
  ) {
    this.agent = new Agent({
      connections: options.connections,
      keepAliveTimeout: 30_000,
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
  }

  async run(signal: AbortSignal | undefined, onReady?: SimulatorContext['onReady']): Promise<SimulatorTotals> {
    const apis = await this.startApis();
    try {
      await onReady?.(apis, this.fleet);
      return await this.runReports(signal);
    } finally {
      await Promise.all(apis.map((api) => api.close()));
      await this.agent.close().catch(() => this.agent.destroy());
    }
  }

  /** One API server per box, each on its own port; none without `options.boxApi`. */
  private async startApis(): Promise<BoxApiServer[]> {
    const { boxApi } = this.options;
    if (!boxApi) return [];
    const apis: BoxApiServer[] = [];
    try {
      for (const [index, box] of this.fleet.entries()) {
        apis.push(
          await startBoxApi(box, {
            host: boxApi.host,
            port: boxApi.basePort ? boxApi.basePort + index : 0,
            onChange: (changed, keys) => {
              if (keys.includes(MEDIA_DEVICE_MONITOR_REPORT_PEROID)) this.periodChanged(changed);
            },
          }),
        );
      }
    } catch (error) {
      await Promise.all(apis.map((api) => api.close()));
      throw error;
    }
    return apis;
  }

  private async runReports(signal: AbortSignal | undefined): Promise<SimulatorTotals> {
    const started = performance.now();
    const stopped = new Promise<StopReason>((resolve) => (this.onStop = resolve));
    const onAbort = () => this.stop('signal');
    if (signal?.aborted) this.stop('signal');
    signal?.addEventListener('abort', onAbort, { once: true });
    const durationTimer =
      this.options.durationSeconds === undefined
        ? undefined
        : setTimeout(() => this.stop('duration'), this.options.durationSeconds * 1000);
    const progressTimer = this.startProgress(started);

    for (const box of this.fleet) {
      if (this.options.login) void this.logInBox(box);
      else this.schedule(box, box.firstDelayMs());
    }
    if (this.fleet.length === 0) this.stop('reports-per-box');

    const reason = await stopped;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    // Reports-per-box ends naturally: let the last reports finish or time out on their own.
    await this.drain(reason === 'reports-per-box' ? undefined : Math.min(STOP_GRACE_MS, this.options.requestTimeoutMs));
    clearTimeout(durationTimer);
    clearInterval(progressTimer);
    signal?.removeEventListener('abort', onAbort);
    return this.totals(reason, performance.now() - started);
  }

  private stop(reason: StopReason): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    this.onStop(reason);
  }

  private startProgress(started: number): NodeJS.Timeout | undefined {
    const { onProgress } = this.options;
    if (!onProgress) return undefined;
    const intervalMs = this.options.progressIntervalMs ?? 1000;
    let last = { at: started, sent: 0, acked: 0, failed: 0 };
    const timer = setInterval(() => {
      const now = performance.now();
      const seconds = (now - last.at) / 1000;
      onProgress({
        elapsedMs: now - started,
        sentPerSecond: (this.sent - last.sent) / seconds,
        ackedPerSecond: (this.acked - last.acked) / seconds,
        failedPerSecond: (this.failed - last.failed) / seconds,
        sent: this.sent,
        acked: this.acked,
        failed: this.failed,
        inFlight: this.inFlight,
      });
      last = { at: now, sent: this.sent, acked: this.acked, failed: this.failed };
    }, intervalMs);
    timer.unref();
    return timer;
  }

  private schedule(box: SimulatedBox, delayMs: number): void {
    this.timers.set(box, { timer: setTimeout(() => this.tick(box), delayMs), dueAt: performance.now() + delayMs });
  }

  /**
   * The box's period was changed through its API. A shorter one takes effect at once: the next report
   * comes within one new period rather than at the end of the old one. A longer one takes effect
   * after the report already planned.
   */
  private periodChanged(box: SimulatedBox): void {
    const pending = this.timers.get(box);
    if (!pending || this.stopReason !== undefined) return;
    const delayMs = box.nextDelayMs();
    if (pending.dueAt - performance.now() > delayMs) {
      clearTimeout(pending.timer);
      this.schedule(box, delayMs);
    }
  }

  /** A box's report is due: build it, post it without waiting, and plan the next one. */
  private tick(box: SimulatedBox): void {
    this.timers.delete(box);
    if (this.stopReason !== undefined) return;
    // New hardware (or no successful login yet): log in before reporting again.
    if (this.options.login && box.loggedInGeneration !== box.hardwareGeneration) return void this.logInBox(box);
    // A silenced box keeps its clock but sends nothing, so it resumes on its own rhythm when recovered.
    if (box.silent) return this.schedule(box, box.nextDelayMs());
    const { report, flipped } = box.nextReport(this.options.flipRate);
    this.deviceFlips += flipped.length;
    void this.post(box.monitorUrl, JSON.stringify(report));

    const sent = (this.reportsSent.get(box) ?? 0) + 1;
    this.reportsSent.set(box, sent);
    const { reportsPerBox } = this.options;
    if (reportsPerBox !== undefined && sent >= reportsPerBox) {
      this.boxesDone++;
      if (this.boxesDone === this.fleet.length) this.stop('reports-per-box');
      return;
    }
    // Period and URL are read again at every tick: a box can be reconfigured while running.
    this.schedule(box, box.nextDelayMs());
  }

  /**
   * Logs the box in; on success it reports where and how often the reply said, its first report within
   * one period. On failure it tries again later: 1, 2, 4 ... s, at most a minute apart.
   */
  private async logInBox(box: SimulatedBox, attempt = 0): Promise<void> {
    const login = this.options.login!;
    const generation = box.hardwareGeneration;
    this.loginsInFlight++;
    let outcome: LoginOutcome;
    try {
      outcome = await logIn(this.agent, login.url, box, { timeoutMs: this.options.requestTimeoutMs, signal: this.abortInFlight.signal });
    } finally {
      this.loginsInFlight--;
      if (this.inFlight + this.loginsInFlight === 0) this.onIdle?.();
    }
    if (outcome.kind === 'ok') this.loginsOk++;
    else if (outcome.kind === 'refused') increment(this.loginsRefused, outcome.code ?? `HTTP ${outcome.status}`);
    else increment(this.loginsFailed, outcome.error);
    login.onOutcome?.(box, outcome);
    if (this.stopReason !== undefined) return;
    if (outcome.kind !== 'ok') {
      const delayMs = Math.min(60_000, 1000 * 2 ** attempt);
      this.timers.set(box, { timer: setTimeout(() => void this.logInBox(box, attempt + 1), delayMs), dueAt: performance.now() + delayMs });
      return;
    }
    box.monitorUrl = outcome.monitorUrl;
    box.reportPeriodSeconds = outcome.reportPeriodSeconds;
    box.loggedInGeneration = generation;
    if (box.replaceAfterLogin) {
      box.replaceAfterLogin = false;
      box.replaceHardware();
    }
    this.schedule(box, box.firstDelayMs() * FIRST_REPORT_AFTER_LOGIN);
  }

  /** Parsed once per distinct URL; a URL set at runtime may be garbage, which counts as a failure. */
  private target(url: string): Target | undefined {
    let target = this.targets.get(url);
    if (target) return target;
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
      target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    } catch {
      return undefined;
    }
    this.targets.set(url, target);
    return target;
  }

  private async post(url: string, body: string): Promise<void> {
    this.sent++;
    const target = this.target(url);
    if (!target) {
      this.failed++;
      increment(this.byError, 'invalid URL');
      return;
    }
    this.inFlight++;
    const timeout = AbortSignal.timeout(this.options.requestTimeoutMs);
    const started = performance.now();
    try {
      const response = await this.agent.request({
        ...target,
        method: 'POST',
        headers: JSON_HEADERS,
        body,
        signal: AbortSignal.any([timeout, this.abortInFlight.signal]),
      });
      await response.body.dump();
      this.latency.record(performance.now() - started);
      increment(this.byStatus, String(response.statusCode));
      if (response.statusCode >= 200 && response.statusCode < 300) this.acked++;
      else this.failed++;
    } catch (error) {
      this.failed++;
      increment(this.byError, this.errorKind(error, timeout));
    } finally {
      this.inFlight--;
      if (this.inFlight + this.loginsInFlight === 0) this.onIdle?.();
    }
  }

  private errorKind(error: unknown, timeout: AbortSignal): string {
    if (timeout.aborted) return 'timeout';
    if (this.abortInFlight.signal.aborted) return 'aborted at stop';
    const e = error as { code?: unknown; name?: unknown } | undefined;
    if (typeof e?.code === 'string') return e.code;
    return typeof e?.name === 'string' ? e.name : 'unknown error';
  }

  /** Waits for the reports in flight; after `graceMs` (if given) aborts the rest. */
  private async drain(graceMs: number | undefined): Promise<void> {
    if (this.inFlight + this.loginsInFlight === 0) return;
    const idle = new Promise<void>((resolve) => (this.onIdle = resolve));
    const grace = graceMs === undefined ? undefined : setTimeout(() => this.abortInFlight.abort(), graceMs);
    await idle;
    clearTimeout(grace);
  }

  private totals(stoppedBy: StopReason, elapsedMs: number): SimulatorTotals {
    return {
      elapsedMs,
      stoppedBy,
      sent: this.sent,
      acked: this.acked,
      failed: this.failed,
      byStatus: sortedRecord(this.byStatus),
      byError: sortedRecord(this.byError),
      latency: this.latency.summary(),
      deviceFlips: this.deviceFlips,
      ...(this.options.login
        ? { logins: { ok: this.loginsOk, refused: sortedRecord(this.loginsRefused), failed: sortedRecord(this.loginsFailed) } }
        : {}),
    };
  }
}

/**
 * Runs a simulated fleet against `options.url` until every box sent `reportsPerBox` reports,
 * `durationSeconds` passed, or `signal` aborts; then returns the totals. Never throws for a failed report.
 */
export async function runSimulator(options: SimulatorOptions, context: SimulatorContext = {}): Promise<SimulatorTotals> {
  const fleet =
    context.fleet ??
    createFleet({
      boxes: options.boxes,
      devicesPerBox: options.devicesPerBox,
      format: options.format,
      seed: options.seed,
      reportPeriodSeconds: options.reportPeriodSeconds,
      monitorUrl: options.url,
    });
  return new Simulation(options, fleet).run(context.signal, context.onReady);
}
