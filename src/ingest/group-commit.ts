export interface GroupCommitOptions {
  /** How long the first item of an idle group waits for more before committing; 0 waits one tick. */
  windowMs: number;
  /** Most items in one commit; more wait for the next. */
  maxItems: number;
  /** Most groups committing at once. Default 1. */
  maxInFlight?: number;
}

interface Waiting<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Called with a group to commit. Answer each item with its result or an Error (throwing fails the
 * whole group). Call `startNext` once the next group may begin, e.g. when this one holds the locks
 * that order it before the next; it is called for you when the commit ends.
 */
export type CommitGroup<T, R> = (items: T[], startNext: () => void) => Promise<Array<R | Error>>;

/**
 * Gathers concurrent submissions into groups (group commit). Items that arrive while a group commits
 * form the next one, so groups grow with load and latency stays one commit when idle. Groups start
 * in submission order; a group starts only after the one before it said it may (`startNext`), and at
 * most `maxInFlight` run at once.
 */
export class GroupCommit<T, R> {
  private queue: Array<Waiting<T, R>> = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  /** The group started last has not yet let the next one start. */
  private gated = false;
  private readonly maxInFlight: number;

  constructor(
    private readonly commit: CommitGroup<T, R>,
    private readonly options: GroupCommitOptions,
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
  }

  get pending(): number {
    return this.queue.length;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.inFlight.size > 0) this.startReady();
      else if (this.queue.length >= this.options.maxItems) this.start();
      else this.timer ??= setTimeout(() => this.start(), this.options.windowMs);
    });
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0 || this.queue.length > 0) {
      if (this.inFlight.size === 0) this.start();
      await Promise.race(this.inFlight);
    }
  }

  /** While groups are committing, the next one starts when allowed, with whatever has gathered. */
  private startReady(): void {
    if (!this.gated && this.inFlight.size < this.maxInFlight && this.queue.length > 0) this.start();
  }

  private start(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.gated || this.inFlight.size >= this.maxInFlight || this.queue.length === 0) return;
    const group = this.queue.splice(0, this.options.maxItems);
    this.gated = true;
    let released = false;
    const startNext = () => {
      if (released) return;
      released = true;
      this.gated = false;
      this.startReady();
    };
    const running: Promise<void> = this.run(group, startNext).finally(() => {
      this.inFlight.delete(running);
      startNext();
      this.startReady();
    });
    this.inFlight.add(running);
  }

  private async run(group: Array<Waiting<T, R>>, startNext: () => void): Promise<void> {
    try {
      const results = await this.commit(
        group.map((w) => w.item),
        startNext,
      );
      group.forEach((w, i) => {
        const result = results[i];
        if (result instanceof Error) w.reject(result);
        else w.resolve(result as R);
      });
    } catch (error) {
      for (const w of group) w.reject(error);
    }
  }
}
