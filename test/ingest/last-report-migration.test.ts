import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { withDatabase } from '../helpers/global-postgres';

// Migration 0006 drops the columns that kept an older box's newest health figures apart from its
// stored body: a box's last report must survive it whole. Run on a database at migration 0005.

const serverUrl = inject('postgresUrl');
const name = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
let db: pg.Client;

async function applyMigration(tag: string): Promise<void> {
  const text = await readFile(new URL(`../../drizzle/${tag}.sql`, import.meta.url), 'utf8');
  for (const statement of text.split('--> statement-breakpoint')) if (statement.trim()) await db.query(statement);
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  db = new pg.Client({ connectionString: withDatabase(serverUrl, name) });
  await db.connect();
  for (const tag of ['0000_init', '0001_box_update_storage', '0002_api_tokens', '0003_box_report_body_text', '0004_box_report_body_alone', '0005_box_report_ext_data']) {
    await applyMigration(tag);
  }
});

afterAll(async () => {
  await db?.end();
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
});

it('writes out the last body of a box whose figures were kept apart, and leaves the others as stored', async () => {
  const body = (ext: string) => `{"dev_sno":"MIG-01","sub_devices":[{"ep_id":"c","ep_name":"东门"}],"gateway_ext_data":${ext},"gateway_name":"网关"}`;
  const stored = body('{"cpu":1}');
  const prefix = Buffer.byteLength(stored.slice(0, stored.indexOf('{"cpu"')));
  const suffix = Buffer.byteLength(',"gateway_name":"网关"}');
  const ext = '{"cpu":22.5,"note":"温度"}';
  const insert = async (key: string, extFor: string) => {
    const { rows } = await db.query(
      `insert into boxes (license_key, status, status_since, last_report_hash, last_report_ext_data, last_report_ext_prefix, last_report_ext_suffix, last_report_ext_for)
       values ($1, 'online', now(), 'h2', $2, $3, $4, $5) returning id`,
      [key, ext, prefix, suffix, extFor],
    );
    await db.query('insert into box_last_reports (box_id, body) values ($1, $2)', [rows[0].id, stored]);
    return rows[0].id as number;
  };
  const split = await insert('MIG-01', 'h2');
  // Figures for an older body: the stored body was rewritten since (by a replica of an earlier version).
  const stale = await insert('MIG-02', 'h1');

  await applyMigration('0006_last_report_as_sent');

  const bodies = new Map((await db.query('select box_id, body from box_last_reports')).rows.map((r) => [r.box_id, r.body]));
  expect(bodies.get(split)).toBe(body(ext));
  expect(JSON.parse(bodies.get(split))).toMatchObject({ gateway_ext_data: { cpu: 22.5, note: '温度' }, gateway_name: '网关' });
  expect(bodies.get(stale)).toBe(stored);
  const { rows } = await db.query(`select column_name from information_schema.columns where table_name in ('boxes', 'box_last_reports') and column_name like any(array['last_report_ext%', 'received_at'])`);
  expect(rows).toEqual([]);
});
