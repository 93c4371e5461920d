import type { GraphQLObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql, graphqlRaw } from '../helpers/graphql';
import { sseSubscribe, subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';
import { createToken } from '../helpers/tokens';

// Who may do what: every root field, for each role, and the fields with rules of their own.

let gateway: TestGateway;
const tokens: Record<'viewer' | 'operator' | 'admin', string> = { viewer: '', operator: '', admin: '' };

beforeAll(async () => {
  gateway = await startGateway();
  await postReport(gateway.url, {
    mq_license_key: 'ROLES-0001',
    media_devices: [{ media_device_id: 'cam', media_device_status: 'online', media_device_type: 'rtsp', media_device_url: 'rtsp://admin:secret@10.0.0.9/stream' }],
  });
  for (const role of ['viewer', 'operator', 'admin'] as const) tokens[role] = (await createToken(gateway.url, role, `${role} of roles.test`)).token;
});
afterAll(async () => {
  await gateway?.close();
});

const BOX = encodeGlobalId('Box', 1);
const NO_BOX = encodeGlobalId('Box', 999_999);
const NO_TOKEN = encodeGlobalId('ApiToken', 999_999);
const NO_RULE = encodeGlobalId('AlertRule', 999_999);
const NO_ALERT = encodeGlobalId('Alert', 999_999);
const NO_CHANNEL = encodeGlobalId('WebhookChannel', 999_999);
const NO_NOTIFICATION = encodeGlobalId('WebhookNotification', 999_999);
const NO_ROLLOUT = encodeGlobalId('Rollout', 999_999);

/** One operation per root field, and the least role that may run it. Mutations aim at nothing that exists. */
const ROOT_FIELDS: Record<string, { role: 'viewer' | 'operator' | 'admin'; operation: string }> = {
  'Query.node': { role: 'viewer', operation: `{ node(id: "${BOX}") { id } }` },
  'Query.nodes': { role: 'viewer', operation: `{ nodes(ids: ["${BOX}"]) { id } }` },
  'Query.box': { role: 'viewer', operation: `{ box(licenseKey: "ROLES-0001") { id } }` },
  'Query.boxes': { role: 'viewer', operation: `{ boxes(first: 1) { totalCount } }` },
  'Query.device': { role: 'viewer', operation: `{ device(id: "${encodeGlobalId('Device', 1)}") { id } }` },
  'Query.devices': { role: 'viewer', operation: `{ devices(first: 1) { totalCount } }` },
  'Query.statusEvents': { role: 'viewer', operation: `{ statusEvents(first: 1) { totalCount } }` },
  'Query.fleetSummary': { role: 'viewer', operation: `{ fleetSummary { boxes { total } } }` },
  'Query.fleetAvailability': { role: 'viewer', operation: `{ fleetAvailability(since: "${new Date(Date.now() - 86_400_000).toISOString()}", bucket: DAY) { availability } }` },
  'Query.devicesByTimeOffline': { role: 'viewer', operation: `{ devicesByTimeOffline(since: "${new Date(Date.now() - 86_400_000).toISOString()}", first: 1) { edges { offlineSeconds } } }` },
  'Query.currentToken': { role: 'viewer', operation: `{ currentToken { name role } }` },
  'Query.boxConfig': { role: 'operator', operation: `{ boxConfig(boxId: "${NO_BOX}") { __typename } }` },
  'Query.apiTokens': { role: 'admin', operation: `{ apiTokens { name } }` },
  'Query.alertRules': { role: 'viewer', operation: `{ alertRules(first: 1) { totalCount } }` },
  'Query.alerts': { role: 'viewer', operation: `{ alerts(first: 1) { totalCount } }` },
  'Query.webhookChannels': { role: 'operator', operation: `{ webhookChannels { name } }` },
  'Query.webhookNotifications': { role: 'operator', operation: `{ webhookNotifications(first: 1) { totalCount } }` },
  'Mutation.configureBox': { role: 'operator', operation: `mutation { configureBox(input: { boxId: "${NO_BOX}", reportPeriodSeconds: 10 }) { __typename } }` },
  'Mutation.pointBoxAtGateway': { role: 'operator', operation: `mutation { pointBoxAtGateway(boxId: "${NO_BOX}") { __typename } }` },
  'Mutation.registerBox': { role: 'operator', operation: `mutation { registerBox(licenseKey: "") { __typename } }` },
  'Mutation.updateBox': { role: 'operator', operation: `mutation { updateBox(boxId: "${NO_BOX}", name: "x") { __typename } }` },
  'Mutation.removeBox': { role: 'operator', operation: `mutation { removeBox(boxId: "${NO_BOX}") { __typename } }` },
  'Mutation.createApiToken': { role: 'admin', operation: `mutation { createApiToken(name: "", role: VIEWER) { __typename } }` },
  'Mutation.revokeApiToken': { role: 'admin', operation: `mutation { revokeApiToken(id: "${NO_TOKEN}") { __typename } }` },
  'Mutation.createAlertRule': { role: 'operator', operation: `mutation { createAlertRule(input: { name: "", kind: BOX_OFFLINE, severity: INFO }) { id } }` },
  'Mutation.updateAlertRule': { role: 'operator', operation: `mutation { updateAlertRule(id: "${NO_RULE}", patch: { name: "x" }) { id } }` },
  'Mutation.deleteAlertRule': { role: 'operator', operation: `mutation { deleteAlertRule(id: "${NO_RULE}") }` },
  'Mutation.acknowledgeAlert': { role: 'operator', operation: `mutation { acknowledgeAlert(id: "${NO_ALERT}") { id } }` },
  'Mutation.createWebhookChannel': { role: 'operator', operation: `mutation { createWebhookChannel(input: { name: "", url: "ftp://x" }) { secret } }` },
  'Mutation.updateWebhookChannel': { role: 'operator', operation: `mutation { updateWebhookChannel(id: "${NO_CHANNEL}", patch: { name: "x" }) { id } }` },
  'Mutation.rotateWebhookChannelSecret': { role: 'operator', operation: `mutation { rotateWebhookChannelSecret(id: "${NO_CHANNEL}") { secret } }` },
  'Mutation.deleteWebhookChannel': { role: 'operator', operation: `mutation { deleteWebhookChannel(id: "${NO_CHANNEL}") }` },
  'Query.rollout': { role: 'viewer', operation: `{ rollout(id: "${NO_ROLLOUT}") { id } }` },
  'Query.rollouts': { role: 'viewer', operation: `{ rollouts(first: 1) { totalCount } }` },
  'Mutation.registerBoxes': { role: 'operator', operation: `mutation { registerBoxes(count: 0) { __typename } }` },
  'Mutation.rebindBoxHardware': { role: 'operator', operation: `mutation { rebindBoxHardware(boxId: "${NO_BOX}", hardwareSerial: "SN") { __typename } }` },
  'Mutation.addMediaDevice': { role: 'operator', operation: `mutation { addMediaDevice(boxId: "${NO_BOX}", device: { name: "cam", type: "rtsp", url: "rtsp://10.0.0.1/x" }) { __typename } }` },
  'Mutation.deleteMediaDevice': { role: 'operator', operation: `mutation { deleteMediaDevice(boxId: "${NO_BOX}", mediaDeviceId: "cam") { __typename } }` },
  'Mutation.startRollout': { role: 'operator', operation: `mutation { startRollout(input: { boxIds: ["${NO_BOX}"], settings: { reportPeriodSeconds: 10 } }) { __typename } }` },
  'Mutation.pauseRollout': { role: 'operator', operation: `mutation { pauseRollout(id: "${NO_ROLLOUT}") { __typename } }` },
  'Mutation.resumeRollout': { role: 'operator', operation: `mutation { resumeRollout(id: "${NO_ROLLOUT}") { __typename } }` },
  'Mutation.cancelRollout': { role: 'operator', operation: `mutation { cancelRollout(id: "${NO_ROLLOUT}") { __typename } }` },
  'Mutation.redeliverWebhookNotification': { role: 'operator', operation: `mutation { redeliverWebhookNotification(id: "${NO_NOTIFICATION}") { id } }` },
};
/**
 * Subscriptions of status events; `alertChanged` is tested with alerts (test/alerts/graphql-*.test.ts),
 * `rolloutProgress` with rollouts (test/rollouts/control.test.ts).
 */
const STATUS_SUBSCRIPTIONS = ['boxStatusChanged', 'deviceStatusChanged', 'statusEvents'];
const SUBSCRIPTIONS = [...STATUS_SUBSCRIPTIONS, 'alertChanged', 'rolloutProgress'].sort();

const rootFields = (type: GraphQLObjectType | null | undefined) => Object.keys(type?.getFields() ?? {}).map((f) => `${type!.name}.${f}`);

describe('roles on every root field', () => {
  it('the table names every query and mutation of the schema', () => {
    expect(Object.keys(ROOT_FIELDS).sort()).toEqual([...rootFields(schema.getQueryType()), ...rootFields(schema.getMutationType())].sort());
    expect(rootFields(schema.getSubscriptionType()).sort()).toEqual(SUBSCRIPTIONS.map((f) => `Subscription.${f}`));
  });

  for (const [field, { role, operation }] of Object.entries(ROOT_FIELDS)) {
    it(`${field} needs ${role}`, async () => {
      const [type, name] = field.split('.') as [string, string];
      for (const tokenRole of ['viewer', 'operator', 'admin'] as const) {
        const allowed = ['viewer', 'operator', 'admin'].indexOf(tokenRole) >= ['viewer', 'operator', 'admin'].indexOf(role);
        const response = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens[tokenRole] });
        const codes = (response.body.errors ?? []).map((e) => e.extensions?.code);
        if (allowed) {
          expect(codes, `${tokenRole} runs ${field}: ${JSON.stringify(response.body)}`).not.toContain('FORBIDDEN');
          expect(response.body.data?.[name], `${tokenRole} runs ${field}`).toBeDefined();
        } else {
          expect(response.status).toBe(200);
          expect(response.body.errors?.map(({ message, path, extensions }) => ({ message, path, extensions }))).toEqual([
            {
              message: `${type}.${name} needs the ${role} role; token "${tokenRole} of roles.test" has ${tokenRole}.`,
              path: [name],
              extensions: { code: 'FORBIDDEN', requiredRole: role },
            },
          ]);
          // A nullable field (the alert and webhook mutations) is null; a non-null one nulls the whole answer.
          expect(response.body.data?.[name] ?? null).toBeNull();
        }
      }
    });
  }

  it('a refused mutation changes nothing', async () => {
    const before = await gateway.sql.query('select count(*)::int as n from boxes');
    const refused = await graphql<any, unknown>(gateway.url, 'mutation { registerBox(licenseKey: "ROLES-NEW") { __typename } }', undefined, { token: tokens.viewer });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const tokensBefore = await gateway.sql.query('select count(*)::int as n from api_tokens');
    const refusedToken = await graphql<any, unknown>(gateway.url, 'mutation { createApiToken(name: "sneaky", role: ADMIN) { __typename } }', undefined, { token: tokens.operator });
    expect(refusedToken.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await gateway.sql.query('select count(*)::int as n from boxes')).rows).toEqual(before.rows);
    expect((await gateway.sql.query('select count(*)::int as n from api_tokens')).rows).toEqual(tokensBefore.rows);
  });
});

