// A database as an earlier version left it: drizzle's migrator run with the migrations before one, so
// that the gateway's own start applies the rest, as an upgrade in the field does.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import type pg from 'pg';
import { MIGRATIONS_FOLDER } from '../../src/db/connection';

/** Applies the migrations numbered below `firstLeftOut` to `client`'s database. */
export async function migrateBefore(client: pg.Client, firstLeftOut: number): Promise<void> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'fleetgate-migrations-'));
  try {
    await cp(MIGRATIONS_FOLDER, folder, { recursive: true });
    const journalFile = path.join(folder, 'meta', '_journal.json');
    const journal = JSON.parse(await readFile(journalFile, 'utf8'));
    journal.entries = journal.entries.filter((entry: { idx: number }) => entry.idx < firstLeftOut);
    await writeFile(journalFile, JSON.stringify(journal));
    await migrate(drizzle(client), { migrationsFolder: folder });
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * `rows` status events over the last `days` days for `boxes` boxes of `devicesPerBox` devices, as the
 * unpartitioned table of migrations 0000–0006 holds them.
 */
export async function fillOldHistory(client: pg.Client, { boxes, devicesPerBox, rows, days }: { boxes: number; devicesPerBox: number; rows: number; days: number }): Promise<void> {
  await client.query(`insert into boxes (license_key, status, status_since) select 'OLD-' || g, 'online', now() from generate_series(1, $1::int) g`, [boxes]);
  await client.query(
    `insert into devices (box_id, external_id, type, status, status_since, first_seen_at, updated_at)
     select b.id, 'cam-' || g, 'rtsp', 'online', now(), now(), now() from boxes b, generate_series(1, $1::int) g`,
    [devicesPerBox],
  );
  const { rows: span } = await client.query('select min(id)::int as first, count(*)::int as n from devices');
  await client.query(
    `insert into status_events (box_id, device_id, from_status, to_status, at)
     select d.box_id, d.id, case when g % 2 = 0 then 'online' else 'offline' end, case when g % 2 = 0 then 'offline' else 'online' end,
            now() - make_interval(days => $2::int) * (1 - g::float8 / $1::int)
     from generate_series(1, $1::int) g join devices d on d.id = $3::int + g % $4::int`,
    [rows, days, span[0].first, span[0].n],
  );
}
