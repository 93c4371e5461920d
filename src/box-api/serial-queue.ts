/**
 * Runs tasks one at a time per key, in the order they arrive; different keys run side by side.
 * configureBox, updateBox and removeBox of one box go through one of these (keyed by box id), so two
 * calls never interleave their box exchange and their database writes. It is per process: see
 * docs/graphql.md ("One call per box at a time") for what that means with several replicas.
 */
export class SerialQueue<K> {
  /** The last task queued per key; settles (never rejects) when that task has. */
  private readonly tails = new Map<K, Promise<void>>();

  /** Runs `task` once every task queued before it under `key` has settled; resolves or rejects as it does. */
  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const result = previous ? previous.then(task) : task();
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with a task running or waiting. */
  get busyKeys(): number {
    return this.tails.size;
  }
}
