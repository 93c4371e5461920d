import { selectRows, sql, type Queryable } from '../db/sql';
import { HEALTH_FIGURES, type HealthFigure } from './health-figures';

/**
 * Box health over a range, read from box_health (one row per box per UTC hour, written by ingest:
 * src/ingest/store/health-columns.ts) and cut into buckets of whole UTC hours or days. A day folds its
 * hours exactly: min of mins, max of maxes, and the mean as the sum of sums over the sum of counts,
 * never a mean of hourly means.
 */

/** One figure over a bucket: only the reports that carried it. */
export interface HealthFigureSummary {
  min: number;
  avg: number;
  max: number;
  /** Reports of the bucket that carried the figure. */
  samples: number;
}

export interface HealthBucket {
  start: Date;
  /** Exclusive. */
  end: Date;
  /** Reports with `gateway_ext_data` in the bucket; 0 when the box sent none (a gap). */
  reports: number;
  /** Per figure: null when no report of the bucket carried it (a gap, not a zero). */
  figures: Record<HealthFigure, HealthFigureSummary | null>;
}

const FIGURE_COLUMNS = sql.raw(
  HEALTH_FIGURES.map(
    (f) => `min(${f}_min) as ${f}_min, max(${f}_max) as ${f}_max, sum(${f}_sum) as ${f}_sum, sum(${f}_count)::int as ${f}_count`,
  ).join(',\n           '),
);

type HealthRow = { box_id: number; bucket: number; reports: number } & Record<string, number | null>;

/**
 * The health of each of `boxIds` in every bucket of `bucketSeconds` (an hour or a day, aligned to UTC)
 * that overlaps [since, until), gaps included, oldest first; one statement for all boxes. Buckets are
 * whole: health is kept per hour, so the first and the last may reach past the range.
 */
export async function healthByBoxIds(
  db: Queryable,
  boxIds: readonly number[],
  range: { since: Date; until: Date },
  bucketSeconds: number,
): Promise<Map<number, HealthBucket[]>> {
  const bucketMs = bucketSeconds * 1000;
  const first = Math.floor(range.since.getTime() / bucketMs);
  const last = Math.ceil(range.until.getTime() / bucketMs); // exclusive
  // Bounded by `hour`, so only the partitions of the range are read; by the primary key (box_id, hour).
  const rows = await selectRows<HealthRow>(
    db,
    sql`select box_id, floor(extract(epoch from hour) / ${bucketSeconds}::int)::int as bucket, sum(reports)::int as reports,
           ${FIGURE_COLUMNS}
        from box_health
        where box_id = any(${sql.param([...boxIds])}::int4[]) and hour >= ${new Date(first * bucketMs)} and hour < ${new Date(last * bucketMs)}
        group by box_id, 2`,
  );
  const found = new Map<number, Map<number, HealthRow>>();
  for (const row of rows) {
    let buckets = found.get(row.box_id);
    if (!buckets) found.set(row.box_id, (buckets = new Map()));
    buckets.set(row.bucket, row);
  }
  const result = new Map<number, HealthBucket[]>();
  for (const boxId of boxIds) {
    const stored = found.get(boxId);
    const buckets: HealthBucket[] = [];
    for (let bucket = first; bucket < last; bucket++) {
      const row = stored?.get(bucket);
      buckets.push({
        start: new Date(bucket * bucketMs),
        end: new Date((bucket + 1) * bucketMs),
        reports: row?.reports ?? 0,
        figures: Object.fromEntries(HEALTH_FIGURES.map((f) => [f, row ? summary(row, f) : null])) as HealthBucket['figures'],
      });
    }
    result.set(boxId, buckets);
  }
  return result;
}

function summary(row: HealthRow, figure: HealthFigure): HealthFigureSummary | null {
  const samples = row[`${figure}_count`] as number;
  if (samples === 0) return null;
  return { min: row[`${figure}_min`]!, avg: row[`${figure}_sum`]! / samples, max: row[`${figure}_max`]!, samples };
}
