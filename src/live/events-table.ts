import type pg from 'pg';
import { run, sql } from '../db/sql';

/** The channel every replica LISTENs on; the payload is the highest event id just committed. */
export const EVENTS_CHANNEL = 'fleetgate_events';

/**
 * Advisory lock taken by every transaction that inserts status events, just before inserting.
 * Held until commit, it makes ids commit in order, so a reader that has seen id N has seen every id
 * below it: `id > cursor` catch-up can never skip a row that commits late.
 */
const EVENTS_LOCK = 0x666c_6765; // "flge"

export interface EventRow {
  box_id: number;
  device_id: number | null;
  from_status: string | null;
  to_status: string;
  at: Date;
}

/** A history row, as written; the live layer publishes these after commit. */
export interface RecordedEvent {
  id: number;
  boxId: number;
  deviceId: number | null;
  fromStatus: string | null;
  toStatus: string;
  at: Date;
}

/**
 * Inserts history rows inside the caller's transaction; every replica hears of them once it commits.
 * Make it the transaction's last statement: the lock it takes is held until commit.
 *
 * Lock, insert and notify in one round trip. The lock sits in a joined subquery: no row to insert
 * (and so no id drawn from the sequence) exists before it is taken.
 */
export async function insertStatusEvents(client: pg.ClientBase, rows: EventRow[]): Promise<RecordedEvent[]> {
  if (rows.length === 0) return [];
  const result = await run<{ id: number }>(
    client,
    sql`with inserted as (
          insert into status_events (box_id, device_id, from_status, to_status, at)
          select e.box_id, e.device_id, e.from_status, e.to_status, e.at
          from (select pg_advisory_xact_lock(${EVENTS_LOCK})) as serialized,
               jsonb_array_elements(${JSON.stringify(rows)}::jsonb) with ordinality as item(value, n),
               jsonb_to_record(item.value) as e(box_id int, device_id int, from_status text, to_status text, at timestamptz)
          order by item.n -- ids are drawn in the order the changes happened in
          returning id),
        notified as (select pg_notify(${EVENTS_CHANNEL}, max(id)::text) from inserted)
        select inserted.id from inserted, notified
        order by id -- the n-th id is the n-th row's`,
    'events_insert',
  );
  if (result.rows.length !== rows.length) throw new Error(`inserted ${result.rows.length} status events of ${rows.length}`);
  return rows.map((row, i) => ({
    id: result.rows[i]!.id,
    boxId: row.box_id,
    deviceId: row.device_id,
    fromStatus: row.from_status,
    toStatus: row.to_status,
    at: row.at,
  }));
}
