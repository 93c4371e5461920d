import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { ROOT } from '../helpers/process';
import { within } from '../helpers/wait';

// `npm run boxes` as built (dist/boxes.js of this run's build) against a real database.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let sql: pg.Pool;
beforeAll(async () => {
  database = await createTestDatabase();
  sql = new pg.Pool({ connectionString: database.url, max: 1 });
});
afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

function boxes(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(inject('gatewayBuild'), 'boxes.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: database.url, LICENSE_KEY_PREFIX: 'CLITST', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return within(exited, 30_000, () => `boxes ${args.join(' ')} still running after 30 s:\n${stdout}${stderr}`);
}

const boxCount = async () => (await sql.query('select count(*)::int as n from boxes')).rows[0].n as number;

describe('npm run boxes', () => {
  it('issue prints CSV of the boxes it registered, progress on stderr', async () => {
    const run = await boxes(['issue', '12', '--name-prefix', 'gate-']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('license_key,box_id,name');
    expect(lines).toHaveLength(13);
    const rows = lines.slice(1).map((line) => line.split(','));
    for (const [i, [key, id, name]] of rows.entries()) {
      expect(key).toMatch(/^CLITST\d{18}$/);
      expect(name).toBe(`gate-${String(i + 1).padStart(2, '0')}`);
      const dbId = Number(Buffer.from(id!, 'base64').toString().split(':')[1]);
      expect((await sql.query('select license_key, name, status from boxes where id = $1', [dbId])).rows[0]).toEqual({ license_key: key, name, status: 'offline' });
    }
    expect(run.stderr).toContain('Registered 12 boxes');
  });

  it('list --csv shows every box with its binding', async () => {
    const run = await boxes(['list', '--csv']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('license_key,box_id,name,hardware_serial,last_login_at');
    expect(lines.length - 1).toBe(await boxCount());
  });

  it('bad input: usage on stderr, exit 2, nothing stored', async () => {
    const before = await boxCount();
    for (const args of [['issue'], ['issue', '0'], ['issue', '1001'], ['issue', 'ten'], ['issue', '3', '--name-prefix', 'x'.repeat(200)], ['frobnicate'], ['issue', '2', '--bogus']]) {
      const run = await boxes(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('Usage: npm run boxes');
    }
    const prefix = await boxes(['issue', '2'], { LICENSE_KEY_PREFIX: 'bad' });
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toContain('LICENSE_KEY_PREFIX');
    expect(await boxCount()).toBe(before);
  });

  it('list on a database that is not a gateway\'s says so (exit 1) and creates nothing', async () => {
    const empty = await createTestDatabase();
    try {
      // The run's template is migrated; drop its tables to stand for a database of something else.
      const client = new pg.Client({ connectionString: empty.url });
      await client.connect();
      await client.query('drop schema public cascade; create schema public; drop schema if exists drizzle cascade');
      await client.end();
      const run = await boxes(['list'], { DATABASE_URL: empty.url });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('holds no fleetgate tables');
    } finally {
      await empty.drop();
    }
  });
});
