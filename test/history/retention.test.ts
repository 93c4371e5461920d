import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeStatusEventCursor } from '../../src/graphql/cursors';
import { ensurePartitions, listPartitions, monthStart } from '../../src/history/partitions';
import { dropPartitionsBefore, readHorizon, retentionCutoff } from '../../src/history/retention';
import { newerReport, post } from '../graphql/fleet-fixture';
import { createTestDatabase } from '../helpers/database';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { capturedLogger } from '../helpers/log-capture';
import { subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { until } from '../helpers/wait';

// Retention drops whole months of history, never rows, on one replica; what it dropped is logged and
// recorded, and a cursor from before it gets HISTORY_EXPIRED instead of a page over a silent gap.

const DAY = 86_400_000;
const now = new Date();
/** Months whose partitions hold history older than the retention the tests use (300 days). */
const oldMonths = [monthStart(now, -14), monthStart(now, -13)];
/** A month well inside it. */
const keptMonth = monthStart(now, -6);

/** Old history of one device: `perMonth` events in each of `months`, written before anything else (so with the lowest ids). */
async function writeOldHistory(sql: pg.Pool, months: Date[], perMonth: number): Promise<void> {
  await sql.query(`insert into boxes (license_key, status, status_since) values ('RET-OLD', 'online', now()) on conflict do nothing`);
  await sql.query(
    `insert into devices (box_id, external_id, type, status, status_since, first_seen_at, updated_at)
     select id, 'cam', 'rtsp', 'online', now(), now(), now() from boxes where license_key = 'RET-OLD' on conflict do nothing`,
  );
  for (const month of months) {
    await ensurePartitions(sql, 'status_events', month, month);
    await sql.query(
      `insert into status_events (box_id, device_id, from_status, to_status, at)
       select d.box_id, d.id, case when g % 2 = 0 then 'offline' else 'online' end, case when g % 2 = 0 then 'online' else 'offline' end,
              $1::timestamptz + interval '1 hour' * g
       from devices d, generate_series(1, $2::int) g where d.external_id = 'cam'`,
      [month, perMonth],
    );
  }
}

const HistoryPage = `query($after: String) { statusEvents(first: 5, after: $after, orderBy: { field: ID, direction: ASC }) { edges { node { id } } } }`;

describe('a month dropped while boxes report and a subscriber listens', () => {
  let gateway: TestGateway;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    const setup = new pg.Pool({ connectionString: database.url, max: 1 });
    await writeOldHistory(setup, [...oldMonths, keptMonth], 50);
    await setup.end();
    // A retention that keeps everything: the test drops the months itself, at the moment it chooses.
    gateway = await startGateway({ historyRetentionDays: 36_500 }, database.url);
  });
  afterAll(async () => {
    await gateway?.close();
    await database?.drop();
  });

  it('loses no event inside the retention, and tells an old cursor to resync', { timeout: 60_000 }, async () => {
    const { rows: oldest } = await gateway.sql.query(`select min(id)::int8 as id from status_events`);
    const oldCursor = encodeStatusEventCursor(Number(oldest[0].id));
    const { rows: kept } = await gateway.sql.query(`select id from status_events where at >= $1 and at < $2 order by id`, [keptMonth, monthStart(keptMonth, 1)]);

    const client = wsClient(gateway.url);
    const setUps = await subscriptionSetUps(gateway.url);
    const live = wsSubscribe(client, `subscription { statusEvents(filter: { subject: DEVICE }) { cursor } }`);
    await setUps.reach(1);

    // Boxes report status changes without pause while the months are dropped.
    let reporting = true;
    let acknowledged = 0;
    const reports = (async () => {
      for (let i = 0; reporting || i < 3; i++) {
        const { changes } = await post(gateway, newerReport('RET-LIVE', [{ id: 'door', status: i % 2 ? 'offline' : 'online' }]));
        acknowledged += changes;
      }
    })();
    await until(() => acknowledged >= 5, 'reports under way');

    const session = new pg.Client({ connectionString: database.url });
    await session.connect();
    const { log, lines } = capturedLogger('info');
    const dropped = await dropPartitionsBefore(session, 'status_events', retentionCutoff(now, 300), log);
    await session.end();
    reporting = false;
    await reports;

    // The two old months went, whole, and each drop was logged with what it removed.
    expect(dropped.map((d) => d.from.toISOString())).toEqual(expect.arrayContaining(oldMonths.map((m) => m.toISOString())));
    expect(dropped.filter((d) => oldMonths.some((m) => m.getTime() === d.from.getTime())).map((d) => d.rows)).toEqual([50, 50]);
    const logged = lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'history partition dropped (older than the retention)');
    expect(logged.map((entry) => entry.rows)).toEqual(dropped.map((d) => d.rows));
    expect(logged[0]).toMatchObject({ table: 'status_events', partition: expect.stringMatching(/^status_events_p\d{4}_\d{2}$/), from: expect.any(String), to: expect.any(String) });
    const partitions = await listPartitions(gateway.sql, 'status_events');
    expect(partitions.some((p) => oldMonths.some((m) => m.getTime() === p.from.getTime()))).toBe(false);

    // Everything inside the retention is still there: the kept month, and every event ingest acknowledged.
    const { rows: keptAfter } = await gateway.sql.query(`select id from status_events where at >= $1 and at < $2 order by id`, [keptMonth, monthStart(keptMonth, 1)]);
    expect(keptAfter).toEqual(kept);
    const { rows: liveRows } = await gateway.sql.query(
      `select e.id from status_events e join boxes b on b.id = e.box_id where b.license_key = 'RET-LIVE' and e.device_id is not null order by e.id`,
    );
    expect(liveRows.length).toBe(acknowledged - 1); // the box's first report is also a box event
    // The subscriber got each of them, once, in order.
    const received: string[] = [];
    while (received.length < liveRows.length) received.push((await live.next()).data.statusEvents.cursor);
    expect(received).toEqual(liveRows.map((r) => encodeStatusEventCursor(Number(r.id))));
    expect(live.pending).toEqual([]);
    client.dispose();

    // What went is recorded; a cursor from before it is refused, with what to do next.
    const horizon = await readHorizon(gateway.sql, 'status_events');
    expect(horizon?.droppedThroughId).toBe(Math.max(...dropped.map((d) => d.maxId!)));
    const expired = await graphql(gateway.url, HistoryPage, { after: oldCursor });
    expect(expired.body.data).toBeNull();
    expect(expired.body.errors?.[0]).toMatchObject({ extensions: { code: 'HISTORY_EXPIRED', argument: 'after' } });
    expect(expired.body.errors?.[0]?.message).toMatch(/no longer kept.*Read the current state/);
    const replay = wsClient(gateway.url);
    // graphql-ws sends a refused subscription's errors as its one result, then completes it.
    const refused = wsSubscribe(replay, `subscription($after: String) { statusEvents(after: $after) { id } }`, { after: oldCursor });
    expect((await refused.next()).errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'HISTORY_EXPIRED', argument: 'after' }) })]);
    expect(await refused.ended).toBeUndefined();
    replay.dispose();
    // A cursor inside the retention pages on as before.
    const fine = await graphql(gateway.url, HistoryPage, { after: encodeStatusEventCursor(Number(kept[0].id)) });
    expect(fine.body.errors).toBeUndefined();
    expect((fine.body.data as any).statusEvents.edges[0].node).toBeDefined();
  });
});

