/**
 * What box health over time costs on disk: a day of box_health rows for a fleet (one row per box per
 * UTC hour) in a fresh embedded Postgres, measured with pg_column_size and pg_total_relation_size, then
 * a few hours written as ingest writes them (one upsert per report, every box reporting every 20 s),
 * to see what the updates of the current hour leave behind.
 *
 *   npx tsx bench/health-size.ts [--boxes 10000] [--reports-per-hour 180] [--hours 3] [--vacuum-every 0] [--fillfactor 100]
 *
 * --vacuum-every N vacuums the partition after every N upserts per box (as autovacuum would after
 * N × boxes dead rows); --fillfactor sets the partition's (room on each page for HOT updates).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createPool, migrateDatabase } from '../src/db/connection';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { ensurePartitions } from '../src/history/partitions';
import { createLogger } from '../src/log';
import { freePort, numberOption, stopLeftoverPostgres } from './lib/common';

const { values } = parseArgs({
  options: { boxes: { type: 'string' }, 'reports-per-hour': { type: 'string' }, 'vacuum-every': { type: 'string' }, fillfactor: { type: 'string' }, hours: { type: 'string' } },
});
const boxes = numberOption(values.boxes, 'boxes', 10_000, 1, 1_000_000, true);
const reportsPerHour = numberOption(values['reports-per-hour'], 'reports-per-hour', 180, 1, 3_600, true);
const vacuumEvery = numberOption(values['vacuum-every'], 'vacuum-every', 0, 0, 3_600, true);
const fillfactor = numberOption(values.fillfactor, 'fillfactor', 100, 10, 100, true);
const hours = numberOption(values.hours, 'hours', 3, 1, 48, true);

const DAY = new Date('2026-01-01T00:00:00Z');
const MB = 1024 * 1024;

/** A row's figures: every figure present, one decimal like a box's own, 180 reports folded. */
const FOLDED_ROW = `g as box_id, $1::timestamptz + h * interval '1 hour' as hour, ${reportsPerHour} as reports,
  10 + (g % 40), 20 + (g % 60) + 0.5, (15 + (g % 50)) * ${reportsPerHour}.0, ${reportsPerHour},
  30 + (g % 30), 35 + (g % 30) + 0.5, (32 + (g % 30)) * ${reportsPerHour}.0, ${reportsPerHour},
  20 + (g % 60), 20 + (g % 60) + 0.1, (20 + (g % 60)) * ${reportsPerHour}.0, ${reportsPerHour},
  45 + (g % 15), 47 + (g % 15) + 0.5, (46 + (g % 15)) * ${reportsPerHour}.0, ${reportsPerHour}`;
const COLUMNS = `box_id, hour, reports, cpu_min, cpu_max, cpu_sum, cpu_count, memory_min, memory_max, memory_sum, memory_count,
  disk_min, disk_max, disk_sum, disk_count, temperature_min, temperature_max, temperature_sum, temperature_count`;

