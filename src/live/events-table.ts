import type pg from 'pg';

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

const INSERT_EVENTS = `
  insert into status_events (box_id, device_id, from_status, to_status, at)
  select box_id, device_id, from_status, to_status, at
  from jsonb_array_elements($1::jsonb) with ordinality as item(value, n),
       jsonb_to_record(item.value) as e(box_id int, device_id int, from_status text, to_status text, at timestamptz)
  order by item.n -- ids follow the order the changes happened in
  returning id, box_id, device_id, from_status, to_status, at`;

/**
 * Inserts history rows inside the caller's transaction and tells every replica once it commits.
 * Call it as the transaction's last statement: the lock it takes is held until commit.
 */
export async function insertStatusEvents(client: pg.ClientBase, rows: EventRow[]): Promise<RecordedEvent[]> {
  if (rows.length === 0) return [];
  await client.query({ name: 'events_lock', text: 'select pg_advisory_xact_lock($1)', values: [EVENTS_LOCK] });
  const result = await client.query({ name: 'events_insert', text: INSERT_EVENTS, values: [JSON.stringify(rows)] });
  const events: RecordedEvent[] = result.rows.map((r) => ({
    id: r.id,
    boxId: r.box_id,
    deviceId: r.device_id,
    fromStatus: r.from_status,
    toStatus: r.to_status,
    at: r.at,
  }));
  const lastId = Math.max(...events.map((e) => e.id));
  await client.query({ name: 'events_notify', text: 'select pg_notify($1, $2)', values: [EVENTS_CHANNEL, String(lastId)] });
  return events;
}
