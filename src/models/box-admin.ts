import type pg from 'pg';
import type { BoxStatus } from '../db/schema';
import { inTransaction, run, sql, type Queryable, type SQL } from '../db/sql';
import { insertStatusEvents, type RecordedEvent } from '../live/events-table';
import { boxColumns, type BoxRow } from './boxes';

// Boxes an operator registers, edits and removes. Reports create boxes too (src/ingest); both meet
// on the licence key, which is unique.

/** The rows a statement returns. */
async function rowsOf<T extends pg.QueryResultRow>(db: Queryable, query: SQL): Promise<T[]> {
  return (await run<T>(db, query)).rows;
}

export interface NewBox {
  licenseKey: string;
  name: string | null;
  apiAddress: string | null;
  apiPort: number | null;
  /** Bound at registration (the box's next login must send it); null: its first login binds one. */
  hardwareSerial?: string | null;
}

export type RegisterOutcome =
  /** `restored`: the key was a removed box's; it is listed again, with its history. */
  | { kind: 'registered'; box: BoxRow; restored: boolean; events: RecordedEvent[] }
  | { kind: 'taken'; box: BoxRow };

/**
 * A box known before it reports. It starts OFFLINE (it has not reported); its first report brings
 * it online. A removed box's key restores that box with the new details.
 */
export function registerBox(pool: pg.Pool, box: NewBox, { mayRestore = true }: { /** False for a key just drawn: a removed box's is taken, not restored. */ mayRestore?: boolean } = {}): Promise<RegisterOutcome> {
  const serial = box.hardwareSerial ?? null;
  return inTransaction(pool, async (client) => {
    const inserted = await rowsOf<BoxRow>(
      client,
      sql`insert into boxes as b (license_key, name, api_address, api_port, hardware_serial, hardware_bound_at, status, status_since)
          values (${box.licenseKey}, ${box.name}, ${box.apiAddress}, ${box.apiPort}, ${serial}, case when ${serial}::text is null then null else now() end, 'offline', now())
          on conflict (license_key) do nothing
          returning ${boxColumns()}`,
    );
    if (inserted[0]) return { kind: 'registered', box: inserted[0], restored: false, events: [] };

    const [existing] = await rowsOf<BoxRow & { removed: boolean }>(
      client,
      sql`select ${boxColumns()}, b.removed_at is not null as removed from boxes b where b.license_key = ${box.licenseKey} for no key update`,
    );
    if (!existing) throw new Error(`box ${box.licenseKey} conflicted on insert but cannot be read`);
    if (!existing.removed || !mayRestore) {
      const { removed: _, ...row } = existing;
      return { kind: 'taken', box: row };
    }
    const [restored] = await rowsOf<BoxRow>(
      client,
      sql`update boxes as b set removed_at = null, name = coalesce(${box.name}, b.name), api_address = ${box.apiAddress}, api_port = ${box.apiPort},
            hardware_serial = coalesce(${serial}, b.hardware_serial),
            hardware_bound_at = case when ${serial}::text is null then b.hardware_bound_at else now() end
          where b.id = ${existing.id} returning ${boxColumns()}`,
    );
    // Last statement of the transaction: it holds the events lock until commit (see events-table.ts).
    const events = await insertStatusEvents(client, [{ box_id: existing.id, device_id: null, from_status: 'removed', to_status: restored!.status, at: new Date() }]);
    return { kind: 'registered', box: restored!, restored: true, events };
  });
}

export interface BoxPatch {
  name?: string | null;
  apiAddress?: string | null;
  apiPort?: number | null;
}

/** Sets the fields present in `patch` (null clears); undefined when there is no such listed box. */
export async function updateBox(pool: pg.Pool, boxId: number, patch: BoxPatch): Promise<BoxRow | undefined> {
  const sets: SQL[] = [];
  if (patch.name !== undefined) sets.push(sql`name = ${patch.name}`);
  if (patch.apiAddress !== undefined) sets.push(sql`api_address = ${patch.apiAddress}`);
  if (patch.apiPort !== undefined) sets.push(sql`api_port = ${patch.apiPort}`);
  const rows =
    sets.length > 0
      ? await rowsOf<BoxRow>(pool, sql`update boxes as b set ${sql.join(sets, sql`, `)} where b.id = ${boxId} and b.removed_at is null returning ${boxColumns()}`)
      : await rowsOf<BoxRow>(pool, sql`select ${boxColumns()} from boxes b where b.id = ${boxId} and b.removed_at is null`);
  return rows[0];
}

export type RemoveOutcome =
  | { kind: 'removed'; boxId: number; licenseKey: string; historyDeleted: boolean; events: RecordedEvent[] }
  | { kind: 'not_found' };

/**
 * Soft removal hides the box and everything of it from every read, keeps its rows, and records a
 * box event to REMOVED. With `deleteHistory` the row goes, and with it (by cascade) its devices,
 * last report and config audit trail, and (in the same statement: the partitioned history tables have no
 * foreign keys) its status history and health; a box removed earlier can be deleted so too.
 */
export function removeBox(pool: pg.Pool, boxId: number, deleteHistory: boolean): Promise<RemoveOutcome> {
  if (deleteHistory) {
    return rowsOf<{ id: number; licenseKey: string }>(pool, sql`with box as (delete from boxes where id = ${boxId} returning id, license_key),
          history as (delete from status_events where box_id = (select id from box)),
          health as (delete from box_health where box_id = (select id from box))
          select id, license_key as "licenseKey" from box`).then(
      ([row]) => (row ? { kind: 'removed', boxId: row.id, licenseKey: row.licenseKey, historyDeleted: true, events: [] } : { kind: 'not_found' }),
    );
  }
  return inTransaction(pool, async (client) => {
    const at = new Date();
    const [row] = await rowsOf<{ id: number; licenseKey: string; status: BoxStatus }>(
      client,
      sql`update boxes set removed_at = ${at} where id = ${boxId} and removed_at is null returning id, license_key as "licenseKey", status`,
    );
    if (!row) return { kind: 'not_found' } as const;
    const events = await insertStatusEvents(client, [{ box_id: row.id, device_id: null, from_status: row.status, to_status: 'removed', at }]);
    return { kind: 'removed', boxId: row.id, licenseKey: row.licenseKey, historyDeleted: false, events } as const;
  });
}
