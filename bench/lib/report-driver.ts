// The alerts benchmark's fleet: `concurrency` boxes posting at once, each posting the next report as soon
// as its last one is answered, round-robin over the boxes that are not silenced.
import { Pool } from 'undici';
import type { SimulatedBox } from '../../tools/simulator/fleet';
import { ReportStream } from '../../tools/simulator/prebuilt';
import { sleep } from './common';

const JSON_HEADERS = { 'content-type': 'application/json' };

export class ReportDriver {
  /** Reports answered 200, and others (errors, timeouts), since the start. */
  acked = 0;
  failed = 0;
  private readonly pool: Pool;
  private readonly stream: ReportStream;
  private workers: Promise<void>[] = [];
  private stopping = false;

  constructor(
    origin: string,
    fleet: SimulatedBox[],
    private readonly concurrency: number,
  ) {
    // Flip rate 0: the only changes are the ones the bench makes (silence, flapping), so it knows them all.
    this.stream = new ReportStream(fleet, 0);
    this.pool = new Pool(origin, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  }

  /** Posts one report; the HTTP status, or 0 without an answer. */
  async post(): Promise<number> {
    const { body } = this.stream.next();
    try {
      const response = await this.pool.request({ path: '/DeviceStatus', method: 'POST', headers: JSON_HEADERS, body });
      await response.body.dump();
      if (response.statusCode === 200) this.acked++;
      else this.failed++;
      return response.statusCode;
    } catch {
      this.failed++;
      return 0;
    }
  }

  /** Starts the workers; with `limit`, they stop after that many reports in all. */
  start(limit?: number): void {
    this.stopping = false;
    let handedOut = 0;
    this.workers = Array.from({ length: this.concurrency }, async () => {
      while (!this.stopping && (limit === undefined || handedOut < limit)) {
        handedOut++;
        const status = await this.post();
        if (status !== 200) await sleep(20); // do not spin on a gateway that refuses or sheds load
      }
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  async close(): Promise<void> {
    await this.stop();
    await this.pool.close().catch(() => this.pool.destroy());
  }
}
