import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operationCost } from '../../src/graphql/limits';
import { schema } from '../../src/graphql/schema';
import { parse } from 'graphql';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send } from '../helpers/graphql';
import { wsClient, wsSubscribe } from '../helpers/subscriptions';
import { newerReport, post } from './fleet-fixture';

let gateway: TestGateway;
let closed: TestGateway;
beforeAll(async () => {
  [gateway, closed] = await Promise.all([startGateway(), startGateway({ graphqlIntrospection: false })]);
  await post(gateway, newerReport('L-BOX-1', [{ id: 'l1' }, { id: 'l2', status: 'offline' }]));
});
afterAll(async () => {
  await gateway?.close();
  await closed?.close();
});

const GRAPHQL_RESPONSE = 'application/graphql-response+json';
const JSON_ONLY = 'application/json';

/** The operation is refused with exactly this one error: 400 for graphql-response+json, 200 for application/json (GraphQL over HTTP). */
async function expectRefused(baseUrl: string, query: string, expected: { message: string; code: string }, variables?: Record<string, unknown>) {
  for (const accept of [GRAPHQL_RESPONSE, JSON_ONLY]) {
    const response = await send(baseUrl, query, variables, { accept });
    expect(response.status, `${accept}: ${JSON.stringify(response.body)}`).toBe(accept === JSON_ONLY ? 200 : 400);
    expect(response.body.data ?? undefined).toBeUndefined();
    expect(response.body.errors).toHaveLength(1);
    expect(response.body.errors![0]!.message).toBe(expected.message);
    expect(response.body.errors![0]!.extensions?.code).toBe(expected.code);
  }
}

/** 13 levels: devices > nodes > box > devices > ... > name. */
const DEEP = `{ devices { nodes { box { devices { nodes { box { devices { nodes { box { devices { nodes { box { name } } } } } } } } } } } } }`;

