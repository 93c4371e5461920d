export interface CountCacheOptions {
  /** How long a large count is served without asking Postgres again while the data is changing. */
  ttlMs: number;
  /** Past `ttlMs` and up to this age, the old value is served while one refresh runs in the background. */
  maxStaleMs: number;
  /** Counts below this are cheap to make and always read fresh; only larger ones are kept. */
  minValue: number;
  /** Most keys kept; the oldest go first. */
  maxEntries?: number;
}

export interface CountRead {
  /**
   * The database snapshot (`pg_current_snapshot()`) the caller read before asking, if it has one.
   * A count made under the same snapshot is exact whatever its age: nothing was written since.
   */
  snapshot?: string;
  /** Called when the value comes from an earlier read under another snapshot, so it may lag by up to `ttlMs`. */
  lagging?: () => void;
}

interface Entry<T> {
  value?: T;
  /** When the query that produced `value` started, and the snapshot the caller had then. */
  at: number;
  snapshot?: string;
  pending?: Promise<T>;
}

/**
 * Counts over large sets (`totalCount` of 100,000 online devices, the fleet summary) take Postgres
 * tens of milliseconds, and a dashboard asks for them on every refresh. A large count is reused while
 * the database snapshot is unchanged (exact), and otherwise for up to `ttlMs` before it is refreshed
 * in the background (stale-while-revalidate): under steady writes it lags the data by about a
 * second. Small counts are read every time. Identical reads in flight at once share one query.
 */
export class CountCache {
  private readonly entries = new Map<string, Entry<unknown>>();
  private readonly maxEntries: number;

  constructor(
    readonly options: CountCacheOptions,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.maxEntries = options.maxEntries ?? 1_000;
  }

  get<T>(key: string, load: () => Promise<T>, size: (value: T) => number, read: CountRead = {}): Promise<T> {
    const entry = this.entries.get(key) as Entry<T> | undefined;
    if (entry?.value !== undefined) {
      if (read.snapshot !== undefined && entry.snapshot === read.snapshot) return Promise.resolve(entry.value);
      const age = Date.now() - entry.at;
      if (age < this.options.maxStaleMs) {
        if (age >= this.options.ttlMs && !entry.pending) this.refresh(key, entry, load, size, read.snapshot).catch(this.onError);
        read.lagging?.();
        return Promise.resolve(entry.value);
      }
    }
    if (entry?.pending) return entry.pending;
    const fresh: Entry<T> = entry ?? { at: 0 };
    if (!entry) this.remember(key, fresh);
    return this.refresh(key, fresh, load, size, read.snapshot);
  }

  private refresh<T>(key: string, entry: Entry<T>, load: () => Promise<T>, size: (value: T) => number, snapshot: string | undefined): Promise<T> {
    const started = Date.now();
    const pending = load().then(
      (value) => {
        entry.pending = undefined;
        if (size(value) >= this.options.minValue) {
          entry.value = value;
          entry.at = started;
          entry.snapshot = snapshot;
        } else if (this.entries.get(key) === entry) {
          this.entries.delete(key);
        }
        return value;
      },
      (error: unknown) => {
        entry.pending = undefined;
        if (entry.value === undefined && this.entries.get(key) === entry) this.entries.delete(key);
        throw error;
      },
    );
    entry.pending = pending;
    return pending;
  }

  private remember(key: string, entry: Entry<unknown>): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, entry);
  }
}