describe('the maintainer', () => {
  let gateway: TestGateway;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  const { log, lines } = capturedLogger('info');

  beforeAll(async () => {
    database = await createTestDatabase();
    const setup = new pg.Pool({ connectionString: database.url, max: 1 });
    await writeOldHistory(setup, [oldMonths[0]!, keptMonth], 10);
    await ensurePartitions(setup, 'box_health', oldMonths[0]!, oldMonths[0]!);
    await setup.end();
    gateway = await startGateway({ historyRetentionDays: 300 }, database.url, { log });
  });
  afterAll(async () => {
    await gateway?.close();
    await database?.drop();
  });

  it('drops the months past HISTORY_RETENTION_DAYS from both history tables on start, and keeps months ahead', async () => {
    await until(() => lines.some((line) => line.includes('"table":"box_health"') && line.includes('history partition dropped')), 'the old health month dropped');
    const { rows } = await gateway.sql.query(`select count(*)::int as n, min(at) as oldest from status_events`);
    expect(rows[0]).toEqual({ n: 10, oldest: expect.any(Date) });
    expect(rows[0].oldest.getTime()).toBeGreaterThan(now.getTime() - 300 * DAY);
    for (const table of ['status_events', 'box_health']) {
      const months = (await listPartitions(gateway.sql, table)).map((p) => p.from.getTime());
      expect(months).toEqual(expect.arrayContaining([monthStart(now).getTime(), monthStart(now, 1).getTime(), monthStart(now, 2).getTime()]));
      expect(months.some((m) => m === oldMonths[0]!.getTime())).toBe(false);
    }
    expect((await readHorizon(gateway.sql, 'box_health'))?.droppedBefore).toEqual(monthStart(oldMonths[0]!, 1));
  });
});
