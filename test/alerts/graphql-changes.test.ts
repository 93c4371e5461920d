import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAlertChanges } from '../../src/alerts/changes';
import { inTransaction } from '../../src/db/sql';
import { encodeCursor } from '../../src/graphql/cursors';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { metric } from '../helpers/metrics';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { createToken, revokeToken } from '../helpers/tokens';
import { insertBox } from './fixtures';

// alertChanged over graphql-ws and SSE: live changes from the real evaluator and acknowledge, a
// filter, and a resume from a cursor with changes committing during the replay: no gap, no duplicate.

let gateway: TestGateway;
let viewer = '';
let operator = '';
let boxId: number;
let alertId: string;

const CHANGES = `subscription ($filter: AlertFilter, $after: String) {
  alertChanged(filter: $filter, after: $after) { cursor kind at alert { id state acknowledgedBy resolution box { id } rule { name } } }
}`;

async function ok(query: string, variables: Record<string, unknown>, token = operator) {
  const response = await graphql<any, unknown>(gateway.url, query, variables, { token });
  expect(response.body.errors, JSON.stringify(response.body.errors)).toBeUndefined();
  return response.body.data;
}

beforeAll(async () => {
  gateway = await startGateway();
  viewer = (await createToken(gateway.url, 'viewer', 'viewer of alertChanged')).token;
  operator = (await createToken(gateway.url, 'operator', 'operator of alertChanged')).token;
  const silentSince = new Date(Date.now() - 600_000);
  boxId = await insertBox(gateway.sql, { status: 'offline', statusSince: silentSince, lastReportAt: silentSince });
  await ok(`mutation ($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }`, {
    input: { name: 'box silent', kind: 'BOX_OFFLINE', severity: 'MAJOR', forSeconds: 60, boxIds: [encodeGlobalId('Box', boxId)] },
  });
  alertId = (await ok('{ alerts(first: 1) { nodes { id } } }', {})).alerts.nodes[0].id;
});
afterAll(async () => {
  await gateway?.close();
});

describe('alertChanged', () => {
  it('a viewer follows changes live over websockets and SSE; a filter on states picks the changes that moved an alert there', async () => {
    const setUps = await subscriptionSetUps(gateway.url);
    const client = wsClient(gateway.url, { token: viewer });
    const all = wsSubscribe(client, CHANGES);
    const sse = sseSubscribe(gateway.url, CHANGES, undefined, { token: viewer });
    const resolvedOnly = wsSubscribe(client, CHANGES, { filter: { states: ['RESOLVED'], boxIds: [encodeGlobalId('Box', boxId)] } });
    await setUps.reach(3);
    expect(await metric(gateway.url, 'fleetgate_live_subscriptions')).toBe(3);

    await ok(`mutation ($id: ID!) { acknowledgeAlert(id: $id, comment: "looking") { id } }`, { id: alertId });
    for (const sub of [all, sse]) {
      const { data } = await sub.next();
      expect(data.alertChanged).toMatchObject({ kind: 'ACKNOWLEDGED', alert: { id: alertId, state: 'ACKNOWLEDGED', acknowledgedBy: expect.stringContaining('operator of alertChanged'), rule: { name: 'box silent' } } });
    }
    // The box reports again: the evaluator resolves the alert (CLEARED).
    await gateway.sql.query(`update boxes set status = 'online', status_since = now(), last_report_at = now() where id = $1`, [boxId]);
    for (const sub of [all, sse, resolvedOnly]) {
      const { data } = await sub.next(10_000);
      expect(data.alertChanged).toMatchObject({ kind: 'RESOLVED', alert: { id: alertId, state: 'RESOLVED', resolution: 'CLEARED', box: { id: encodeGlobalId('Box', boxId) } } });
    }
    expect(resolvedOnly.pending).toEqual([]);
    all.close();
    resolvedOnly.close();
    sse.close();
    await client.dispose();
  });

  it('resumes from a cursor exactly: the stored changes after it, then live ones, while changes keep committing', async () => {
    const alert = Number(Buffer.from(alertId, 'base64').toString().split(':')[1]);
    const commit = async (n: number) => {
      for (let i = 0; i < n; i += 50) {
        await inTransaction(gateway.app.pool, (client) => recordAlertChanges(client, Array.from({ length: Math.min(50, n - i) }, () => ({ alertId: alert, kind: 'acknowledged' as const })), new Date()));
      }
    };
    await commit(1_200); // more than two replay pages
    const ids = async () => (await gateway.sql.query<{ id: string }>('select id from alert_changes order by id')).rows.map((r) => Number(r.id));
    const before = await ids();
    const from = before[before.length - 1_100]!; // resume 1,099 changes back
    const after = encodeCursor('AlertChange', [from]);

    const client = wsClient(gateway.url, { token: viewer });
    const ws = wsSubscribe(client, CHANGES, { after });
    const sse = sseSubscribe(gateway.url, CHANGES, { after }, { token: viewer });
    await commit(400); // committing while both replay
    const expected = (await ids()).filter((id) => id > from);
    expect(expected.length).toBe(1_099 + 400);

    for (const sub of [ws, sse]) {
      const received: number[] = [];
      while (received.length < expected.length) {
        const { data, errors } = await sub.next(10_000);
        expect(errors).toBeUndefined();
        received.push(JSON.parse(Buffer.from(data.alertChanged.cursor, 'base64url').toString())[1]);
      }
      expect(received).toEqual(expected);
    }
    // Nothing more than that: one more change arrives next, once.
    await commit(1);
    const last = (await ids()).at(-1)!;
    for (const sub of [ws, sse]) expect(JSON.parse(Buffer.from((await sub.next()).data.alertChanged.cursor, 'base64url').toString())[1]).toBe(last);
    ws.close();
    sse.close();
    await client.dispose();
  });

  it('ends when its token is revoked: SSE with TOKEN_REVOKED, a websocket closed 4403', async () => {
    const doomed = await createToken(gateway.url, 'viewer', 'revoked while following alerts');
    const setUps = await subscriptionSetUps(gateway.url);
    const client = wsClient(gateway.url, { token: doomed.token });
    wsSubscribe(client, CHANGES);
    const sse = sseSubscribe(gateway.url, CHANGES, undefined, { token: doomed.token });
    await setUps.reach(2);
    await revokeToken(gateway.url, doomed.id);
    expect(await client.closed).toEqual(expect.objectContaining({ code: 4403 }));
    const last = await sse.next();
    expect(last.errors).toEqual([expect.objectContaining({ extensions: { code: 'TOKEN_REVOKED' } })]);
    expect(await sse.ended).toBeUndefined();
  });

  it('refuses a cursor of another list', async () => {
    const client = wsClient(gateway.url, { token: viewer });
    const sub = wsSubscribe(client, CHANGES, { after: encodeCursor('StatusEvent', [1]) });
    const result = await Promise.race([sub.next().catch((e) => e), sub.ended]);
    expect(JSON.stringify(result)).toContain('BAD_USER_INPUT');
    expect(JSON.stringify(result)).toContain('not a cursor of this list');
    await client.dispose();
  });
});
