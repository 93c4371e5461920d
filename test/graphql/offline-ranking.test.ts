import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/graphql/cursors';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send, query } from '../helpers/graphql';
import { recordStatements } from '../helpers/statements';
import { graphql } from './generated';
import { at, DAY, daysAgo, HOUR, insertBox, insertDevice } from './history-fixture';

// devicesByTimeOffline over [T, T + 4 h), T a UTC midnight 20 days ago, against times done by hand.
const T = daysAgo(20);
const LONG_AGO = at(T, -DAY);
const RANGE = { since: T.toISOString(), until: at(T, 4 * HOUR).toISOString() };

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startGateway();
  const db = gateway.sql;
  const box = await insertBox(db, 'OR-BOX', [[at(T, -10 * DAY), null, 'online']]);
  const offlineFromTo = (from: number, to: number): [Date, string | null, string][] => [
    [LONG_AGO, null, 'online'],
    [at(T, from), 'online', 'offline'],
    [at(T, to), 'offline', 'online'],
  ];
  // Inserted in this order, so ids rise from r1 to r9.
  await insertDevice(db, box, 'r1', [[LONG_AGO, null, 'offline']]); // offline throughout: 4 h
  await insertDevice(db, box, 'r2', offlineFromTo(HOUR, 2 * HOUR)); // 1 h
  await insertDevice(db, box, 'r3', offlineFromTo(HOUR, 2 * HOUR)); // 1 h, after r2 by id
  await insertDevice(db, box, 'r4', [
    [LONG_AGO, null, 'online'],
    [at(T, 3 * HOUR), 'online', 'offline'],
  ]); // 1 h, still offline now
  await insertDevice(db, box, 'r5', [[LONG_AGO, null, 'online']]); // never offline: not listed
  await insertDevice(db, box, 'r6', offlineFromTo(-2 * HOUR, HOUR / 2)); // mid-outage at since: 30 min
  await insertDevice(db, box, 'r8', [
    [LONG_AGO, null, 'online'],
    [at(T, 5 * HOUR), 'online', 'offline'],
  ]); // offline now, but only after the range: not listed
  await insertDevice(db, box, 'r9', [
    [LONG_AGO, null, 'offline'],
    [at(T, -HOUR), 'offline', 'removed'],
  ]); // removed before the range while offline: not listed
  const removed = await insertBox(db, 'OR-REMOVED', [
    [at(T, -10 * DAY), null, 'online'],
    [at(T, -HOUR), 'online', 'removed'],
  ]);
  await insertDevice(db, removed, 'r7', [[LONG_AGO, null, 'offline']]); // its box is removed: not listed
});
afterAll(() => gateway?.close());

const ByTimeOffline = graphql(`
  query DevicesByTimeOffline($since: DateTime!, $until: DateTime, $first: Int, $after: String) {
    devicesByTimeOffline(since: $since, until: $until, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges {
        cursor
        offlineSeconds
        node { name }
        availability { offlineSeconds onlineSeconds observedSeconds outages longestOutageSeconds until }
      }
    }
  }
`);

const H = 3600;

describe('devicesByTimeOffline', () => {
  it('orders by time offline, most first, ties by device id; never-offline and removed ones left out', async () => {
    const { devicesByTimeOffline: list } = await query(gateway.url, ByTimeOffline, RANGE);
    expect(list.edges.map((e) => [e.node.name, e.offlineSeconds])).toEqual([
      ['r1', 4 * H],
      ['r2', H],
      ['r3', H],
      ['r4', H],
      ['r6', H / 2],
    ]);
    expect(list.totalCount).toBe(5);
    expect(list.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    // Each edge's numbers are the device's availability over the same range.
    for (const edge of list.edges) {
      expect(edge.availability.offlineSeconds).toBeCloseTo(edge.offlineSeconds, 6);
      expect(edge.availability.observedSeconds).toBe(4 * H);
      expect(edge.availability.until).toBe(RANGE.until);
    }
    expect(list.edges[0]!.availability).toMatchObject({ outages: 1, longestOutageSeconds: 4 * H, onlineSeconds: 0 });
    expect(list.edges[4]!.availability).toMatchObject({ outages: 1, longestOutageSeconds: H / 2 });
  });

  it('pages through with first/after, each page after the last without gaps or repeats', async () => {
    const names: string[] = [];
    let after: string | undefined;
    const pages: boolean[] = [];
    for (;;) {
      const { devicesByTimeOffline: page } = await query(gateway.url, ByTimeOffline, { ...RANGE, first: 2, after });
      names.push(...page.edges.map((e) => e.node.name!));
      pages.push(page.pageInfo.hasPreviousPage);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor!;
    }
    expect(names).toEqual(['r1', 'r2', 'r3', 'r4', 'r6']);
    expect(pages).toEqual([false, true, true]);
  });

  it('a page of 50 costs the statements a page of 1 does', async () => {
    // A token is looked up on its first request; a repeated query is answered from the response cache.
    await query(gateway.url, ByTimeOffline, { ...RANGE, first: 3 });
    const pools = [gateway.app.apiPool, gateway.app.pool];
    const one = await recordStatements(pools, () => query(gateway.url, ByTimeOffline, { ...RANGE, first: 1 }));
    const all = await recordStatements(pools, async () => {
      const { devicesByTimeOffline: page } = await query(gateway.url, ByTimeOffline, { ...RANGE, first: 50 });
      expect(page.edges).toHaveLength(5);
    });
    // snapshot; the ranking; its count; the devices; their availability.
    expect(all, all.join('\n---\n')).toHaveLength(5);
    expect(one).toHaveLength(all.length);
  });

  it('refuses a page larger than the maximum and a cursor not of this list', async () => {
    const big = await send(gateway.url, ByTimeOffline, { ...RANGE, first: 501 });
    expect(big.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'first', max: 500 });
    for (const after of [
      'nope',
      encodeCursor('Device:ID', [1]),
      encodeCursor('DeviceByTimeOffline', ['1e400', 1]),
      encodeCursor('DeviceByTimeOffline', ['NaN', 1]),
      encodeCursor('DeviceByTimeOffline', ['12.5', -1]),
    ]) {
      const response = await send(gateway.url, ByTimeOffline, { ...RANGE, after });
      expect(response.status).toBe(200);
      expect(response.body.errors?.[0]?.extensions, after).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'after' });
    }
  });
});
