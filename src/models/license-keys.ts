import { randomInt } from 'node:crypto';
import type pg from 'pg';
import { inTransaction, run, sql } from '../db/sql';
import { boxColumns, type BoxRow } from './boxes';

// Licence keys this gateway issues, in the vendor's shape (e.g. ZKZCPI000120190807142601): six
// letters (LICENSE_KEY_PREFIX), four random digits, the UTC issue time as yyyyMMddHHmmss. The boxes
// table's unique index on the key is what makes one unique: a taken key is drawn again.

export const ISSUED_LICENSE_KEY = /^[A-Z]{6}\d{4}\d{14}$/;
/** Most boxes one registerBoxes call (or `npm run boxes -- issue`) makes. */
export const MAX_BOXES_PER_ISSUE = 1000;
/** Draws of four digits before giving up on a second (10,000 keys a second is the shape's limit). */
const MAX_DRAWS = 50;

/** One key of the vendor's shape issued at `at`. */
export function licenseKeyAt(prefix: string, at: Date): string {
  const stamp = at.toISOString().replace(/\D/g, '').slice(0, 14);
  return `${prefix}${String(randomInt(10_000)).padStart(4, '0')}${stamp}`;
}

export interface IssuedBox {
  name: string | null;
  hardwareSerial?: string | null;
}

/**
 * Registers one box per entry with a fresh key, in one transaction: all or none. A key drawn twice
 * (here or by a concurrent issue) is drawn again; `on conflict do nothing` leaves such rows out.
 */
export function registerIssuedBoxes(pool: pg.Pool, prefix: string, boxes: readonly IssuedBox[]): Promise<BoxRow[]> {
  return inTransaction(pool, async (client) => {
    const made: BoxRow[] = [];
    let waiting = [...boxes];
    for (let draw = 0; waiting.length > 0; draw++) {
      if (draw === MAX_DRAWS) throw new Error(`could not draw ${waiting.length} unused licence keys with prefix ${prefix}`);
      const at = new Date();
      const keys = new Set<string>();
      while (keys.size < waiting.length) keys.add(licenseKeyAt(prefix, at));
      const rows = waiting.map((box, i) => ({ key: [...keys][i]!, name: box.name, serial: box.hardwareSerial ?? null }));
      const { rows: inserted } = await run<BoxRow & { position: number }>(
        client,
        sql`insert into boxes as b (license_key, name, hardware_serial, hardware_bound_at, status, status_since)
            select r.key, r.name, r.serial, case when r.serial is null then null else now() end, 'offline', now()
            from unnest(${sql.param(rows.map((r) => r.key))}::text[], ${sql.param(rows.map((r) => r.name))}::text[], ${sql.param(rows.map((r) => r.serial))}::text[])
              as r(key, name, serial)
            on conflict (license_key) do nothing
            returning ${boxColumns()}`,
      );
      made.push(...inserted);
      const taken = new Set(inserted.map((row) => row.licenseKey));
      waiting = waiting.filter((_, i) => !taken.has(rows[i]!.key));
    }
    // In the order asked for: names `<prefix>0001…` sort so, and ids grow in insert order within a draw.
    return made.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.id - b.id);
  });
}

export interface BoxKeyRow {
  id: number;
  licenseKey: string;
  name: string | null;
  hardwareSerial: string | null;
  lastLoginAt: Date | null;
}

/** Every listed box's key, name and binding, oldest first (`npm run boxes -- list`). */
export async function listBoxKeys(pool: pg.Pool): Promise<BoxKeyRow[]> {
  const { rows } = await run<BoxKeyRow>(
    pool,
    sql`select id, license_key as "licenseKey", name, hardware_serial as "hardwareSerial", last_login_at as "lastLoginAt"
        from boxes where removed_at is null order by id`,
  );
  return rows;
}
