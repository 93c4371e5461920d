import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { authorization } from '../helpers/auth';
import { graphql as send, query } from '../helpers/graphql';
import { newerReport, post } from './fleet-fixture';
import { graphql } from './generated';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
  await post(gateway, newerReport('E-BOX-1', [{ id: 'e1' }, { id: 'e2', status: 'offline' }]));
});
afterAll(() => gateway?.close());

const DevicePage = graphql(`
  query ErrorsDevicePage($first: Int, $last: Int, $after: String, $filter: DeviceFilter, $orderBy: DeviceOrder) {
    devices(first: $first, last: $last, after: $after, filter: $filter, orderBy: $orderBy) {
      totalCount
      edges { cursor node { id } }
    }
  }
`);

const BoxById = graphql(`
  query ErrorsBoxById($id: ID) {
    box(id: $id) { id }
  }
`);

const EventsAfter = graphql(`
  query ErrorsEventsAfter($after: String) {
    statusEvents(after: $after) { totalCount }
  }
`);

const GRAPHQL_RESPONSE = 'application/graphql-response+json';
const JSON_ONLY = 'application/json';

/** One error, with its code, and what status each media type answers. */
async function expectError(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any operation's variables
  document: TypedDocumentNode<unknown, any> | string,
  variables: Record<string, unknown>,
  expected: { code: string; message: RegExp; status: number; jsonStatus?: number },
) {
  for (const accept of [GRAPHQL_RESPONSE, JSON_ONLY]) {
    const response = await send(gateway.url, document, variables, { accept });
    expect(response.status, `${accept}: ${JSON.stringify(response.body)}`).toBe(accept === JSON_ONLY ? (expected.jsonStatus ?? 200) : expected.status);
    expect(response.headers.get('content-type')).toContain(accept);
    expect(response.body.errors).toHaveLength(1);
    const [error] = response.body.errors!;
    expect(error!.message).toMatch(expected.message);
    expect(error!.extensions?.code).toBe(expected.code);
    expect(JSON.stringify(response.body)).not.toMatch(/Unexpected error|INTERNAL_SERVER_ERROR|stack|pg|postgres/i);
  }
}

