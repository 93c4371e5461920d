import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operationCost, repeatedFieldChecks } from '../../src/graphql/limits';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { schema } from '../../src/graphql/schema';
import { parse } from 'graphql';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send, graphqlRaw } from '../helpers/graphql';
import { createToken } from '../helpers/tokens';
import { sseSubscribe, wsClient, wsSubscribe } from '../helpers/subscriptions';
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
    expect(response.body.errors![0]!.message).toEqual(expected.message);
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

  it('a document of more than 2000 tokens is refused while parsing', async () => {
    await expectRefused(gateway.url, `{ ${'__typename '.repeat(2000)} }`, { message: 'Token limit of 2000 exceeded.', code: 'TOO_MANY_TOKENS' });
    // The attack the limit was set against: 4,990 copies of one field, 25 KB, under the old 5,000 tokens.
    await expectRefused(gateway.url, `{ currentToken { ${'name '.repeat(4_990)} } }`, { message: 'Token limit of 2000 exceeded.', code: 'TOO_MANY_TOKENS' });
  });

  it('a fragment bomb is measured, not expanded, and refused quickly', async () => {
    // Each fragment spreads the next ten times: 10^8 copies of fleetSummary { boxes { total } }.
    const fragments = Array.from({ length: 8 }, (_, i) => `fragment F${i} on Query { ${`...F${i + 1} `.repeat(10)} }`).join('\n');
    const bomb = `query Bomb { ...F0 }\n${fragments}\nfragment F8 on Query { fleetSummary { boxes { total } } }`;
    const started = performance.now();
    await expectRefused(gateway.url, bomb, { message: 'Query cost limit of 10000 exceeded, found 300000000. Ask for fewer items per page (first/last) or fewer nested lists.', code: 'COST_LIMIT_EXCEEDED' });
    // Expanded, 10^8 fields would take minutes; measured, it is one request (the bound only tells the two apart).
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a cost explosion: 500 boxes × 500 devices', async () => {
    const explosion = `{ boxes(first: 500) { edges { node { devices(first: 500) { edges { node { id name } } } } } } }`;
    await expectRefused(gateway.url, explosion, {
      message: 'Query cost limit of 10000 exceeded, found 1001501. Ask for fewer items per page (first/last) or fewer nested lists.',
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
      { message: 'Query cost limit of 10000 exceeded, found 751001. Ask for fewer items per page (first/last) or fewer nested lists.', code: 'COST_LIMIT_EXCEEDED' },
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

  it('a history list costs one per bucket of its range: 1,000 hours of one box pass, the same for each box of a page do not', () => {
    const cost = (query: string, variables?: Record<string, unknown>) => operationCost(schema, parse(query), undefined, variables);
    const health = 'health(since: $since, until: $until, bucket: HOUR) { start cpu { min avg max } temperature { max } }';
    const range = { since: '2026-01-01T00:00:00Z', until: '2026-02-11T16:00:00Z' }; // 1,000 hours
    expect(cost(`query($since: DateTime!, $until: DateTime) { box(licenseKey: "K") { ${health} } }`, range)).toBe(1 + (1 + 1000));
    expect(cost(`query($since: DateTime!, $until: DateTime) { boxes(first: 20) { nodes { ${health} } } }`, range)).toBe(1 + 20 * (1 + (1 + 1000)));
    expect(cost('{ box(licenseKey: "K") { health(since: "2026-01-01T00:00:00Z", until: "2026-01-03T00:00:00Z", bucket: DAY) { start } } }')).toBe(1 + (1 + 2));
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

      // The cost, too, is checked before validation: the operation ends with an error message.
      const costly = wsSubscribe(client, `{ boxes(first: 500) { nodes { devices(first: 500) { nodes { id name } } } } }`);
      const refused = (await costly.ended) as Array<{ message: string; extensions?: { code?: string } }>;
      expect(refused.map((e) => e.extensions?.code)).toEqual(['COST_LIMIT_EXCEEDED']);

      const fine = wsSubscribe(client, '{ fleetSummary { boxes { total } } }');
      expect(await fine.next()).toEqual({ data: { fleetSummary: { boxes: { total: 1 } } } });
    } finally {
      await client.dispose();
    }
  });
});

describe('limits checked before the work they protect', () => {
  const REPEATED = `{ currentToken { ${'name '.repeat(1_990)} } }`;

  it('a document over 64 KiB (a comment) is refused before it is parsed', async () => {
    const document = `# ${'x'.repeat(70_000)}\n{ __typename }`;
    await expectRefused(gateway.url, document, {
      message: `Document size limit of 65536 bytes exceeded, found ${document.length}. Send a shorter query (comments and long literals count); pass values as variables.`,
      code: 'DOCUMENT_TOO_LARGE',
    });
    // A string literal counts too; under the limit it is fine.
    const literal = await send(gateway.url, `{ box(licenseKey: "${'k'.repeat(60_000)}") { id } }`);
    expect(literal.body).toEqual({ data: { box: null } });
  });

  it('a body over 256 KiB is refused with 413, whatever its Content-Length says', async () => {
    const body = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(300_000) } });
    const response = await graphqlRaw(gateway.url, body, { headers: { 'content-type': 'application/json', accept: GRAPHQL_RESPONSE } });
    expect(response.status).toBe(413);
    const errors = JSON.parse(response.text).errors;
    expect(errors).toEqual([
      expect.objectContaining({
        message: 'Request body limit of 262144 bytes exceeded (GRAPHQL_MAX_BODY_BYTES). Send a shorter query; page through large id lists.',
        extensions: expect.objectContaining({ code: 'REQUEST_ENTITY_TOO_LARGE' }),
      }),
    ]);
    // Sent in chunks without a length: counted while read.
    const chunked = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${gateway.token}` },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 30; i++) controller.enqueue(new TextEncoder().encode(i === 0 ? body.slice(0, 10_000) : body.slice(i * 10_000, (i + 1) * 10_000)));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    // The rest of that body is still on its connection: the gateway closes it, and the next request
    // goes on a new one instead of being read from the middle of the old body.
    expect(chunked.headers.get('connection')).toBe('close');
    expect((await send(gateway.url, '{ __typename }')).body).toEqual({ data: { __typename: 'Query' } });
  });

  it('1,990 copies of one field (within the tokens) are refused before graphql-js compares them pair by pair', async () => {
    await expectRefused(gateway.url, REPEATED, {
      message: 'Repeated fields limit of 2000 merge checks exceeded. Select each field once per selection set, and spread each fragment once.',
      code: 'TOO_MANY_REPEATED_FIELDS',
    });
    // A comment changed does not make it a new document to validate: it is refused the same way.
    await expectRefused(gateway.url, `# again\n${REPEATED}`, { message: expect.stringContaining('Repeated fields limit') as unknown as string, code: 'TOO_MANY_REPEATED_FIELDS' });
    // Through fragments: 150 fragments spread side by side, each selecting the same field.
    const fragments = Array.from({ length: 150 }, (_, i) => `fragment F${i} on ApiToken { name }`).join(' ');
    const spreads = Array.from({ length: 150 }, (_, i) => `...F${i}`).join(' ');
    await expectRefused(gateway.url, `{ currentToken { ${spreads} } } ${fragments}`, { message: expect.stringContaining('Repeated fields limit') as unknown as string, code: 'TOO_MANY_REPEATED_FIELDS' });
    // A field repeated a few times, or one fragment spread in two places, is fine.
    const few = await send(gateway.url, `{ currentToken { name name ...T ... on ApiToken { ...T } } } fragment T on ApiToken { name role }`);
    expect(few.body.errors).toBeUndefined();
  });

  it('the merge checks counted: pairs of same-named fields, and the pairs under them', () => {
    const checks = (query: string) => repeatedFieldChecks(parse(query), 1e9);
    expect(checks('{ a b c }')).toBe(0);
    expect(checks('{ a a a }')).toBe(3);
    // Two `a`s: one pair, and under it the two `b`s of the one pair... plus each `a`'s own pair of `b`s.
    expect(checks('{ a { b b } a { b b } }')).toBe(1 + 4 + 1 + 1);
    // Two fragments spread together: one pair, and their `name`s.
    expect(checks('{ ...A ...B } fragment A on Q { name } fragment B on Q { name }')).toBe(1 + 1);
    // The same fragment reached twice adds nothing: graphql-js does not compare a node with itself.
    expect(checks('{ ...A ... on Q { ...A } } fragment A on Q { name }')).toBe(0);
  });

  it('shape limits are answered before validation: a too-deep query with unknown fields gets only the depth error', async () => {
    await expectRefused(gateway.url, DEEP.replace('{ name }', '{ name noSuchField }'), { message: 'Query depth limit of 12 exceeded, found 13.', code: 'QUERY_TOO_DEEP' });
    // And the size before the tokens: a long document of many tokens is refused for its size.
    const both = `{ ${'__typename '.repeat(7_000)} }`;
    await expectRefused(gateway.url, both, { message: expect.stringContaining('Document size limit of 65536 bytes exceeded') as unknown as string, code: 'DOCUMENT_TOO_LARGE' });
  });

  it('aliases of __typename count like any other', async () => {
    const aliases = Array.from({ length: 16 }, (_, i) => `t${i}: __typename`).join(' ');
    await expectRefused(gateway.url, `{ ${aliases} }`, { message: 'Aliases limit of 15 exceeded, found 16.', code: 'TOO_MANY_ALIASES' });
  });

  it('nodes(ids:) takes at most 500 ids, and each counts toward the cost', async () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => encodeGlobalId('Box', i + 1));
    const many = await send(gateway.url, 'query N($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids: ids(501) });
    expect(many.body.data ?? null).toBeNull();
    expect(many.body.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([['`ids` may hold at most 500 IDs; it held 501. Ask in several requests.', 'BAD_USER_INPUT']]);
    const ok = await send(gateway.url, 'query N($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids: ids(500) });
    expect(ok.body.errors).toBeUndefined();
    expect(ok.body.data).toEqual({ nodes: expect.any(Array) });
    await expectRefused(
      gateway.url,
      'query N($ids: [ID!]!) { nodes(ids: $ids) { ... on Box { devices(first: 100) { nodes { id } } } } }',
      { message: 'Query cost limit of 10000 exceeded, found 100501. Ask for fewer items per page (first/last) or fewer nested lists.', code: 'COST_LIMIT_EXCEEDED' },
      { ids: ids(500) },
    );
    expect(operationCost(schema, parse(`{ nodes(ids: ["a", "b", "c"]) { id } }`), undefined)).toBe(1 + 3 * 1);
  });

  it('a viewer gets the same refusals over websockets and SSE, and the gateway keeps answering', async () => {
    const viewer = await createToken(gateway.url, 'viewer');
    const client = wsClient(gateway.url, { token: viewer.token });
    try {
      const repeated = wsSubscribe(client, REPEATED);
      expect(((await repeated.ended) as Array<{ extensions?: { code?: string } }>).map((e) => e.extensions?.code)).toEqual(['TOO_MANY_REPEATED_FIELDS']);
      const large = wsSubscribe(client, `# ${'x'.repeat(70_000)}\nsubscription { statusChanged { device { id } } }`);
      expect(((await large.ended) as Array<{ extensions?: { code?: string } }>).map((e) => e.extensions?.code)).toEqual(['DOCUMENT_TOO_LARGE']);
    } finally {
      await client.dispose();
    }
    const sse = sseSubscribe(gateway.url, `subscription { ${Array.from({ length: 16 }, (_, i) => `t${i}: __typename`).join(' ')} }`, undefined, { token: viewer.token });
    const refused = (await sse.next()) as { errors: Array<{ extensions: { code: string } }> };
    expect(refused.errors.map((e) => e.extensions.code)).toEqual(['TOO_MANY_ALIASES']);
    sse.close();
    expect((await send(gateway.url, '{ __typename }', undefined, { token: viewer.token })).body).toEqual({ data: { __typename: 'Query' } });
  });
});