describe('fields with rules of their own', () => {
  it('Device.url (camera credentials) needs operator; the rest of the device is a viewer’s', async () => {
    const operation = '{ devices(first: 1) { nodes { externalId url } } }';
    const viewer = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.viewer });
    // The whole error as a client reads it: located at the field (made there, without a stack or a wrapper).
    expect(viewer.body.errors).toEqual([
      {
        message: 'Device.url needs the operator role; token "viewer of roles.test" has viewer.',
        locations: [{ line: 1, column: operation.indexOf('url') + 1 }],
        path: ['devices', 'nodes', 0, 'url'],
        extensions: { code: 'FORBIDDEN', requiredRole: 'operator' },
      },
    ]);
    expect(viewer.body.data?.devices.nodes).toEqual([{ externalId: 'cam', url: null }]);
    const operator = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.operator });
    expect(operator.body).toEqual({ data: { devices: { nodes: [{ externalId: 'cam', url: 'rtsp://admin:secret@10.0.0.9/stream' }] } } });
  });

  it('Box.configChanges (the audit trail) needs operator', async () => {
    const operation = '{ box(licenseKey: "ROLES-0001") { licenseKey configChanges(first: 1) { totalCount } } }';
    const viewer = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.viewer });
    expect(viewer.body.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    const operator = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.operator });
    expect(operator.body).toEqual({ data: { box: { licenseKey: 'ROLES-0001', configChanges: { totalCount: 0 } } } });
  });

  it('Box.lastReport (the raw body, with camera credentials in it) needs operator', async () => {
    const operation = '{ box(licenseKey: "ROLES-0001") { licenseKey lastReportAt lastReport { receivedAt body } } }';
    const viewer = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.viewer });
    expect(viewer.body.errors?.map((e) => [e.extensions?.code, e.path?.join('.')])).toEqual([['FORBIDDEN', 'box.lastReport']]);
    expect(viewer.body.data?.box).toMatchObject({ licenseKey: 'ROLES-0001', lastReport: null });
    const operator = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.operator });
    expect(operator.body.errors).toBeUndefined();
    const { receivedAt, body } = operator.body.data.box.lastReport;
    expect(JSON.parse(body)).toMatchObject({ mq_license_key: 'ROLES-0001' });
    expect(body).toContain('rtsp://admin:secret@10.0.0.9/stream');
    expect(Number.isNaN(Date.parse(receivedAt))).toBe(false);
    expect(receivedAt).toBe(operator.body.data.box.lastReportAt); // the stored body is the last report's
  });

  it('a viewer’s answer is not served to an operator from the response cache, nor the reverse', async () => {
    const operation = '{ devices(first: 1) { nodes { url } } }';
    await graphql(gateway.url, operation, undefined, { token: tokens.operator });
    const viewer = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.viewer });
    expect(viewer.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const operator = await graphql<any, unknown>(gateway.url, operation, undefined, { token: tokens.operator });
    expect(operator.body.errors).toBeUndefined();
  });

  it('currentToken says who is asking', async () => {
    const response = await graphql<any, unknown>(gateway.url, '{ currentToken { name role prefix revokedAt } }', undefined, { token: tokens.viewer });
    expect(response.body.data?.currentToken).toEqual({ name: 'viewer of roles.test', role: 'VIEWER', prefix: tokens.viewer.slice(0, 8), revokedAt: null });
  });
});