describe('bad input answers a clear GraphQL error with a code, never an internal error', () => {
  it('an ID that is not one of ours', async () => {
    await expectError(BoxById, { id: 'garbage' }, { code: 'BAD_USER_INPUT', message: /"garbage" is not a valid ID/, status: 200 });
    await expectError(BoxById, { id: encodeGlobalId('Device', 1) }, { code: 'BAD_USER_INPUT', message: /is not of type: Box/, status: 200 });
    await expectError(BoxById, { id: encodeGlobalId('Box', 'abc') }, { code: 'BAD_USER_INPUT', message: /Box ID holds "abc"/, status: 200 });
    await expectError('{ node(id: "Rm9vOjE=") { id } }', {}, { code: 'BAD_USER_INPUT', message: /"Foo", which is not a type of this API/, status: 200 });
    await expectError('{ nodes(ids: ["Qm94OjE=", "bm9wZQ=="]) { id } }', {}, { code: 'BAD_USER_INPUT', message: /not a valid ID/, status: 200 });
  });

  it('first or last above 500, negative, or both at once', async () => {
    await expectError(DevicePage, { first: 501 }, { code: 'BAD_USER_INPUT', message: /`first` must be between 0 and 500; it was 501/, status: 200 });
    await expectError(DevicePage, { first: -1 }, { code: 'BAD_USER_INPUT', message: /`first` must be between 0 and 500; it was -1/, status: 200 });
    await expectError(DevicePage, { last: 1000 }, { code: 'BAD_USER_INPUT', message: /`last` must be between 0 and 500/, status: 200 });
    await expectError(DevicePage, { first: 1, last: 1 }, { code: 'BAD_USER_INPUT', message: /either `first` or `last`/, status: 200 });
    const ok = await query(gateway.url, DevicePage, { first: 500 });
    expect(ok.devices.totalCount).toBe(2);
  });

  it('a malformed cursor, or one of another list or ordering', async () => {
    await expectError(DevicePage, { after: 'bm9wZQ' }, { code: 'BAD_USER_INPUT', message: /`after` is not a cursor of this list: it cannot be decoded/, status: 200 });
    await expectError(DevicePage, { after: '!!!' }, { code: 'BAD_USER_INPUT', message: /not a cursor of this list/, status: 200 });
    const page = await query(gateway.url, DevicePage, { first: 1 });
    const cursor = page.devices.edges[0]!.cursor;
    await expectError(
      DevicePage,
      { after: cursor, orderBy: { field: 'NAME' } },
      { code: 'BAD_USER_INPUT', message: /made for "Device:ID", not "Device:NAME"/, status: 200 },
    );
    await expectError(EventsAfter, { after: cursor }, { code: 'BAD_USER_INPUT', message: /made for "Device:ID", not "StatusEvent"/, status: 200 });
    const forged = Buffer.from(JSON.stringify(['Device:STATUS_SINCE', 'not a time', 1])).toString('base64url');
    await expectError(
      DevicePage,
      { after: forged, orderBy: { field: 'STATUS_SINCE' } },
      { code: 'BAD_USER_INPUT', message: /its position is not valid/, status: 200 },
    );
    const huge = Buffer.from(JSON.stringify(['Device:ID', 2 ** 60])).toString('base64url');
    await expectError(DevicePage, { after: huge }, { code: 'BAD_USER_INPUT', message: /its position is not valid/, status: 200 });
  });

  it('an unknown enum value, in the document or in variables', async () => {
    await expectError('{ devices(filter: { status: [BROKEN] }) { totalCount } }', {}, {
      code: 'GRAPHQL_VALIDATION_FAILED',
      message: /Value "BROKEN" does not exist in "DeviceStatus" enum/,
      status: 400,
    });
    await expectError(DevicePage, { filter: { status: ['BROKEN'] } }, {
      code: 'BAD_USER_INPUT',
      message: /Variable "\$filter" got invalid value "BROKEN"/,
      status: 400,
    });
    await expectError(DevicePage, { orderBy: { field: 'COLOUR' } }, { code: 'BAD_USER_INPUT', message: /COLOUR/, status: 400 });
  });

  it('an unknown field or argument, or a syntax error', async () => {
    await expectError('{ devices { nope } }', {}, { code: 'GRAPHQL_VALIDATION_FAILED', message: /Cannot query field "nope" on type "DeviceConnection"/, status: 400 });
    await expectError('{ devices(nope: 1) { totalCount } }', {}, { code: 'GRAPHQL_VALIDATION_FAILED', message: /Unknown argument "nope"/, status: 400 });
    await expectError('{ devices { ', {}, { code: 'GRAPHQL_PARSE_FAILED', message: /Syntax Error/, status: 400 });
  });

  it('wrong variables: missing, mistyped, malformed DateTime, too long a search', async () => {
    await expectError('query($id: ID!) { device(id: $id) { id } }', {}, { code: 'BAD_USER_INPUT', message: /"\$id" of required type "ID!" was not provided/, status: 400 });
    await expectError(DevicePage, { first: 'ten' }, { code: 'BAD_USER_INPUT', message: /"\$first" got invalid value "ten"/, status: 400 });
    await expectError('query($d: DateTime) { statusEvents(filter: { since: $d }) { totalCount } }', { d: 'yesterday' }, {
      code: 'BAD_USER_INPUT',
      message: /DateTime cannot represent an invalid date-time-string yesterday/,
      status: 400,
    });
    await expectError(DevicePage, { filter: { search: 'x'.repeat(201) } }, { code: 'BAD_USER_INPUT', message: /`search` is longer than 200/, status: 200 });
    await expectError('{ box { id } }', {}, { code: 'BAD_USER_INPUT', message: /exactly one of `id` and `licenseKey`/, status: 200 });
  });

  it('hides database faults behind a generic error, with status 200 and the data that could be read', async () => {
    const original = gateway.app.apiPool.query;
    gateway.app.apiPool.query = (() => Promise.reject(new Error('relation "secret_table" does not exist'))) as typeof original;
    try {
      const response = await send(gateway.url, '{ boxes { totalCount } }', {}, { accept: GRAPHQL_RESPONSE });
      expect(response.body.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } })]);
      expect(JSON.stringify(response.body)).not.toContain('secret_table');
    } finally {
      gateway.app.apiPool.query = original;
    }
  });
});

describe('GraphQL over HTTP', () => {
  it('passes every MUST audit of graphql-http', async () => {
    const results = await Promise.all(serverAudits({
        url: `${gateway.url}/graphql`,
        fetchFn: (input: RequestInfo | URL, init?: RequestInit) =>
          fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), ...authorization(gateway.url) } }),
      }).map((audit) => audit.fn()));
    const failed = results.filter((r) => r.name.startsWith('MUST') && r.status !== 'ok');
    expect(failed.map((r) => `${r.name}: ${'reason' in r ? r.reason : ''}`)).toEqual([]);
    expect(results.filter((r) => r.name.startsWith('MUST')).length).toBeGreaterThanOrEqual(10);
    // The SHOULD items are reported, not required.
    const warnings = results.filter((r) => r.status !== 'ok').map((r) => r.name);
    if (warnings.length > 0) console.info(`graphql-http audit, not passed (SHOULD/MAY): ${warnings.join('; ')}`);
  });

  it('serves GraphiQL to browsers at the same path', async () => {
    const response = await fetch(`${gateway.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toMatch(/graphiql/i);
  });

  it('answers GET queries and refuses mutations over GET', async () => {
    const get = await fetch(`${gateway.url}/graphql?query=${encodeURIComponent('{ boxes { totalCount } }')}`, { headers: { accept: GRAPHQL_RESPONSE, ...authorization(gateway.url) } });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ data: { boxes: { totalCount: 1 } } });
    const mutation = await fetch(`${gateway.url}/graphql?query=${encodeURIComponent('mutation { x }')}`, { headers: { accept: GRAPHQL_RESPONSE, ...authorization(gateway.url) } });
    expect(mutation.status).toBe(405);
  });
});
