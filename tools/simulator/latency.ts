/** Smallest latency told apart, in ms; anything below lands in the first bucket. */
const MIN_MS = 0.01;
/** Each bucket is 1% wider than the one before: percentiles are within 1% of the true value. */
const GROWTH = 1.01;
/** 2048 buckets reach ~7e6 ms (about two hours), far beyond any request timeout. */
const BUCKETS = 2048;
const LOG_GROWTH = Math.log(GROWTH);

/**
 * Log-bucketed latency histogram: fixed memory however long a run lasts (a simulator may run for days),
 * percentiles within 1%, and an exact maximum.
 */
export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  maxMs = 0;

  record(ms: number): void {
    const bucket = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH));
    this.counts[bucket] = (this.counts[bucket] ?? 0) + 1;
    this.count++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** The latency below which a share `q` (0..1) of the requests finished; 0 when nothing was recorded. */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.counts[bucket] ?? 0;
      if (seen >= rank) return Math.min(this.maxMs, MIN_MS * GROWTH ** bucket);
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    return { p50Ms: this.percentile(0.5), p99Ms: this.percentile(0.99), maxMs: this.maxMs };
  }
}

export interface LatencySummary {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** `1.23 ms`, `45.6 ms`, `1234 ms`: three significant figures are plenty for a latency. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}