async function main() {
  const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-health-size-'));
  await fs.chmod(tempDir, 0o777); // as root, the embedded Postgres runs as `postgres`
  const dataDir = path.join(tempDir, 'postgres');
  const log = createLogger('warn');
  const postgres = await startEmbeddedPostgres({ dataDir, port: await freePort(), log });
  const pool = createPool(postgres.url, 2, log);
  try {
    await migrateDatabase(pool, log);
    const client = await pool.connect();
    try {
      await ensurePartitions(client, 'box_health', DAY, DAY);
      await client.query(`alter table box_health_p2026_01 set (fillfactor = ${fillfactor}, autovacuum_enabled = false)`);
      await measureDay(client);
      await measureIngestHours(client);
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
    await postgres.stop();
    await stopLeftoverPostgres(dataDir);
    await fs.rm(tempDir, { recursive: true, force: true });
  }
}

async function size(client: pg.PoolClient, hours: number) {
  await client.query('vacuum analyze box_health_p2026_01');
  const { rows } = await client.query(`select count(*)::int as rows, avg(pg_column_size(h.*))::float8 as tuple,
      pg_table_size('box_health_p2026_01')::float8 as heap, pg_indexes_size('box_health_p2026_01')::float8 as index,
      pg_total_relation_size('box_health_p2026_01')::float8 as total
    from box_health_p2026_01 h`);
  const r = rows[0];
  const perRow = r.total / r.rows;
  const perDay = (perRow * boxes * 24) / MB;
  console.log(`  ${r.rows} rows (${boxes} boxes × ${hours} h): tuple ${r.tuple.toFixed(0)} B (pg_column_size), on disk ${perRow.toFixed(1)} B/row`);
  console.log(`    heap ${(r.heap / MB).toFixed(1)} MiB + primary key ${(r.index / MB).toFixed(1)} MiB = ${(r.total / MB).toFixed(1)} MiB`);
  console.log(`    at ${boxes} boxes: ${perDay.toFixed(1)} MiB a day, ${((perDay * 365) / 1024).toFixed(2)} GiB a year, ${((perDay * 400) / 1024).toFixed(2)} GiB for 400 days`);
}

async function measureDay(client: pg.PoolClient) {
  console.log(`A day of hourly rows, written once each:`);
  const started = Date.now();
  await client.query(`insert into box_health (${COLUMNS}) select ${FOLDED_ROW} from generate_series(1, ${boxes}) g, generate_series(0, 23) h`, [DAY]);
  console.log(`  inserted in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await size(client, 24);
}

/**
 * Hours as ingest writes them: every box's row of the hour upserted once per report, as the batches'
 * CTE does, then the next hour. The updates leave dead row versions; what the partition keeps per
 * row at the end is what the write rule really costs on disk.
 */
async function measureIngestHours(client: pg.PoolClient) {
  await client.query('truncate box_health');
  const vacuum = vacuumEvery ? `vacuum after every ${vacuumEvery * boxes} upserts` : 'no vacuum meanwhile';
  console.log(`${hours} hours written as ingest does (${reportsPerHour} upserts per box per hour), fillfactor ${fillfactor}, ${vacuum}:`);
  const started = Date.now();
  for (let hour = 0; hour < hours; hour++) {
    const at = new Date(DAY.getTime() + hour * 3_600_000);
    for (let report = 0; report < reportsPerHour; report++) {
      await client.query(
        `insert into box_health as h (${COLUMNS})
         select g, $1, 1, 20.5, 20.5, 20.5, 1, 40.5, 40.5, 40.5, 1, 60.5, 60.5, 60.5, 1, 50.5, 50.5, 50.5, 1 from generate_series(1, ${boxes}) g
         on conflict (box_id, hour) do update set reports = h.reports + 1,
           cpu_min = least(h.cpu_min, excluded.cpu_min), cpu_max = greatest(h.cpu_max, excluded.cpu_max),
           cpu_sum = h.cpu_sum + excluded.cpu_sum, cpu_count = h.cpu_count + 1,
           memory_sum = h.memory_sum + excluded.memory_sum, memory_count = h.memory_count + 1,
           disk_sum = h.disk_sum + excluded.disk_sum, disk_count = h.disk_count + 1,
           temperature_sum = h.temperature_sum + excluded.temperature_sum, temperature_count = h.temperature_count + 1`,
        [at],
      );
      if (vacuumEvery && (report + 1) % vacuumEvery === 0) await client.query('vacuum box_health_p2026_01');
    }
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(`  ${boxes * reportsPerHour * hours} upserts in ${seconds.toFixed(1)} s (${((seconds * 1e6) / (boxes * reportsPerHour * hours)).toFixed(1)} µs each)`);
  const { rows } = await client.query(
    `select n_tup_hot_upd::float8 / nullif(n_tup_upd, 0) as hot from pg_stat_user_tables where relname = 'box_health_p2026_01'`,
  );
  console.log(`  ${(100 * (rows[0].hot ?? 0)).toFixed(0)} % of the updates HOT (no index entry, room found on the row's own page)`);
  await size(client, hours);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