describe('GraphQL limits', () => {
  it('a query deeper than 12 levels', async () => {
    await expectRefused(gateway.url, DEEP, { message: 'Query depth limit of 12 exceeded, found 13.', code: 'QUERY_TOO_DEEP' });
    // 12 levels are fine, and fragments add no level.
    const twelve = await send(
      gateway.url,
      `{ devices(first: 2) { nodes { box { devices(first: 2) { nodes { box { devices(first: 2) { nodes { box { devices(first: 2) { nodes { ...N } } } } } } } } } } } } fragment N on Device { name }`,
    );
    expect(twelve.body.errors).toBeUndefined();
  });

  it('an alias bomb', async () => {
    const aliases = Array.from({ length: 16 }, (_, i) => `a${i}: fleetSummary { boxes { total } }`).join(' ');
    await expectRefused(gateway.url, `{ ${aliases} }`, { message: 'Aliases limit of 15 exceeded, found 16.', code: 'TOO_MANY_ALIASES' });
  });

  it('too many directives', async () => {
    await expectRefused(gateway.url, `{ ${'... @include(if: true) { __typename } '.repeat(51)} }`, { message: 'Directives limit of 50 exceeded, found 51.', code: 'TOO_MANY_DIRECTIVES' });
  });

  it('a document of more than 5000 tokens is refused while parsing', async () => {
    await expectRefused(gateway.url, `{ ${'__typename '.repeat(5000)} }`, { message: 'Token limit of 5000 exceeded.', code: 'TOO_MANY_TOKENS' });
  });

  it('a fragment bomb is measured, not expanded, and refused quickly', async () => {
    // Each fragment spreads the next ten times: 10^8 copies of fleetSummary { boxes { total } }.
    const fragments = Array.from({ length: 8 }, (_, i) => `fragment F${i} on Query { ${`...F${i + 1} `.repeat(10)} }`).join('\n');
    const bomb = `query Bomb { ...F0 }\n${fragments}\nfragment F8 on Query { fleetSummary { boxes { total } } }`;
    const started = performance.now();
    await expectRefused(gateway.url, bomb, { message: 'Query cost limit of 50000 exceeded, found 300000000. Ask for fewer items per page (first/last) or fewer nested lists.', code: 'COST_LIMIT_EXCEEDED' });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('a cost explosion: 500 boxes × 500 devices', async () => {
    const explosion = `{ boxes(first: 500) { edges { node { devices(first: 500) { edges { node { id name } } } } } } }`;
    await expectRefused(gateway.url, explosion, {
      message: 'Query cost limit of 50000 exceeded, found 1001501. Ask for fewer items per page (first/last) or fewer nested lists.',
      code: 'COST_LIMIT_EXCEEDED',
    });
    // The same through variables, which yoga's validation cache does not see: a small page passes, a large one does not.
    const byVariables = `query Pages($boxes: Int, $devices: Int) { boxes(first: $boxes) { nodes { devices(first: $devices) { nodes { id name } } } } }`;
    const small = await send(gateway.url, byVariables, { boxes: 10, devices: 10 });
    expect(small.body.errors).toBeUndefined();
    expect(small.status).toBe(200);
    await expectRefused(
      gateway.url,
      byVariables,
      { message: 'Query cost limit of 50000 exceeded, found 751001. Ask for fewer items per page (first/last) or fewer nested lists.', code: 'COST_LIMIT_EXCEEDED' },
      { boxes: 500, devices: 500 },
    );
  });

  it('the cost model: fields count 1, times first/last (default 50) under a paginated field', () => {
    const cost = (query: string, variables?: Record<string, unknown>) => operationCost(schema, parse(query), undefined, variables);
    expect(cost('{ fleetSummary { boxes { total online } } }')).toBe(1 + (1 + 2));
    expect(cost('{ devices(first: 500) { nodes { id } } }')).toBe(1 + 500 * (1 + 1));
    expect(cost('{ devices { totalCount } }')).toBe(1 + 50 * 1);
    expect(cost('query($n: Int) { devices(last: $n) { totalCount } }', { n: 7 })).toBe(1 + 7);
    // 50 boxes with 20 devices each, as the query benchmark asks: well under the limit.
    expect(cost('{ boxes(first: 50) { nodes { devices(first: 20) { nodes { id name } } } } }')).toBe(1 + 50 * (1 + (1 + 20 * (1 + 2))));
  });

  it('introspection can be turned off; __typename still answers', async () => {
    const open = await send(gateway.url, '{ __schema { queryType { name } } }');
    expect(open.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    await expectRefused(closed.url, '{ __schema { queryType { name } } }', { message: 'Introspection is disabled on this server.', code: 'INTROSPECTION_DISABLED' });
    await expectRefused(closed.url, '{ __type(name: "Box") { name } }', { message: 'Introspection is disabled on this server.', code: 'INTROSPECTION_DISABLED' });
    const typename = await send(closed.url, '{ __typename }');
    expect(typename.body).toEqual({ data: { __typename: 'Query' } });
  });

  it('websocket operations get the same limits, and the socket stays open', async () => {
    const client = wsClient(gateway.url);
    try {
      const deep = wsSubscribe(client, DEEP);
      const error = (await deep.ended) as Array<{ message: string; extensions?: { code?: string } }>;
      expect(error).toHaveLength(1);
      expect(error[0]!.message).toBe('Query depth limit of 12 exceeded, found 13.');
      expect(error[0]!.extensions?.code).toBe('QUERY_TOO_DEEP');

      const costly = wsSubscribe(client, `{ boxes(first: 500) { nodes { devices(first: 500) { nodes { id name } } } } }`);
      const result = await costly.next();
      expect(result.errors[0].extensions.code).toBe('COST_LIMIT_EXCEEDED');
      expect(result.data).toBeUndefined();

      const fine = wsSubscribe(client, '{ fleetSummary { boxes { total } } }');
      expect(await fine.next()).toEqual({ data: { fleetSummary: { boxes: { total: 1 } } } });
    } finally {
      await client.dispose();
    }
  });
});
