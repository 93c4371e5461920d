import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { withDatabase } from '../helpers/global-postgres';
import { runScript } from '../helpers/process';

// `npm run token` says which database it used, and a read never makes one: run in the wrong folder,
// it says where it looked and how to point it, instead of listing an empty database it just created.

const tokenCli = (args: string[], env: Record<string, string>) => runScript('src/auth/cli.ts', args, { LOG_LEVEL: 'silent', ...env });
const masked = (url: string) => url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1:***@');

describe('npm run token outside the gateway folder', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await fs.mkdtemp(path.join(os.tmpdir(), 'fleetgate-token-cli-'));
  });
  afterAll(async () => {
    await fs.rm(folder, { recursive: true, force: true });
  });

  it.each([['list'], ['revoke', '1']])('%s says there is no gateway database there and how to point it, and creates none', async (...args) => {
    const dataDir = path.join(folder, '.fleetgate', 'postgres');
    const result = await tokenCli(args, { DATABASE_URL: '', FLEETGATE_DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`There is no gateway database in ${dataDir} (FLEETGATE_DATA_DIR)`);
    expect(result.stderr).toContain('FLEETGATE_DATA_DIR=<its data folder> for the embedded Postgres, DATABASE_URL=postgres://… for an external one.');
    expect(existsSync(path.join(folder, '.fleetgate'))).toBe(false);
  });
});

describe('npm run token on an external Postgres', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let emptyUrl: string;
  const emptyName = `t_empty_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = () => new pg.Client({ connectionString: inject('postgresUrl') });

  beforeAll(async () => {
    database = await createTestDatabase();
    const client = admin();
    await client.connect();
    await client.query(`create database ${emptyName}`);
    await client.end();
    emptyUrl = withDatabase(inject('postgresUrl'), emptyName);
  });
  afterAll(async () => {
    await database?.drop();
    const client = admin();
    await client.connect();
    await client.query(`drop database if exists ${emptyName} with (force)`);
    await client.end();
  });

  it('list on a database without fleetgate tables says so, and leaves it without them', async () => {
    const result = await tokenCli(['list'], { DATABASE_URL: emptyUrl });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`DATABASE_URL ${masked(emptyUrl)} holds no fleetgate tables.`);
    const client = new pg.Client({ connectionString: emptyUrl });
    await client.connect();
    const { rows } = await client.query(`select count(*)::int as tables from pg_tables where schemaname = 'public'`);
    await client.end();
    expect(rows[0].tables).toBe(0);
  });

  it('list names the database it read, with its password masked, whether or not it holds tokens', async () => {
    const place = `DATABASE_URL ${masked(database.url)}`;
    const empty = await tokenCli(['list'], { DATABASE_URL: database.url });
    expect(empty).toMatchObject({ code: 0, stdout: `No tokens in ${place} (--all lists revoked ones too).\n` });
    expect(empty.stderr).toContain("Not the gateway's database? Run the command in the folder the gateway runs in");

    const created = await tokenCli(['create', '--role', 'viewer', '--name', 'wall'], { DATABASE_URL: database.url });
    expect(created.code).toBe(0);
    const listed = await tokenCli(['list'], { DATABASE_URL: database.url });
    expect(listed.code).toBe(0);
    expect(listed.stderr).toBe(`Tokens in ${place}:\n`);
    expect(listed.stdout).toMatch(/^#\d+\tfgt_[A-Za-z0-9_-]{4}…\tviewer\twall\tlast used never\n$/);
    const password = new URL(database.url).password;
    if (password) for (const output of [empty, listed]) expect(output.stdout + output.stderr).not.toContain(`:${password}@`);
  });
});