describe('subscriptions', () => {
  it('every subscription is a viewer’s, over websockets and SSE', async () => {
    for (const field of STATUS_SUBSCRIPTIONS) {
      const setUps = await subscriptionSetUps(gateway.url);
      const client = wsClient(gateway.url, { token: tokens.viewer });
      const sub = wsSubscribe(client, `subscription { ${field} { toStatus } }`);
      const sse = sseSubscribe(gateway.url, `subscription { ${field} { toStatus } }`, undefined, { token: tokens.viewer });
      await setUps.reach(2);
      await postReport(gateway.url, { mq_license_key: `ROLES-SUB-${field}`, media_devices: [{ media_device_id: 'cam', media_device_status: 'online' }] });
      expect((await sub.next()).data[field].toStatus).toBe('ONLINE');
      expect((await sse.next()).data[field].toStatus).toBe('ONLINE');
      sub.close();
      sse.close();
      await client.dispose();
    }
  });

  it('a websocket without a token, or with a bad one, is closed with 4403 and the payload shapes it takes, before any operation', async () => {
    const shapes = 'connection_init takes {authorization:"Bearer T"}, {token:"T"} or {headers:{Authorization:"Bearer T"}}';
    for (const [connectionParams, reason] of [
      [{}, `No API token. ${shapes}`],
      [{ headers: {} }, `No API token. ${shapes}`],
      [{ token: 12 }, `No API token. ${shapes}`],
      [{ authorization: 'Bearer fgt_not-a-token' }, `Bad API token. ${shapes}`],
      [{ authorization: 'Basic abc' }, `Bad API token. ${shapes}`],
      [{ headers: { Authorization: 'Bearer fgt_not-a-token' } }, `Bad API token. ${shapes}`],
    ] as const) {
      const client = wsClient(gateway.url, { connectionParams });
      const sub = wsSubscribe(client, 'subscription { statusEvents { id } }');
      expect(await client.closed).toEqual(expect.objectContaining({ code: 4403, reason }));
      await expect(sub.ended).resolves.toBeDefined();
    }
  });

  it('takes the token as `authorization: "Bearer …"`, as `token: "…"` or as `headers: { Authorization: "Bearer …" }` (Apollo\'s shape)', async () => {
    for (const connectionParams of [
      { authorization: `Bearer ${tokens.viewer}` },
      { Authorization: `Bearer ${tokens.viewer}` },
      { token: tokens.viewer },
      { headers: { Authorization: `Bearer ${tokens.viewer}` } },
      { headers: { authorization: `Bearer ${tokens.viewer}` } },
    ]) {
      const client = wsClient(gateway.url, { connectionParams });
      const result = await new Promise((resolve, reject) =>
        client.subscribe({ query: '{ currentToken { role } }' }, { next: resolve, error: reject, complete: () => {} }),
      );
      expect(result).toEqual({ data: { currentToken: { role: 'VIEWER' } } });
      await client.dispose();
    }
  });

  it('an SSE subscription without a token is refused with 401', async () => {
    const response = await graphqlRaw(gateway.url, JSON.stringify({ query: 'subscription { statusEvents { id } }' }), {
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      token: null,
    });
    expect(response.status).toBe(401);
  });
});

