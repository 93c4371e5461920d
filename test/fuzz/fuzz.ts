import fc from 'fast-check';

// The fuzz tests of test/fuzz/ (reports.test.ts, graphql.test.ts) and what they share. Environment:
// FUZZ_SEED (other inputs), FUZZ_PATH (replay one counterexample), FUZZ_SCALE (more runs), and
// FUZZ_KNOWN_BUGS=fail (fail on the open bugs listed in each file too, e.g. to check a fix).

/**
 * The seed of every property in test/fuzz/: fixed, so a run is repeatable. `FUZZ_SEED=n` tries other
 * inputs; a failure prints the seed and the path of its counterexample, and `FUZZ_SEED=<seed>
 * FUZZ_PATH=<path>` replays just that counterexample.
 */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 6_2026_11);
const FUZZ_PATH = process.env.FUZZ_PATH || undefined;
/** Multiplies the number of runs (`FUZZ_SCALE=10` for a long local session). */
export const FUZZ_SCALE = Number(process.env.FUZZ_SCALE ?? 1);

/** Requests in flight at once: enough to exercise group commit and the pool, gentle on a shared 2-core machine. */
export const CONCURRENCY = 12;
/** How long one property may run (its test's timeout is longer, so a failure is always reported). */
export const SHRINK_BUDGET_MS = 150_000;
/** The timeout of each fuzz test. */
export const FUZZ_TEST_TIMEOUT_MS = 240_000;
/** No answer within this long is a hang. */
export const ANSWER_TIMEOUT_MS = 15_000;

/** Counts requests per property, for the report at the end of each file. */
export class RequestCounter {
  readonly byName = new Map<string, number>();
  add(name: string, n = 1): void {
    this.byName.set(name, (this.byName.get(name) ?? 0) + n);
  }
  get total(): number {
    let total = 0;
    for (const n of this.byName.values()) total += n;
    return total;
  }
  summary(): string {
    return [...this.byName].map(([name, n]) => `${name}: ${n}`).join(', ') + ` (total ${this.total})`;
  }
}

/** Runs `task` on every item with at most `limit` at once; resolves when all have settled. */
export async function inPool<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = { status: 'fulfilled', value: await task(items[index]!, index) };
      } catch (reason) {
        results[index] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Cases per run: one batch is sent with CONCURRENCY requests in flight, so a run is exactly this many requests. */
export const BATCH = CONCURRENCY;

/**
 * Checks a property over batches of cases: each run sends one batch of BATCH cases (so `runs` x BATCH
 * requests in all, whatever the seed) and fails with every case of the batch that broke a rule, after
 * all of them were answered (nothing is left in flight). Counterexamples shrink case by case, and
 * shrinking is capped: each step costs real requests.
 */
export async function fuzz<T>(
  options: { name: string; cases: fc.Arbitrary<T>; runs: number; counter: RequestCounter; describe: (c: T) => string },
  check: (c: T) => Promise<void>,
): Promise<void> {
  const batches = fc.limitShrink(fc.array(options.cases, { minLength: BATCH, maxLength: BATCH }), 150);
  const property = fc.asyncProperty(batches, async (batch) => {
    options.counter.add(options.name, batch.length);
    const results = await inPool(batch, CONCURRENCY, (c) => check(c));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ c: batch[i]!, reason: r.reason as unknown }] : []));
    if (failures.length > 0) {
      const shown = failures.slice(0, 3).map(({ c, reason }) => `- ${options.describe(c)}\n  ${reason instanceof Error ? reason.message : String(reason)}`);
      throw new Error(`${failures.length} of ${batch.length} cases failed:\n${shown.join('\n')}`);
    }
  });
  try {
    await fc.assert(property, {
      seed: FUZZ_SEED,
      path: FUZZ_PATH,
      numRuns: Math.max(1, Math.round(options.runs * FUZZ_SCALE)),
      // Shrinking re-sends requests; on a loaded machine it could outlast the test. Interrupted while
      // shrinking, fast-check reports the smallest counterexample found so far.
      plugins: [fc.interruptAfterTimeLimit(SHRINK_BUDGET_MS)],
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`fuzz "${options.name}" failed. Reproduce with FUZZ_SEED=${FUZZ_SEED} (and FUZZ_PATH from below).\n${message}`, { cause: error });
  }
}

/** A string for failure messages: long strings cut, control characters and surrogates escaped. */
export function preview(value: unknown, max = 300): string {
  const text = typeof value === 'string' ? value : value instanceof Uint8Array ? `<${value.length} bytes> ${Buffer.from(value.subarray(0, max)).toString('latin1')}` : (JSON.stringify(value) ?? String(value));
  const escaped = JSON.stringify(text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text);
  return escaped;
}

/** The licence key of fuzz box `n`: no stored box has one like it. */
export function fuzzKey(n: number): string {
  return `FZ${n}`;
}
