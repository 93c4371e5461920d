import { performance } from 'node:perf_hooks';

/**
 * Delivery work (fanning an event out to subscribers, replaying stored events) done in slices: at most
 * about `sliceMs` of it per turn of the event loop, then the loop runs its I/O (ingest's requests and
 * their database answers, queries) before the next slice. Without it one broadcast to ten thousand
 * sockets, or a thousand clients replaying at once, holds the loop for as long as all of it takes,
 * and every box waits that long for its 200.
 *
 * A worker calls `turn()` before each unit of work and awaits what it returns, if anything:
 * `undefined` while the current slice lasts (no promise, no cost), else a promise that resolves in a
 * later turn. Waiters resume in arrival order, a few per turn, so many replays share the loop fairly.
 */
export class WorkSlices {
  private sliceStart = -Infinity;
  private readonly waiting: Array<() => void> = [];
  private scheduled = false;

  /**
   * @param sliceMs how long one slice may run before the loop gets a turn.
   * @param resumePerTurn how many waiters resume at the start of a slice (each may do a unit of work
   *   before it sees the slice is over, so this bounds a slice's overrun).
   */
  constructor(
    readonly sliceMs = 1,
    private readonly resumePerTurn = 4,
  ) {}

  turn(): Promise<void> | undefined {
    if (performance.now() - this.sliceStart < this.sliceMs) return undefined;
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  /** Waiters not yet resumed (for metrics and tests). */
  get queued(): number {
    return this.waiting.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.resume);
  }

  private readonly resume = (): void => {
    this.scheduled = false;
    this.sliceStart = performance.now();
    for (const resolve of this.waiting.splice(0, this.resumePerTurn)) resolve();
    if (this.waiting.length > 0) this.schedule();
  };
}
