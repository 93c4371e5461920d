// Load for fault runs (bench/faults.ts and test/faults/): boxes that remember the answer to every
// report they sent, so what the gateway acknowledged can be checked against what Postgres holds.
import pg from 'pg';
import { Pool } from 'undici';
import { createFleet, type DeviceStatusReport, type SimulatedBox } from '../../tools/simulator/fleet';

/** The answer the README documents for a database outage (with `Retry-After`). */
export const DATABASE_UNAVAILABLE = {
  error: { code: 'DATABASE_UNAVAILABLE', message: 'The database is unreachable; the report was not stored. Retry later.', path: null },
} as const;
/** The answer the README documents for a report that reaches a gateway after SIGTERM (with `Retry-After`). */
export const SHUTTING_DOWN = {
  error: { code: 'SHUTTING_DOWN', message: 'This gateway is stopping; nothing was stored. Retry in a moment.', path: null },
} as const;
/** 503 answers with Retry-After that say nothing was stored. */
const UNAVAILABLE_TEXTS = new Set([JSON.stringify(DATABASE_UNAVAILABLE), JSON.stringify(SHUTTING_DOWN)]);

/** Marker devices are named `seq-<n>`: the n-th report of their box. */
const MARKER_PREFIX = 'seq-';

export interface ReportLoadOptions {
  /** The gateway's origin, e.g. `http://127.0.0.1:4000`. */
  url: string;
  /** Boxes, one report in flight each. Even-numbered boxes are marked, odd ones simulated (see BoxLedger). */
  boxes: number;
  /** Devices per box besides the marker. Default 4. */
  devicesPerBox?: number;
  /** Seed of the fleet; its licence keys end in it, so two seeds are two fleets. Default: random. */
  seed?: number;
  /** Probability that a device flips online/offline between two reports. Default 0.01. */
  flipRate?: number;
  /** Pause after a 200 before the box's next report. Default 0: at once, as fast as the gateway answers. */
  pauseMs?: number;
  /** Pause after any other outcome (503, refused connection), so a box does not spin on a gateway that is down. Default 250. */
  retryPauseMs?: number;
  /** A report with no answer after this long counts as unanswered (`timeout`): a hang. Default 30,000. */
  timeoutMs?: number;
  path?: string;
}

/** How the answers to the reports sent in one stretch of time came out. */
export interface AnswerTally {
  sent: number;
  /** 200: the report is stored. */
  acknowledged: number;
  /** 503 with Retry-After and exactly a documented body: the database is unreachable, or the gateway is stopping. */
  unavailable: number;
  /** Any other HTTP answer, including a 503 that differs from the documented one. */
  otherAnswers: number;
  /** The connection was refused: the report never reached a gateway. */
  connectionRefused: number;
  /** No answer on a connection that was open: reset, closed, or `timeout`. The report may or may not be stored. */
  unanswered: number;
  timeouts: number;
  /** Longest time to an HTTP answer, ms. */
  maxAnswerMs: number;
  /** Count per kind: `200`, `503`, `HTTP 500`, `503 (undocumented)`, `ECONNREFUSED`, `timeout`, ... */
  kinds: Map<string, number>;
  /** The first few answers that were neither 200 nor the documented 503. */
  samples: string[];
}

function newTally(): AnswerTally {
  return { sent: 0, acknowledged: 0, unavailable: 0, otherAnswers: 0, connectionRefused: 0, unanswered: 0, timeouts: 0, maxAnswerMs: 0, kinds: new Map(), samples: [] };
}

/**
 * One box and the fate of each of its reports, by number. A marked box adds a new device `seq-<n>` to
 * its n-th report (dropping the previous one), so every report takes the full write path and can be
 * found in `devices` on its own. A simulated box sends what the simulator sends (its list rarely
 * changes, so most reports take the one-UPDATE path) and is checked by its `report_count`.
 */
export interface BoxLedger {
  box: SimulatedBox;
  marked: boolean;
  sent: number;
  acknowledged: number[];
  /** Answered with something other than 200, or the connection was refused: not taken, says the gateway. */
  refused: number[];
  /** No answer on an open connection: in flight at a fault. */
  unanswered: number[];
}

type Outcome =
  | { kind: 'acknowledged' }
  | { kind: 'unavailable' }
  | { kind: 'other'; status: number; text: string }
  | { kind: 'connectionRefused' }
  | { kind: 'unanswered'; error: string };

