import { selectRows, sql } from '../db/sql';
import type pg from 'pg';
import {
  BOX_STATUSES,
  DEVICE_STATUSES,
  DEVICE_TYPES,
  REPORT_FORMATS,
  type BoxStatus,
  type DeviceStatus,
  type DeviceType,
  type ReportFormat,
} from '../db/schema';

/** Devices by status, for one type or all of them. Removed devices count only under `removed`. */
export interface DeviceStatusCounts {
  /** Devices in their box's current list: online + offline + unknown. */
  total: number;
  online: number;
  offline: number;
  unknown: number;
  /** Devices gone from their box's list (whatever their last status was). */
  removed: number;
}

export interface DeviceCounts extends DeviceStatusCounts {
  byType: ({ type: DeviceType } & DeviceStatusCounts)[];
}

export interface BoxStatusCounts {
  total: number;
  online: number;
  offline: number;
}

export interface BoxCounts extends BoxStatusCounts {
  byFormat: ({ format: ReportFormat } & BoxStatusCounts)[];
}

export interface FleetCounts {
  boxes: BoxCounts;
  devices: DeviceCounts;
  /** When the counts were read (they may come from a short-lived cache). */
  countedAt: Date;
}

interface DeviceGroupRow {
  type: DeviceType;
  status: DeviceStatus;
  removed: boolean;
  count: number;
}

const emptyStatusCounts = (): DeviceStatusCounts => ({ total: 0, online: 0, offline: 0, unknown: 0, removed: 0 });

function add(counts: DeviceStatusCounts, row: DeviceGroupRow): void {
  if (row.removed) counts.removed += row.count;
  else if ((DEVICE_STATUSES as readonly string[]).includes(row.status)) {
    counts[row.status] += row.count;
    counts.total += row.count;
  }
}

/** Folds `(type, status, removed, count)` groups into counts; every type appears, zeros included. */
export function deviceCountsFromGroups(groups: readonly DeviceGroupRow[]): DeviceCounts {
  const overall = emptyStatusCounts();
  const byType = new Map(DEVICE_TYPES.map((type) => [type, { type, ...emptyStatusCounts() }]));
  for (const row of groups) {
    add(overall, row);
    const typeCounts = byType.get(row.type);
    if (typeCounts) add(typeCounts, row);
  }
  return { ...overall, byType: [...byType.values()] };
}

/** Device counts of each box in `boxIds`, in one statement. */
export async function deviceCountsPerBox(pool: pg.Pool, boxIds: readonly number[]): Promise<Map<number, DeviceCounts>> {
  const rows = await selectRows<DeviceGroupRow & { boxId: number }>(
    pool,
    sql`select d.box_id as "boxId", d.type, d.status, d.removed_at is not null as removed, count(*)::int as count
        from devices d where d.box_id = any(${sql.param(boxIds)}::int4[])
        group by 1, 2, 3, 4`,
  );
  const groups = new Map<number, DeviceGroupRow[]>();
  for (const row of rows) {
    const list = groups.get(row.boxId);
    if (list) list.push(row);
    else groups.set(row.boxId, [row]);
  }
  return new Map(boxIds.map((id) => [id, deviceCountsFromGroups(groups.get(id) ?? [])]));
}

/** Boxes and devices of the whole fleet (removed boxes and their devices left out): two aggregates. */
export async function fleetCounts(pool: pg.Pool): Promise<FleetCounts> {
  const countedAt = new Date();
  const [deviceGroups, boxGroups] = await Promise.all([
    selectRows<DeviceGroupRow>(
      pool,
      sql`select d.type, d.status, d.removed_at is not null as removed, count(*)::int as count
          from devices d join boxes b on b.id = d.box_id where b.removed_at is null
          group by 1, 2, 3`,
    ),
    selectRows<{ status: BoxStatus; format: ReportFormat | null; count: number }>(
      pool,
      sql`select b.status, b.report_format as format, count(*)::int as count
          from boxes b where b.removed_at is null group by 1, 2`,
    ),
  ]);
  const boxes: BoxCounts = {
    total: 0,
    online: 0,
    offline: 0,
    byFormat: REPORT_FORMATS.map((format) => ({ format, total: 0, online: 0, offline: 0 })),
  };
  for (const row of boxGroups) {
    if (!(BOX_STATUSES as readonly string[]).includes(row.status)) continue;
    boxes.total += row.count;
    boxes[row.status] += row.count;
    const format = boxes.byFormat.find((f) => f.format === row.format);
    if (format) {
      format.total += row.count;
      format[row.status] += row.count;
    }
  }
  return { boxes, devices: deviceCountsFromGroups(deviceGroups), countedAt };
}
