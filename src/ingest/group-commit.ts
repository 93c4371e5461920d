export interface GroupCommitOptions {
  /** How long the first item of an idle group waits for more before committing; 0 waits one tick. */
  windowMs: number;
  /** Most items in one commit; more wait for the next. */
  maxItems: number;
}

interface Waiting<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers concurrent submissions into one commit at a time (group commit). Items that arrive while a
 * commit runs form the next group, so batches grow with load and latency stays one commit when idle.
 * Items are committed in submission order, one group after another.
 */
export class GroupCommit<T, R> {
  private queue: Array<Waiting<T, R>> = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  /** `commit` answers each item with its result or an Error; throwing fails the whole group. */
  constructor(
    private readonly commit: (items: T[]) => Promise<Array<R | Error>>,
    private readonly options: GroupCommitOptions,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.running) return;
      if (this.queue.length >= this.options.maxItems) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.windowMs);
    });
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.flush();
      await this.running;
    }
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running || this.queue.length === 0) return;
    const group = this.queue.splice(0, this.options.maxItems);
    this.running = this.run(group).finally(() => {
      this.running = undefined;
      if (this.queue.length > 0) this.flush();
    });
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
