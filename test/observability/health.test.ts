import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database';
import { startGateway, type TestGateway } from '../helpers/gateway';

/** Migrations drizzle-kit generated, as the gateway counts them. */
const MIGRATIONS = (JSON.parse(readFileSync(new URL('../../drizzle/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] }).entries.length;

async function get(url: string) {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as unknown };
}

describe('/healthz and /readyz', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway?.close());

  it('ready when the database answers and every migration is applied', async () => {
    expect(await get(`${gateway.url}/readyz`)).toEqual({ status: 200, body: { status: 'ready' } });
    expect(await get(`${gateway.url}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('unavailable while a migration is missing', async () => {
    const { rows } = await gateway.sql.query('delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations) returning *');
    try {
      expect(await get(`${gateway.url}/readyz`)).toEqual({ status: 503, body: { status: 'unavailable', reason: `1 of ${MIGRATIONS} database migrations are not applied` } });
    } finally {
      const [row] = rows;
      await gateway.sql.query('insert into drizzle.__drizzle_migrations (id, hash, created_at) values ($1, $2, $3)', [row.id, row.hash, row.created_at]);
    }
    expect((await get(`${gateway.url}/readyz`)).status).toBe(200);
  });
});

it('unavailable when the database is gone, while /healthz stays ok', async () => {
  const database = await createTestDatabase();
  const gateway = await startGateway({}, database.url);
  try {
    expect((await get(`${gateway.url}/readyz`)).status).toBe(200);
    await gateway.sql.end();
    await database.drop();
    const started = Date.now();
    const down = await get(`${gateway.url}/readyz`);
    // It answers, at the latest when the probe's own 1 s timeout fires (the bound leaves room for a loaded machine).
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(down.status).toBe(503);
    expect(down.body).toEqual({ status: 'unavailable', reason: expect.stringMatching(/^the database is unreachable: database "t_\w+" does not exist$/) });
    expect(await get(`${gateway.url}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
  } finally {
    await gateway.app.stop(); // its database and checking pool are gone already
    await database.drop();
  }
});