/** The name an outcome is counted under in `AnswerTally.kinds`. */
function kindOf(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'acknowledged':
      return '200';
    case 'unavailable':
      return '503';
    case 'other':
      return outcome.status === 503 ? '503 (undocumented)' : `HTTP ${outcome.status}`;
    case 'connectionRefused':
      return 'ECONNREFUSED';
    case 'unanswered':
      return outcome.error;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Every box posts its next report as soon as the last one was answered (one in flight per box, as a
 * real box does), on its own keep-alive connection, and keeps going through refusals and outages.
 * Answers are counted into the phase in which their report was sent.
 */
export class ReportLoad {
  readonly ledgers: BoxLedger[];
  readonly total = newTally();
  readonly phases = new Map<string, AnswerTally>();
  inFlight = 0;
  private current: AnswerTally;
  private readonly pool: Pool;
  private posters: Promise<void>[] = [];
  private stopping = false;
  private readonly options: Required<Omit<ReportLoadOptions, 'seed'>> & { seed: number };

  constructor(options: ReportLoadOptions) {
    this.options = {
      devicesPerBox: 4,
      seed: Math.floor(Math.random() * 1_000_000),
      flipRate: 0.01,
      pauseMs: 0,
      retryPauseMs: 250,
      timeoutMs: 30_000,
      path: '/DeviceStatus',
      ...options,
    };
    const fleet = createFleet({
      boxes: this.options.boxes,
      devicesPerBox: this.options.devicesPerBox,
      format: 'mixed',
      seed: this.options.seed,
      reportPeriodSeconds: 1,
      monitorUrl: `${this.options.url}${this.options.path}`,
      initialOfflineRate: 0.05,
    });
    this.ledgers = fleet.map((box, i) => ({ box, marked: i % 2 === 0, sent: 0, acknowledged: [], refused: [], unanswered: [] }));
    this.current = this.phase('start');
    const { timeoutMs } = this.options;
    // One keep-alive connection per box, as each box has its own.
    this.pool = new Pool(this.options.url, {
      connections: this.options.boxes,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  get licenseKeys(): string[] {
    return this.ledgers.map((l) => l.box.licenseKey);
  }

  /** Counts the reports sent from now on into a new tally named `label` (also kept in `phases`). */
  phase(label: string): AnswerTally {
    const tally = newTally();
    this.phases.set(label, tally);
    this.current = tally;
    return tally;
  }

  start(): void {
    this.stopping = false;
    this.posters = this.ledgers.map((ledger) => this.runBox(ledger));
  }

  /** Lets every box finish the report it has in flight, then stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.posters);
  }

  async close(): Promise<void> {
    await this.stop();
    await this.pool.close().catch(() => this.pool.destroy());
  }

  /** Resolves once `condition` holds, checking every 50 ms; rejects after `timeoutMs` naming `what`. */
  async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what} (${describeTally(this.total)})`);
      await sleep(50);
    }
  }

  private async runBox(ledger: BoxLedger): Promise<void> {
    while (!this.stopping) {
      const outcome = await this.send(ledger);
      if (this.stopping) break;
      const pause = outcome === 'acknowledged' ? this.options.pauseMs : this.options.retryPauseMs;
      if (pause > 0) await sleep(pause);
    }
  }

  /** The box's next report: simulator state moved one step, plus the marker for a marked box. */
  private nextReport(ledger: BoxLedger, seq: number): DeviceStatusReport {
    const { report } = ledger.box.nextReport(this.options.flipRate);
    if (!ledger.marked) return report;
    const marker = `${MARKER_PREFIX}${seq}`;
    const ip = `10.99.${Math.floor(seq / 250) % 250}.${(seq % 250) + 1}`;
    if ('media_devices' in report) {
      const device = {
        media_device_id: marker,
        media_device_name: marker,
        media_device_status: 'online' as const,
        media_device_ip: ip,
        permission_id: 'fault-run',
        media_device_type: 'file' as const,
        media_device_url: `/data/fault-run/${marker}.mp4`,
      };
      return { ...report, media_devices: [...report.media_devices, device] };
    }
    const device = { ep_id: marker, ep_ip: ip, ep_status: 'online' as const, ep_location: 'fault-run', ep_type: 'file' as const, ep_name: marker };
    return { ...report, sub_devices: [...report.sub_devices, device] };
  }

  private async send(ledger: BoxLedger): Promise<'acknowledged' | 'other'> {
    const seq = ++ledger.sent;
    const body = Buffer.from(JSON.stringify(this.nextReport(ledger, seq)));
    const tally = this.current;
    const started = performance.now();
    this.inFlight++;
    let outcome: Outcome;
    try {
      const response = await this.pool.request({
        path: this.options.path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      const text = await response.body.text();
      const retryAfter = response.headers['retry-after'];
      if (response.statusCode === 200) outcome = { kind: 'acknowledged' };
      else if (response.statusCode === 503 && retryAfter !== undefined && UNAVAILABLE_TEXTS.has(text)) outcome = { kind: 'unavailable' };
      else outcome = { kind: 'other', status: response.statusCode, text: `${response.statusCode} retry-after=${String(retryAfter)} ${text.slice(0, 300)}` };
    } catch (error) {
      const e = error as { name?: string; code?: string; cause?: { code?: string } };
      const code = e.code ?? e.cause?.code;
      const timedOut = e.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
      if (code === 'ECONNREFUSED') outcome = { kind: 'connectionRefused' };
      else outcome = { kind: 'unanswered', error: timedOut ? 'timeout' : (code ?? e.name ?? 'error') };
    } finally {
      this.inFlight--;
    }
    const ms = performance.now() - started;
    for (const t of [tally, this.total]) {
      t.sent++;
      t.kinds.set(kindOf(outcome), (t.kinds.get(kindOf(outcome)) ?? 0) + 1);
      if (outcome.kind !== 'unanswered' && outcome.kind !== 'connectionRefused') t.maxAnswerMs = Math.max(t.maxAnswerMs, ms);
      if (outcome.kind === 'acknowledged') t.acknowledged++;
      else if (outcome.kind === 'unavailable') t.unavailable++;
      else if (outcome.kind === 'connectionRefused') t.connectionRefused++;
      else if (outcome.kind === 'other') {
        t.otherAnswers++;
        if (t.samples.length < 5) t.samples.push(outcome.text);
      } else {
        t.unanswered++;
        if (outcome.error === 'timeout') t.timeouts++;
      }
    }
    if (outcome.kind === 'acknowledged') ledger.acknowledged.push(seq);
    else if (outcome.kind === 'unanswered') ledger.unanswered.push(seq);
    else ledger.refused.push(seq);
    return outcome.kind === 'acknowledged' ? 'acknowledged' : 'other';
  }
}

export function describeTally(t: AnswerTally): string {
  const kinds = [...t.kinds].sort(([, a], [, b]) => b - a).map(([kind, n]) => `${kind} ×${n}`);
  return `${t.sent} sent: ${kinds.join(', ') || 'none answered'}; longest answer ${Math.round(t.maxAnswerMs)} ms`;
}

/** What Postgres holds of the reports a stopped ReportLoad sent. */
export interface StoredCheck {
  /** Reports answered 200. */
  acknowledged: number;
  /** Of those, found stored. */
  stored: number;
  /** Acknowledged but not stored: must be 0. */
  lost: number;
  /** What was lost, box by box (at most 20 lines). */
  lostDetails: string[];
  /** Reports with no answer on an open connection (in flight at a fault): stored or not, either is correct. */
  unanswered: number;
  /** Of the marked boxes' unanswered reports, how many are stored (simulated boxes cannot tell). */
  unansweredStored: number;
  unansweredMarked: number;
  /** Reports answered with something other than 200 (or refused at connect) that are stored anyway (marked boxes): not a loss, but the answer said otherwise. */
  refusedButStored: number;
}

/**
 * Looks up every report the load sent: a marked box's reports one by one (device `seq-<n>` exists),
 * a simulated box's by count (`report_count` at least its acknowledged reports). Call after `stop()`.
 */
export async function checkStored(databaseUrl: string, load: ReportLoad): Promise<StoredCheck> {
  if (load.inFlight > 0) throw new Error('checkStored: stop the load first; reports are still in flight');
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const keys = load.licenseKeys;
    const { rows: boxRows } = await client.query<{ license_key: string; report_count: string | number }>(
      'select license_key, report_count from boxes where license_key = any($1::text[])',
      [keys],
    );
    const { rows: markerRows } = await client.query<{ license_key: string; external_id: string }>(
      `select b.license_key, d.external_id from devices d join boxes b on b.id = d.box_id
       where b.license_key = any($1::text[]) and d.external_id like '${MARKER_PREFIX}%'`,
      [keys],
    );
    const reportCount = new Map(boxRows.map((r) => [r.license_key, Number(r.report_count)]));
    const markers = new Map<string, Set<number>>();
    for (const r of markerRows) {
      let set = markers.get(r.license_key);
      if (!set) markers.set(r.license_key, (set = new Set()));
      set.add(Number(r.external_id.slice(MARKER_PREFIX.length)));
    }
    const check: StoredCheck = { acknowledged: 0, stored: 0, lost: 0, lostDetails: [], unanswered: 0, unansweredStored: 0, unansweredMarked: 0, refusedButStored: 0 };
    for (const ledger of load.ledgers) {
      const key = ledger.box.licenseKey;
      check.acknowledged += ledger.acknowledged.length;
      check.unanswered += ledger.unanswered.length;
      if (ledger.marked) {
        const found = markers.get(key) ?? new Set<number>();
        const missing = ledger.acknowledged.filter((seq) => !found.has(seq));
        check.stored += ledger.acknowledged.length - missing.length;
        check.lost += missing.length;
        if (missing.length > 0 && check.lostDetails.length < 20) {
          check.lostDetails.push(`${key}: acknowledged report(s) ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''} not stored`);
        }
        check.unansweredMarked += ledger.unanswered.length;
        check.unansweredStored += ledger.unanswered.filter((seq) => found.has(seq)).length;
        check.refusedButStored += ledger.refused.filter((seq) => found.has(seq)).length;
      } else {
        // Every stored report counts once; any beyond the acknowledged ones came from unanswered or refused reports.
        const stored = reportCount.get(key) ?? 0;
        const missing = Math.max(0, ledger.acknowledged.length - stored);
        check.stored += ledger.acknowledged.length - missing;
        check.lost += missing;
        if (missing > 0 && check.lostDetails.length < 20) {
          check.lostDetails.push(`${key}: ${ledger.acknowledged.length} reports acknowledged, report_count ${stored}`);
        }
      }
    }
    return check;
  } finally {
    await client.end().catch(() => {});
  }
}
