import type pg from 'pg';
import type { EventRow } from '../../live/events-table';
import { sql, type SQL } from '../../db/sql';
import { textArray, timestamptzArray } from '../binary-arrays';
import type { StatusChanges } from '../report';

/**
 * The statuses the one-statement update sets by key (Report.statusChanges): a device list that is the
 * stored one but for some statuses needs no read of the devices, and its history comes from the report.
 */

/** The devices' new statuses, a column each (see updateUnchangedBoxes): licence key, external id, status, reported status, time. */
export class StatusColumns {
  private readonly keys: string[] = [];
  private readonly ids: string[] = [];
  private readonly statuses: string[] = [];
  private readonly reported: Array<string | null> = [];
  private readonly at: Date[] = [];

  add(licenseKey: string, changes: StatusChanges, at: Date): void {
    for (const { device } of changes.changed) {
      this.keys.push(licenseKey);
      this.ids.push(device.externalId);
      this.statuses.push(device.status);
      this.reported.push(device.reportedStatus);
      this.at.push(at);
    }
  }

  get size(): number {
    return this.keys.length;
  }

  arrays(): SQL {
    return sql`${textArray(this.keys)}::text[], ${textArray(this.ids)}::text[], ${textArray(this.statuses)}::text[],
               ${textArray(this.reported)}::text[], ${timestamptzArray(this.at)}::timestamptz[]`;
  }
}

/** Device ids of the statuses the update set, from its rows (`device_id` not null), by box id and external id. */
export function statusDeviceIds(rows: pg.QueryResultRow[]): Map<string, number> {
  const ids = new Map<string, number>();
  for (const r of rows) if (r.device_id !== null) ids.set(`${r.id}\u0000${r.external_id}`, r.device_id);
  return ids;
}

/** The history of `changes`, set on box `boxId` at `at`; every changed device must have had its row updated. */
export function statusEvents(boxId: number, changes: StatusChanges, at: Date, deviceIds: Map<string, number>): EventRow[] {
  return changes.changed.map(({ device, from }) => {
    const deviceId = deviceIds.get(`${boxId}\u0000${device.externalId}`);
    // The stored list was the expected one, so each of its devices has a row; if not, nothing of the batch is kept.
    if (deviceId === undefined) throw new Error(`device ${device.externalId} of box ${boxId} was not found though its list was the expected one`);
    return { box_id: boxId, device_id: deviceId, from_status: from, to_status: device.status, at };
  });
}
