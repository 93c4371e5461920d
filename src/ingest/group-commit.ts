export interface GroupCommitOptions<T> {
  /** How long the first item of an idle group waits for more before committing; 0 waits one tick. */
  windowMs: number;
  /** Most items in one commit; more wait for the next. */
  maxItems: number;
  /** Most groups committing at once. Default 1. */
  maxInFlight?: number;
  /**
   * Items with the same key are committed in submission order: an item waits while an earlier one
   * with its key is in a group still committing (several of them may share one group). Groups in
   * flight never share a key, so they can commit in parallel.
   */
  keyOf?: (item: T) => string;
}

interface Waiting<T, R> {
  item: T;
  key: string | undefined;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/** Called with a group to commit: answer each item with its result or an Error; throwing fails them all. */
export type CommitGroup<T, R> = (items: T[]) => Promise<Array<R | Error>>;

/**
 * Gathers concurrent submissions into groups (group commit). Items that arrive while groups commit
 * form the next ones, so groups grow with load and latency stays one commit when idle.
 */
export class GroupCommit<T, R> {
  private queue: Array<Waiting<T, R>> = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  /** Keys of the items in groups still committing. */
  private readonly busy = new Set<string>();
  private readonly maxInFlight: number;

  constructor(
    private readonly commit: CommitGroup<T, R>,
    private readonly options: GroupCommitOptions<T>,
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, key: this.options.keyOf?.(item), resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0 || this.queue.length > 0) {
      if (this.inFlight.size === 0) this.start();
      if (this.inFlight.size > 0) await Promise.race(this.inFlight);
    }
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0 || this.inFlight.size >= this.maxInFlight) return;
    // Idle: wait a moment for company. Busy: what gathered meanwhile goes at once.
    if (this.inFlight.size === 0 && this.queue.length < this.options.maxItems) {
      this.timer = setTimeout(() => this.start(), this.options.windowMs);
    } else this.start();
  }

  private start(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight.size >= this.maxInFlight) return;
    const group: Array<Waiting<T, R>> = [];
    const rest: Array<Waiting<T, R>> = [];
    for (const waiting of this.queue) {
      if (group.length < this.options.maxItems && (waiting.key === undefined || !this.busy.has(waiting.key))) group.push(waiting);
      else rest.push(waiting);
    }
    if (group.length === 0) return;
    this.queue = rest;
    const keys = new Set(group.map((w) => w.key).filter((key): key is string => key !== undefined));
    for (const key of keys) this.busy.add(key);
    const running: Promise<void> = this.run(group).finally(() => {
      for (const key of keys) this.busy.delete(key);
      this.inFlight.delete(running);
      this.schedule();
    });
    this.inFlight.add(running);
    this.schedule();
  }

  private async run(group: Array<Waiting<T, R>>): Promise<void> {
    try {
      const results = await this.commit(group.map((w) => w.item));
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
