import { sql, type SQL } from '../../db/sql';
import { HEALTH_FIGURES, healthFigure } from '../../models/health-figures';
import { float8Array, int4Array, textArray, timestamptzArray } from '../binary-arrays';
import type { Report } from '../report';

/**
 * Box health over time (box_health): the figures older boxes send in `gateway_ext_data` at every
 * report, folded into one row per box per UTC hour (min, max, sum and count of each figure). A row
 * per report would be 43 M rows a day at 10,000 boxes every 20 s; a row per hour is 240 k, and an
 * hour is as fine as a dashboard of days or weeks draws. Only reports that carry `gateway_ext_data`
 * count: a newer box, which never sends it, writes nothing here.
 */

const HOUR_MS = 3_600_000;

/**
 * A batch's reports folded per (licence key, hour) in JS, a column each, for the upsert of
 * `upsertHealth`: the batch then costs Postgres one row per box and hour, however many reports.
 */
export class HealthColumns {
  /** `licence key \0 hour` → row. */
  private readonly rows = new Map<string, number>();
  private readonly keys: string[] = [];
  private readonly hours: Date[] = [];
  private readonly reports: number[] = [];
  private readonly min = HEALTH_FIGURES.map(() => [] as Array<number | null>);
  private readonly max = HEALTH_FIGURES.map(() => [] as Array<number | null>);
  private readonly sum = HEALTH_FIGURES.map(() => [] as Array<number | null>);
  private readonly count = HEALTH_FIGURES.map(() => [] as number[]);

  /**
   * Counts `report`, received at `at`, in its box's hour. A report whose body is its box's last one
   * again counts too: the box said the same figures once more, and an hour's mean is over its reports.
   */
  add(licenseKey: string, report: Report, at: Date): void {
    const extData = report.gatewayExtData;
    if (!extData) return;
    const time = at.getTime();
    const hour = time - (((time % HOUR_MS) + HOUR_MS) % HOUR_MS);
    const rowKey = `${licenseKey}\u0000${hour}`;
    let row = this.rows.get(rowKey);
    if (row === undefined) {
      row = this.keys.length;
      this.rows.set(rowKey, row);
      this.keys.push(licenseKey);
      this.hours.push(new Date(hour));
      this.reports.push(0);
      for (let f = 0; f < HEALTH_FIGURES.length; f++) {
        this.min[f]!.push(null);
        this.max[f]!.push(null);
        this.sum[f]!.push(null);
        this.count[f]!.push(0);
      }
    }
    this.reports[row]!++;
    for (let f = 0; f < HEALTH_FIGURES.length; f++) {
      // Absent, unreadable or out of range: the report still counts, the figure has a gap.
      const value = healthFigure(extData, HEALTH_FIGURES[f]!);
      if (value === null) continue;
      const min = this.min[f]![row]!;
      const max = this.max[f]![row]!;
      this.min[f]![row] = min === null ? value : Math.min(min, value);
      this.max[f]![row] = max === null ? value : Math.max(max, value);
      this.sum[f]![row] = (this.sum[f]![row] ?? 0) + value;
      this.count[f]![row]!++;
    }
  }

  /** Rows (box and hour) folded so far. */
  get size(): number {
    return this.keys.length;
  }

  /** The columns as typed array parameters, in the order of HEALTH_ROW. */
  arrays(): SQL {
    const figures = HEALTH_FIGURES.map(
      (_, f) =>
        sql`${float8Array(this.min[f]!)}::float8[], ${float8Array(this.max[f]!)}::float8[], ${float8Array(this.sum[f]!)}::float8[], ${int4Array(this.count[f]!)}::int4[]`,
    );
    return sql.join([sql`${textArray(this.keys)}::text[], ${timestamptzArray(this.hours)}::timestamptz[], ${int4Array(this.reports)}::int4[]`, ...figures], sql`, `);
  }
}

/** The columns of a box_health row after box_id, as HealthColumns sends them. */
const HEALTH_ROW = ['hour', 'reports', ...HEALTH_FIGURES.flatMap((f) => [`${f}_min`, `${f}_max`, `${f}_sum`, `${f}_count`])].join(', ');

/**
 * Folds a stored row and the batch's: least/greatest skip a null (a figure the batch or the row lacks),
 * a sum stays null while neither has a sample, and counts add, so a gap stays a gap, never a zero.
 */
const FOLD = [
  'reports = h.reports + excluded.reports',
  ...HEALTH_FIGURES.flatMap((f) => [
    `${f}_min = least(h.${f}_min, excluded.${f}_min)`,
    `${f}_max = greatest(h.${f}_max, excluded.${f}_max)`,
    `${f}_sum = coalesce(h.${f}_sum + excluded.${f}_sum, h.${f}_sum, excluded.${f}_sum)`,
    `${f}_count = h.${f}_count + excluded.${f}_count`,
  ]),
].join(',\n          ');

/**
 * A CTE of the statement that updates the batch's boxes (`updated`, with `id` and `license_key`): the
 * health rows go in with the reports they come from, in one statement, so a report is acknowledged
 * only with its figures stored, a report the update did not take (it goes on to the diff path) adds
 * nothing here, and a batch costs no statement more than before. The box's row is locked by the update
 * first, so two writers of the same box's hour queue there and never deadlock here.
 */
export function upsertHealth(health: HealthColumns): SQL {
  return sql`health as (
    insert into box_health as h (box_id, ${sql.raw(HEALTH_ROW)})
    select u.id, ${sql.raw(HEALTH_ROW.split(', ').map((c) => `f.${c}`).join(', '))}
    from unnest(${health.arrays()}) as f(license_key, ${sql.raw(HEALTH_ROW)})
    join updated u on u.license_key = f.license_key
    on conflict (box_id, hour) do update set
          ${sql.raw(FOLD)})`;
}
