import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CountCache } from '../../src/models/count-cache';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { authorization } from '../helpers/auth';
import { graphql as send, query } from '../helpers/graphql';
import { recordStatements } from '../helpers/statements';
import { until } from '../helpers/wait';
import { newerReport, post } from './fleet-fixture';
import { graphql } from './generated';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
  await post(gateway, newerReport('C-BOX-1', [{ id: 'c1' }, { id: 'c2', status: 'offline' }]));
});
afterAll(() => gateway?.close());

const Offline = graphql(`
  query CacheOffline {
    devices(filter: { status: [OFFLINE] }) { totalCount nodes { externalId status } }
    fleetSummary { devices { online offline } }
  }
`);

describe('response cache', () => {
  it('answers a repeated query from memory while nothing was written: one snapshot read', async () => {
    // The snapshot is the whole server's: other test files writing at that moment move it, so a few
    // tries may be needed to see one repeat with no write in between anywhere.
    let statements: string[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const first = await query(gateway.url, Offline);
      statements = await recordStatements(gateway.app.apiPool, async () => {
        expect(await query(gateway.url, Offline)).toEqual(first);
      });
      if (statements.length === 1) break;
    }
    expect(statements).toEqual(['select pg_current_snapshot()::text as snapshot']);
  });

  it('sees a write at once: the next answer is computed again', async () => {
    const before = await query(gateway.url, Offline);
    expect(before.devices.nodes.map((d) => d.externalId)).toEqual(['c2']);
    await post(gateway, newerReport('C-BOX-1', [{ id: 'c1', status: 'offline' }, { id: 'c2', status: 'offline' }]));
    const after = await query(gateway.url, Offline);
    expect(after.devices.nodes.map((d) => d.externalId)).toEqual(['c1', 'c2']);
    expect(after.devices.totalCount).toBe(2);
    expect(after.fleetSummary.devices).toEqual({ online: 0, offline: 2 });
  });

  it('runs the query when asked with Cache-Control: no-cache', async () => {
    await query(gateway.url, Offline);
    const statements = await recordStatements(gateway.app.apiPool, async () => {
      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'cache-control': 'no-cache', ...authorization(gateway.url) },
        body: JSON.stringify({ query: '{ devices(filter: { status: [OFFLINE] }) { totalCount } }' }),
      });
      expect(await response.json()).toEqual({ data: { devices: { totalCount: 2 } } });
    });
    expect(statements.some((s) => s.includes('pg_current_snapshot'))).toBe(false);
    expect(statements.length).toBeGreaterThan(0);
  });

  it('does not keep answers with errors: the same request reads the database again', async () => {
    // The summary reads the database; the refused page makes the answer one with errors.
    const good = '{ fleetSummary { devices { online offline } } }';
    const withError = '{ fleetSummary { devices { online offline } } devices(first: 501) { totalCount } }';
    const snapshotRead = 'select pg_current_snapshot()::text as snapshot';
    // Only when the good answer is still served from memory afterwards did no write anywhere move the
    // snapshot in between, so a kept answer with errors would have been served too: try until so.
    for (let attempt = 0; attempt < 20; attempt++) {
      expect((await send(gateway.url, good)).body.errors).toBeUndefined();
      const first = await send(gateway.url, withError);
      expect(first.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const again = await recordStatements(gateway.app.apiPool, async () => {
        expect((await send(gateway.url, withError)).body).toEqual(first.body);
      });
      const control = await recordStatements(gateway.app.apiPool, () => send(gateway.url, good));
      if (control.length !== 1) continue;
      expect(again[0]).toBe(snapshotRead);
      expect(again.length, again.join('\n---\n')).toBeGreaterThan(1);
      return;
    }
    throw new Error('the snapshot moved during every attempt');
  });
});

describe('CountCache', () => {
  const cache = () => new CountCache({ ttlMs: 50, maxStaleMs: 10_000, minValue: 100 });

  it('reads small counts every time', async () => {
    const counts = cache();
    let reads = 0;
    const load = async () => ++reads;
    await counts.get('k', load, (n) => n);
    await counts.get('k', load, (n) => n);
    expect(reads).toBe(2);
  });

  it('keeps a large count while the snapshot is the same, exactly, whatever its age', async () => {
    const counts = cache();
    let reads = 0;
    const load = async () => 1000 + reads++;
    let lagging = 0;
    const read = { snapshot: 's1', lagging: () => lagging++ };
    expect(await counts.get('k', load, (n) => n, read)).toBe(1000);
    await new Promise((r) => setTimeout(r, 80));
    expect(await counts.get('k', load, (n) => n, read)).toBe(1000);
    expect(reads).toBe(1);
    expect(lagging).toBe(0);
  });

  it('under another snapshot serves it for ttlMs, then refreshes it in the background', async () => {
    const counts = cache();
    let value = 1000;
    let reads = 0;
    const load = async () => {
      reads++;
      return value;
    };
    let lagging = 0;
    await counts.get('k', load, (n) => n, { snapshot: 's1' });
    value = 2000;
    expect(await counts.get('k', load, (n) => n, { snapshot: 's2', lagging: () => lagging++ })).toBe(1000);
    expect(lagging).toBe(1);
    expect(reads).toBe(1);
    await new Promise((r) => setTimeout(r, 80));
    // Stale: served once more while one refresh runs, then the fresh value.
    expect(await counts.get('k', load, (n) => n, { snapshot: 's3' })).toBe(1000);
    expect(reads).toBe(2);
    // The refresh's result lands once its read resolves; no further read is started for it.
    await until(async () => (await counts.get('k', load, (n) => n, { snapshot: 's3' })) === 2000, 'the refreshed count');
    expect(reads).toBe(2);
  });

  it('shares one read between identical requests in flight', async () => {
    const counts = cache();
    let reads = 0;
    const load = () => new Promise<number>((r) => setTimeout(() => r(5 + reads++), 20));
    const values = await Promise.all([counts.get('k', load, (n) => n), counts.get('k', load, (n) => n)]);
    expect(values).toEqual([5, 5]);
    expect(reads).toBe(1);
  });
});
