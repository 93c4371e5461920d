import { builder } from './builder';
import type { GraphQLContext } from './context';
import { clientError } from './errors';

// The `since`/`until` (and `bucket`) arguments of every read over history (availability, box health):
// checked here once, so each refuses bad input with the same codes and words.

/** Sizes of the buckets a range is cut into, each aligned to UTC (an hour, a day: neither has DST in UTC). */
export const BUCKET_SECONDS = { hour: 3_600, day: 86_400 } as const;
export type HistoryBucketValue = keyof typeof BUCKET_SECONDS;

export const HistoryBucket = builder.enumType('HistoryBucket', {
  description: 'A slice of time for history over a range: UTC hours or UTC days.',
  values: {
    HOUR: { value: 'hour', description: 'UTC hours (xx:00:00 to the next).' },
    DAY: { value: 'day', description: 'UTC days (00:00:00 UTC to the next).' },
  } as const,
});

/** Most buckets one answer holds, unless the field says otherwise. */
export const MAX_BUCKETS = 1_000;

export interface HistoryRange {
  since: Date;
  /** Exclusive. */
  until: Date;
}

const DAY_MS = 86_400_000;

// One "now" per operation: every history field of a response measures up to the same instant, and
// the DataLoader keys of a field (built from its range) are then equal for all its parents.
const operationNows = new WeakMap<object, Date>();

/** The instant this operation treats as now (the first time it was asked for). */
export function operationNow(context: GraphQLContext): Date {
  let now = operationNows.get(context);
  if (!now) {
    now = new Date();
    operationNows.set(context, now);
  }
  return now;
}

/** How many UTC-aligned buckets of `bucket` overlap [since, until). */
export function bucketCount(range: HistoryRange, bucket: HistoryBucketValue): number {
  const size = BUCKET_SECONDS[bucket] * 1000;
  const first = Math.floor(range.since.getTime() / size);
  const last = Math.ceil(range.until.getTime() / size);
  return Math.max(0, last - first);
}

/**
 * The range `args` ask for, or a GraphQL error with `extensions: { code, argument }`:
 * `INVALID_RANGE` (until), `BEYOND_RETENTION` (since), `TOO_MANY_BUCKETS` (bucket).
 * `until` omitted means now; the answer then depends on the clock, so it must not be cached.
 */
export function parseHistoryRange(
  args: { since: Date; until?: Date | null },
  context: GraphQLContext,
  options: { bucket?: HistoryBucketValue; maxBuckets?: number } = {},
): HistoryRange {
  const now = operationNow(context);
  const since = args.since;
  const until = args.until ?? now;
  // An answer that depends on the clock (an open or future end) is not kept by the response cache.
  if (args.until == null || until.getTime() > now.getTime()) context.uncacheable = true;
  if (until.getTime() <= since.getTime()) {
    throw clientError(`\`until\` (${until.toISOString()}) must be later than \`since\` (${since.toISOString()}).`, {
      code: 'INVALID_RANGE',
      argument: 'until',
    });
  }
  const retentionDays = context.config.historyRetentionDays;
  const oldest = new Date(now.getTime() - retentionDays * DAY_MS);
  if (since.getTime() < oldest.getTime()) {
    throw clientError(
      `\`since\` (${since.toISOString()}) is older than the history kept: HISTORY_RETENTION_DAYS is ${retentionDays}, so the oldest \`since\` allowed now is ${oldest.toISOString()}.`,
      { code: 'BEYOND_RETENTION', argument: 'since', oldestSince: oldest.toISOString(), retentionDays },
    );
  }
  if (options.bucket) {
    const maxBuckets = options.maxBuckets ?? MAX_BUCKETS;
    const buckets = bucketCount({ since, until }, options.bucket);
    if (buckets > maxBuckets) {
      const largestDays = Math.floor((maxBuckets * BUCKET_SECONDS[options.bucket]) / 86_400);
      throw clientError(
        `This range makes ${buckets} ${options.bucket}s, more than the ${maxBuckets} buckets allowed: with bucket ${options.bucket.toUpperCase()}, ask for at most ${maxBuckets} UTC ${options.bucket}s (about ${largestDays} days) at a time, or use a larger bucket.`,
        { code: 'TOO_MANY_BUCKETS', argument: 'bucket', buckets, maxBuckets },
      );
    }
  }
  return { since, until };
}
