import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send } from '../helpers/graphql';
import { newerReport } from './fleet-fixture';

// GraphQL reads run on a pool of their own (DB_API_POOL_SIZE) with a statement timeout, so no number
// of slow queries can hold the connections ingest needs, and none holds one for ever.

let gateway: TestGateway;
let timing: TestGateway;
beforeAll(async () => {
  [gateway, timing] = await Promise.all([startGateway({ dbApiPoolSize: 2 }), startGateway({ graphqlStatementTimeoutMs: 300 })]);
  for (const g of [gateway, timing]) expect((await postReport(g.url, newerReport('POOL-BOX-1', [{ id: 'p1' }]))).status).toBe(200);
});
afterAll(async () => {
  await gateway?.close();
  await timing?.close();
});

/** Reads the config audit table; `first` tells otherwise identical requests apart (nothing coalesces them). */
const audit = (first = 10) => `{ boxes(first: ${first}) { nodes { licenseKey configChanges { totalCount } } } }`;

/** Holds an exclusive lock on the config audit table (which only GraphQL reads) until `release`. */
async function lockAuditTable(sql: pg.Pool) {
  const client = await sql.connect();
  await client.query('begin');
  await client.query('lock table box_config_changes in access exclusive mode');
  return {
    async release() {
      await client.query('rollback');
      client.release();
    },
  };
}

/** Waits until `n` GraphQL sessions wait on a lock (pg_stat_activity), with a deadline. */
async function apiSessionsWaiting(sql: pg.Pool, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await sql.query(
      `select count(*)::int as waiting from pg_stat_activity where datname = current_database() and application_name = 'fleetgate-api' and wait_event_type = 'Lock'`,
    );
    if (rows[0].waiting >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0].waiting} of ${n} GraphQL sessions waiting after 10 s`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('GraphQL on its own database connections', () => {
  it('queries stuck in the database hold only GraphQL connections: ingest and health keep answering', async () => {
    const lock = await lockAuditTable(gateway.sql);
    let stuck: Promise<unknown>[] = [];
    try {
      stuck = Array.from({ length: 12 }, (_, i) => send(gateway.url, audit(10 + i))); // more than ingest's 10 connections
      await apiSessionsWaiting(gateway.sql, 2); // both API connections taken, ten more queries queued
      const report = await postReport(gateway.url, newerReport('POOL-BOX-2', [{ id: 'p2', status: 'offline' }]));
      expect(report.status).toBe(200);
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      const stored = await gateway.sql.query(`select count(*)::int as n from devices d join boxes b on b.id = d.box_id where b.license_key = 'POOL-BOX-2'`);
      expect(stored.rows[0].n).toBe(1);
    } finally {
      await lock.release();
    }
    // Released, every stuck query is answered in full.
    for (const answer of (await Promise.all(stuck)) as Array<Awaited<ReturnType<typeof send>>>) {
      expect(answer.body.errors).toBeUndefined();
      expect(answer.body.data).toEqual({ boxes: { nodes: expect.arrayContaining([{ licenseKey: 'POOL-BOX-1', configChanges: { totalCount: 0 } }]) } });
    }
  });

  it('a statement running past GRAPHQL_STATEMENT_TIMEOUT_MS is stopped and answered QUERY_TIMEOUT, not an internal error', async () => {
    const lock = await lockAuditTable(timing.sql);
    try {
      const answer = await send(timing.url, audit());
      expect(answer.status).toBe(200);
      expect(answer.body.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
        [
          'The database took longer than 300 ms over this query and stopped it; ask for a smaller page, fewer nested lists or a narrower filter.',
          'QUERY_TIMEOUT',
        ],
      ]);
    } finally {
      await lock.release();
    }
    // The connection it ran on is fine afterwards.
    const again = await send(timing.url, audit());
    expect(again.body.errors).toBeUndefined();
  });
});
