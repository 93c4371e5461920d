// Ingest as bench/ingest.ts drives it (pre-built reports, one keep-alive connection per box, each box
// posting again as soon as it is answered), with the start and end of every report kept, so latency
// can be read for any stretch of time: before a partition drop, and while it runs.
import { Pool } from 'undici';
import { createFleet } from '../../tools/simulator/fleet';
import { ReportStream } from '../../tools/simulator/prebuilt';
import { sleep } from './common';

export interface TimedIngestOptions {
  /** Simulated boxes, one report in flight each. */
  boxes: number;
  devicesPerBox: number;
  /** Probability a device changes status per report. */
  changeRate: number;
  /** Seed of the simulated fleet: its licence keys differ from a seeded fleet's (`FGSEED...`). */
  seed: number;
}

/** One report: when it was sent and answered (performance.now() ms), and whether it was stored (200). */
export interface Sample {
  start: number;
  end: number;
  ok: boolean;
}

export interface IngestSummary {
  reports: number;
  reportsPerSecond: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
}

export class TimedIngest {
  readonly samples: Sample[] = [];
  private readonly pool: Pool;
  private readonly stream: ReportStream;
  private workers: Promise<void>[] = [];
  private stopping = false;

  constructor(
    origin: string,
    private readonly options: TimedIngestOptions,
  ) {
    const fleet = createFleet({
      boxes: options.boxes,
      devicesPerBox: options.devicesPerBox,
      format: 'mixed',
      seed: options.seed,
      reportPeriodSeconds: 1,
      monitorUrl: `${origin}/DeviceStatus`,
    });
    this.stream = new ReportStream(fleet, options.changeRate);
    this.pool = new Pool(origin, { connections: options.boxes, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  }

  /** Sends one report of every box (their first sighting), so what is measured afterwards is steady ingest. */
  async register(): Promise<void> {
    for (let i = 0; i < this.options.boxes; i++) {
      const { body } = this.stream.next();
      const response = await this.pool.request({ path: '/DeviceStatus', method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await response.body.dump();
      if (response.statusCode !== 200) throw new Error(`registering a simulated box: HTTP ${response.statusCode}`);
    }
  }

  start(): void {
    this.stopping = false;
    this.workers = Array.from({ length: this.options.boxes }, async () => {
      while (!this.stopping) {
        const { body } = this.stream.next();
        const start = performance.now();
        let ok = false;
        try {
          const response = await this.pool.request({ path: '/DeviceStatus', method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await response.body.dump();
          ok = response.statusCode === 200;
        } catch {
          ok = false;
        }
        this.samples.push({ start, end: performance.now(), ok });
        if (!ok) await sleep(20);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  private closed = false;

  async close(): Promise<void> {
    await this.stop();
    if (this.closed) return;
    this.closed = true;
    await this.pool.close().catch(() => this.pool.destroy().catch(() => {}));
  }

  /** Reports sent in [from, to) (performance.now() ms). */
  between(from: number, to: number): Sample[] {
    return this.samples.filter((s) => s.start >= from && s.start < to);
  }

  /** Reports in flight at any moment of [from, to]: those a lock taken then could have held up. */
  overlapping(from: number, to: number): Sample[] {
    return this.samples.filter((s) => s.start <= to && s.end >= from);
  }
}

const percentile = (sorted: number[], q: number) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!);

/** Rate and latency of `samples`, over `seconds` of sending. */
export function summarize(samples: Sample[], seconds: number): IngestSummary {
  const latencies = samples.map((s) => s.end - s.start).sort((a, b) => a - b);
  return {
    reports: samples.length,
    reportsPerSecond: samples.filter((s) => s.ok).length / seconds,
    errors: samples.filter((s) => !s.ok).length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? Number.NaN,
  };
}
