import type pg from 'pg';
import { ensurePartitions, isPartitioned } from '../../src/history/partitions';

// Boxes, devices and their status history written by SQL with chosen times, so availability can be
// checked against sums done by hand. Each subject's current row agrees with its last event, as
// ingest leaves it.

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** A UTC midnight `days` days before today's. */
export function daysAgo(days: number): Date {
  const today = Math.floor(Date.now() / DAY) * DAY;
  return new Date(today - days * DAY);
}

export const at = (base: Date, ms: number) => new Date(base.getTime() + ms);

/** [when, from, to]: one status change; `from` null is a first sighting. */
export type Change = [Date, string | null, string];

/** Makes sure the history table has partitions for these instants, once it is partitioned. */
async function partitionsFor(db: pg.Pool, times: Date[]): Promise<void> {
  if (times.length === 0) return;
  const client = await db.connect();
  try {
    if (!(await isPartitioned(client, 'status_events'))) return;
    const sorted = times.map((t) => t.getTime()).sort((a, b) => a - b);
    await ensurePartitions(client, 'status_events', new Date(sorted[0]!), new Date(sorted[sorted.length - 1]!));
  } finally {
    client.release();
  }
}

async function insertEvents(db: pg.Pool, boxId: number, deviceId: number | null, changes: Change[]): Promise<void> {
  await partitionsFor(db, changes.map(([when]) => when));
  for (const [when, from, to] of changes) {
    await db.query('insert into status_events (box_id, device_id, from_status, to_status, at) values ($1, $2, $3, $4, $5)', [boxId, deviceId, from, to, when]);
  }
}

/**
 * A box with this history (box events only); its row is left as the last change left it (a last
 * change to `removed` removes it, hiding it with its devices). No history: registered, never reported.
 */
export async function insertBox(db: pg.Pool, licenseKey: string, changes: Change[] = []): Promise<number> {
  const last = changes[changes.length - 1];
  const status = last ? (last[2] === 'removed' ? (last[1] ?? 'online') : last[2]) : 'offline';
  const { rows } = await db.query<{ id: number }>(
    `insert into boxes (license_key, status, status_since, first_report_at, last_report_at, removed_at)
     values ($1, $2, $3, $4, $4, $5) returning id`,
    [licenseKey, status, last?.[0] ?? new Date(), changes[0]?.[0] ?? null, last?.[2] === 'removed' ? last[0] : null],
  );
  const id = rows[0]!.id;
  await insertEvents(db, id, null, changes);
  return id;
}

/** A device of `boxId` with this history; its row is left as the last change left it. */
export async function insertDevice(db: pg.Pool, boxId: number, externalId: string, changes: Change[]): Promise<number> {
  const last = changes[changes.length - 1]!;
  const removed = last[2] === 'removed';
  // A removed device keeps its last status; find it among the changes before the removal.
  const status = removed ? (last[1] ?? 'online') : last[2];
  const { rows } = await db.query<{ id: number }>(
    `insert into devices (box_id, external_id, name, type, status, status_since, first_seen_at, updated_at, removed_at)
     values ($1, $2, $2, 'rtsp', $3, $4, $5, $4, $6) returning id`,
    [boxId, externalId, status, last[0], changes[0]![0], removed ? last[0] : null],
  );
  const id = rows[0]!.id;
  await insertEvents(db, boxId, id, changes);
  return id;
}