describe('requests without a valid token', () => {
  const refusal = (message: string) => ({ errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });

  it('are refused with 401, a WWW-Authenticate header and a message saying what to send', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{}, 'An API token is required: send the header Authorization: Bearer <token>. `npm run token -- create` makes one.'],
      [{ authorization: 'Basic dXNlcjpwYXNz' }, 'The Authorization header is not "Bearer <token>".'],
      [{ authorization: 'Bearer' }, 'The Authorization header is not "Bearer <token>".'],
      [{ authorization: `Bearer ${'x'.repeat(300)}` }, 'The Authorization header is not "Bearer <token>".'],
      [{ authorization: 'Bearer fgt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, 'The API token is not valid: it is unknown or was revoked.'],
    ];
    for (const [headers, message] of cases) {
      const response = await graphqlRaw(gateway.url, JSON.stringify({ query: '{ boxes { totalCount } }' }), {
        headers: { 'content-type': 'application/json', ...headers },
        token: null,
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="fleetgate"');
      expect(JSON.parse(response.text)).toEqual(refusal(message));
    }
  });

  it('GraphiQL’s page itself needs no token; a GET query does', async () => {
    const page = await graphqlRaw(gateway.url, undefined, { method: 'GET', headers: { accept: 'text/html' }, token: null });
    expect(page.status).toBe(200);
    expect(page.text).toContain('fleetgate');
    const get = await graphqlRaw(gateway.url, undefined, { method: 'GET', search: `query=${encodeURIComponent('{ boxes { totalCount } }')}`, token: null });
    expect(get.status).toBe(401);
  });
});
