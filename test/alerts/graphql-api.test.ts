import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { recordStatements } from '../helpers/statements';
import { createToken } from '../helpers/tokens';
import { until } from '../helpers/wait';
import { insertBox, insertDevice } from './fixtures';

// The alert API through real HTTP: rules written and checked, alerts fired by the real evaluator
// (offline boxes and devices inserted straight into the tables), read, filtered, paged, acknowledged.

let gateway: TestGateway;
const tokens = { viewer: '', operator: '' };
const boxIds: number[] = [];
const deviceIds: number[] = [];

type Body = { data?: any; errors?: { message: string; path?: unknown[]; extensions?: Record<string, unknown> }[] };
async function gql(query: string, variables?: Record<string, unknown>, role: 'viewer' | 'operator' | 'admin' = 'operator'): Promise<Body> {
  const response = await graphql<any, unknown>(gateway.url, query, variables, { token: role === 'admin' ? undefined : tokens[role] });
  expect(response.status, JSON.stringify(response.body)).toBeLessThan(500);
  return response.body;
}
async function ok(query: string, variables?: Record<string, unknown>, role: 'viewer' | 'operator' | 'admin' = 'operator') {
  const body = await gql(query, variables, role);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
}
const box = (i: number) => encodeGlobalId('Box', boxIds[i]!);
const count = async (table: string) => (await gateway.sql.query(`select count(*)::int as n from ${table}`)).rows[0].n as number;

const CREATE = `mutation ($input: AlertRuleInput!) { createAlertRule(input: $input) { id name kind severity enabled forSeconds boxes { licenseKey } deviceTypes openAlerts createdBy } }`;
const ALERTS = `query ($filter: AlertFilter, $first: Int, $after: String) {
  alerts(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id state severity value box { id } device { id } rule { id name } acknowledgedBy acknowledgeComment resolution }
  }
}`;

beforeAll(async () => {
  gateway = await startGateway();
  tokens.viewer = (await createToken(gateway.url, 'viewer', 'viewer of alerts')).token;
  tokens.operator = (await createToken(gateway.url, 'operator', 'operator of alerts')).token;
  const silentSince = new Date(Date.now() - 3_600_000);
  for (let i = 0; i < 3; i++) boxIds.push(await insertBox(gateway.sql, { status: 'offline', statusSince: silentSince, lastReportAt: silentSince }));
  for (let i = 0; i < 3; i++) deviceIds.push(await insertDevice(gateway.sql, boxIds[0]!, { status: 'offline', statusSince: silentSince }));
});
afterAll(async () => {
  await gateway?.close();
});

describe('rules', () => {
  it('an operator creates a rule; it fires at once for every subject already due; viewers read it and its alerts', async () => {
    const { createAlertRule: rule } = await ok(CREATE, { input: { name: 'boxes silent', kind: 'BOX_OFFLINE', severity: 'MAJOR', forSeconds: 60, boxIds: [box(0), box(1)] } });
    expect(rule).toMatchObject({ name: 'boxes silent', kind: 'BOX_OFFLINE', severity: 'MAJOR', enabled: true, forSeconds: 60, deviceTypes: null, createdBy: expect.stringContaining('operator of alerts') });
    expect(rule.boxes).toHaveLength(2);
    expect(rule.openAlerts).toBe(2);
    const { alerts } = await ok(ALERTS, { filter: { ruleIds: [rule.id] } }, 'viewer');
    expect(alerts.totalCount).toBe(2);
    expect(alerts.nodes.map((a: any) => a.box.id).sort()).toEqual([box(0), box(1)].sort());
    for (const alert of alerts.nodes) expect(alert).toMatchObject({ state: 'FIRING', severity: 'MAJOR', device: null, rule: { id: rule.id } });
    expect(alerts.nodes[0].value).toBeGreaterThanOrEqual(3_500);
    const { alertRules } = await ok('{ alertRules(first: 50) { totalCount nodes { id name } } }', undefined, 'viewer');
    expect(alertRules.nodes).toContainEqual({ id: rule.id, name: 'boxes silent' });
  });

  it('every mistake is a client error naming its argument, and nothing is written', async () => {
    const removed = await insertBox(gateway.sql);
    await gateway.sql.query('update boxes set removed_at = now() where id = $1', [removed]);
    const base = { name: 'bad', kind: 'BOX_OFFLINE', severity: 'INFO' };
    const cases: [Record<string, unknown>, string, string][] = [
      [{ ...base, forSeconds: -1 }, 'BAD_USER_INPUT', 'input.forSeconds'],
      [{ ...base, forSeconds: 1_000_000_000 }, 'BAD_USER_INPUT', 'input.forSeconds'],
      [{ ...base, name: '   ' }, 'BAD_USER_INPUT', 'input.name'],
      [{ ...base, kind: 'BOX_HEALTH', healthThreshold: 80 }, 'BAD_USER_INPUT', 'input.healthFigure'],
      [{ ...base, kind: 'DEVICE_FLAPPING', flapWindowSeconds: 60 }, 'BAD_USER_INPUT', 'input.flapChanges'],
      [{ ...base, healthFigure: 'CPU' }, 'BAD_USER_INPUT', 'input.healthFigure'],
      [{ ...base, boxIds: [encodeGlobalId('Box', removed)] }, 'BAD_USER_INPUT', 'input.boxIds'],
      [{ ...base, boxIds: [encodeGlobalId('Device', deviceIds[0]!)] }, 'BAD_USER_INPUT', 'input.boxIds'],
      [{ ...base, boxIds: ['not an id'] }, 'BAD_USER_INPUT', 'input.boxIds'],
      [{ ...base, channelIds: [encodeGlobalId('WebhookChannel', 999_999)] }, 'BAD_USER_INPUT', 'input.channelIds'],
    ];
    const rules = await count('alert_rules');
    const alerts = await count('alerts');
    for (const [input, code, argument] of cases) {
      const body = await gql(CREATE, { input });
      expect(body.data, JSON.stringify(input)).toEqual({ createAlertRule: null });
      expect(body.errors?.map((e) => [e.extensions?.code, e.extensions?.argument]), JSON.stringify(input)).toEqual([[code, argument]]);
    }
    // An unknown enum value never reaches the resolver: a validation error, not a 500.
    const unknownFigure = await gql(CREATE, { input: { ...base, kind: 'BOX_HEALTH', healthFigure: 'HUMIDITY', healthThreshold: 1 } });
    expect(unknownFigure.errors?.[0]?.message).toContain('HUMIDITY');
    expect(await count('alert_rules')).toBe(rules);
    expect(await count('alerts')).toBe(alerts);

    const { createAlertRule: rule } = await ok(CREATE, { input: { ...base, name: 'to patch' } });
    const update = `mutation ($id: ID!, $patch: AlertRulePatch!) { updateAlertRule(id: $id, patch: $patch) { id forSeconds } }`;
    const patched = await gql(update, { id: rule.id, patch: { forSeconds: -5 } });
    expect(patched.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['BAD_USER_INPUT', 'patch.forSeconds']]);
    const missing = await gql(update, { id: encodeGlobalId('AlertRule', 999_999), patch: { name: 'x' } });
    expect(missing.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['NOT_FOUND', 'id']]);
    const wrongType = await gql(update, { id: box(0), patch: { name: 'x' } });
    expect(wrongType.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['BAD_USER_INPUT', 'id']]);
    const deleted = await gql(`mutation ($id: ID!) { deleteAlertRule(id: $id) }`, { id: encodeGlobalId('AlertRule', 999_999) });
    expect(deleted.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['NOT_FOUND', 'id']]);
    expect((await gateway.sql.query('select for_seconds from alert_rules where name = $1', ['to patch'])).rows).toEqual([{ for_seconds: 0 }]);
  });

  it('disabling resolves its alerts (RULE_DISABLED), enabling fires again, deleting resolves (RULE_DELETED) and unlists it', async () => {
    const { createAlertRule: rule } = await ok(CREATE, { input: { name: 'box 2 silent', kind: 'BOX_OFFLINE', severity: 'MINOR', boxIds: [box(2)] } });
    const update = `mutation ($id: ID!, $patch: AlertRulePatch!) { updateAlertRule(id: $id, patch: $patch) { enabled openAlerts } }`;
    expect((await ok(update, { id: rule.id, patch: { enabled: false } })).updateAlertRule).toEqual({ enabled: false, openAlerts: 0 });
    let alerts = (await ok(ALERTS, { filter: { ruleIds: [rule.id] } })).alerts.nodes;
    expect(alerts.map((a: any) => [a.state, a.resolution])).toEqual([['RESOLVED', 'RULE_DISABLED']]);
    expect((await ok(update, { id: rule.id, patch: { enabled: true } })).updateAlertRule).toEqual({ enabled: true, openAlerts: 1 });
    expect((await ok(`mutation ($id: ID!) { deleteAlertRule(id: $id) }`, { id: rule.id })).deleteAlertRule).toBe(rule.id);
    alerts = (await ok(ALERTS, { filter: { ruleIds: [rule.id] } })).alerts.nodes;
    expect(alerts.map((a: any) => [a.state, a.resolution])).toEqual([
      ['RESOLVED', 'RULE_DELETED'],
      ['RESOLVED', 'RULE_DISABLED'],
    ]);
    const { alertRules } = await ok('{ alertRules(first: 100) { nodes { id } } }');
    expect(alertRules.nodes.map((r: any) => r.id)).not.toContain(rule.id);
    const { node } = await ok(`query ($id: ID!) { node(id: $id) { ... on AlertRule { name deletedAt } } }`, { id: rule.id });
    expect(node.name).toBe('box 2 silent');
    expect(node.deletedAt).not.toBeNull();
  });
});

describe('alerts', () => {
  let deviceRule: string;

  beforeAll(async () => {
    deviceRule = (await ok(CREATE, { input: { name: 'cameras down', kind: 'DEVICE_OFFLINE', severity: 'CRITICAL', deviceTypes: ['RTSP'] } })).createAlertRule.id;
  });

  it('filter by state, severity, rule, box, device and time; pages newest first without overlap', async () => {
    const all = (await ok(ALERTS, { first: 100 })).alerts;
    expect(all.totalCount).toBe(all.nodes.length);
    const ids = all.nodes.map((a: any) => a.id);
    const pages: string[] = [];
    let after: string | undefined;
    for (;;) {
      const { alerts } = await ok(ALERTS, { first: 2, after });
      pages.push(...alerts.nodes.map((a: any) => a.id));
      if (!alerts.pageInfo.hasNextPage) break;
      after = alerts.pageInfo.endCursor;
    }
    expect(pages).toEqual(ids);
    const critical = (await ok(ALERTS, { filter: { severities: ['CRITICAL'] } })).alerts;
    expect(critical.totalCount).toBe(3);
    expect(new Set(critical.nodes.map((a: any) => a.device.id))).toEqual(new Set(deviceIds.map((id) => encodeGlobalId('Device', id))));
    expect((await ok(ALERTS, { filter: { ruleIds: [deviceRule], deviceIds: [encodeGlobalId('Device', deviceIds[1]!)] } })).alerts.totalCount).toBe(1);
    // The box (BOX_OFFLINE, MAJOR) and its 3 devices (CRITICAL); the INFO rule of every box is left out.
    expect((await ok(ALERTS, { filter: { boxIds: [box(0)], states: ['FIRING'], severities: ['CRITICAL', 'MAJOR'] } })).alerts.totalCount).toBe(4);
    expect((await ok(ALERTS, { filter: { states: ['RESOLVED'] } })).alerts.nodes.every((a: any) => a.state === 'RESOLVED')).toBe(true);
    expect((await ok(ALERTS, { filter: { firedSince: new Date(Date.now() + 60_000).toISOString() } })).alerts.totalCount).toBe(0);
    expect((await ok(ALERTS, { filter: { firedUntil: new Date(Date.now() + 60_000).toISOString() } })).alerts.totalCount).toBe(all.totalCount);
    const badFilter = await gql(ALERTS, { filter: { ruleIds: [box(0)] } });
    expect(badFilter.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['BAD_USER_INPUT', 'filter.ruleIds']]);
    const badCursor = await gql(ALERTS, { after: 'bm9wZQ' });
    expect(badCursor.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('Box.alerts and Device.alerts read their pages for all parents in one statement each', async () => {
    const operation = `query ($first: Int) { boxes(first: $first) { nodes { id alerts(first: 5) { totalCount nodes { id rule { name } } }
      devices(first: 5) { nodes { alerts(first: 5) { nodes { id severity } } } } } } }`;
    const pools = () => [gateway.app.apiPool];
    const reads = (statements: string[]) => statements.filter((s) => /from alerts a/.test(s) || /from unnest/.test(s) && /alerts a/.test(s));
    const small = await recordStatements(pools(), async () => ok(operation, { first: 1 }));
    let data: any;
    const large = await recordStatements(pools(), async () => (data = await ok(operation, { first: 10 })));
    const first = data.boxes.nodes.find((b: any) => b.id === box(0));
    const expected = (await ok(ALERTS, { filter: { boxIds: [box(0)] }, first: 100 })).alerts.totalCount;
    expect(first.alerts.totalCount).toBe(expected);
    expect(first.alerts.nodes).toHaveLength(Math.min(5, expected));
    expect(first.devices.nodes).toHaveLength(3);
    expect(first.devices.nodes.every((d: any) => d.alerts.nodes.length === 1 && d.alerts.nodes[0].severity === 'CRITICAL')).toBe(true);
    expect(reads(large).length, large.join('\n---\n')).toBe(reads(small).length);
    expect(large.length, large.join('\n---\n')).toBe(small.length);
  });

  it('an operator acknowledges a firing alert (who, when, comment); mistakes are client errors', async () => {
    const ACK = `mutation ($id: ID!, $comment: String) { acknowledgeAlert(id: $id, comment: $comment) { id state acknowledgedBy acknowledgedAt acknowledgeComment } }`;
    const target = (await ok(ALERTS, { filter: { ruleIds: [deviceRule] }, first: 1 })).alerts.nodes[0];
    const refused = await gql(ACK, { id: target.id }, 'viewer');
    expect(refused.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    const tooLong = await gql(ACK, { id: target.id, comment: 'x'.repeat(1001) });
    expect(tooLong.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['BAD_USER_INPUT', 'comment']]);
    const { acknowledgeAlert } = await ok(ACK, { id: target.id, comment: 'on it' });
    expect(acknowledgeAlert).toMatchObject({ id: target.id, state: 'ACKNOWLEDGED', acknowledgeComment: 'on it', acknowledgedBy: expect.stringContaining('operator of alerts') });
    const { fleetSummary } = await ok('{ fleetSummary { alerts { open firing acknowledged bySeverity { severity firing acknowledged } } } }', undefined, 'viewer');
    expect(fleetSummary.alerts.acknowledged).toBe(1);
    expect(fleetSummary.alerts.open).toBe(fleetSummary.alerts.firing + 1);
    expect(fleetSummary.alerts.bySeverity.map((s: any) => s.severity)).toEqual(['CRITICAL', 'MAJOR', 'MINOR', 'WARNING', 'INFO']);
    expect(fleetSummary.alerts.bySeverity[0]).toEqual({ severity: 'CRITICAL', firing: 2, acknowledged: 1 });
    const missing = await gql(ACK, { id: encodeGlobalId('Alert', 999_999) });
    expect(missing.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['NOT_FOUND', 'id']]);
    const resolved = (await ok(ALERTS, { filter: { states: ['RESOLVED'] }, first: 1 })).alerts.nodes[0];
    const notOpen = await gql(ACK, { id: resolved.id });
    expect(notOpen.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['ALERT_NOT_OPEN', 'id']]);
  });
});

describe('webhook channels and notifications', () => {
  it('operators make channels and read the outbox; the secret is answered once and no field reads it; viewers read neither', async () => {
    const made = await ok(`mutation { createWebhookChannel(input: { name: "ops", url: "http://127.0.0.1:9/hook", notifyAcknowledged: true }) { secret channel { id name url enabled notifyAcknowledged } } }`);
    const { secret, channel } = made.createWebhookChannel;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(channel).toMatchObject({ name: 'ops', url: 'http://127.0.0.1:9/hook', enabled: true, notifyAcknowledged: true });
    const noSecret = await gql('{ webhookChannels { secret } }');
    expect(noSecret.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const refusedUrl = await gql(`mutation { createWebhookChannel(input: { name: "x", url: "ftp://example.com/" }) { secret } }`);
    expect(refusedUrl.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([[expect.stringMatching(/BAD_USER_INPUT|WEBHOOK_URL_REFUSED/), 'input.url']]);

    const { createAlertRule: rule } = await ok(CREATE, { input: { name: 'routed', kind: 'BOX_OFFLINE', severity: 'WARNING', boxIds: [box(1)], channelIds: [channel.id] } });
    const withChannels = await ok(`query ($id: ID!) { node(id: $id) { ... on AlertRule { channels { id name } } } }`, { id: rule.id });
    expect(withChannels.node.channels).toEqual([{ id: channel.id, name: 'ops' }]);
    const NOTIFICATIONS = `query ($filter: AlertFilter) { alerts(filter: $filter, first: 5) { nodes { id notifications(first: 5) { totalCount nodes { id kind status idempotencyKey attempts attemptLog { attempt outcome } channel { id } alert { id } } } } } }`;
    const { alerts } = await ok(NOTIFICATIONS, { filter: { ruleIds: [rule.id] } });
    const [alert] = alerts.nodes;
    expect(alert.notifications.totalCount).toBe(1);
    const notification = alert.notifications.nodes[0];
    expect(notification).toMatchObject({ kind: 'FIRED', channel: { id: channel.id }, alert: { id: alert.id } });
    const outbox = await ok(`query ($filter: WebhookNotificationFilter) { webhookNotifications(filter: $filter) { totalCount nodes { id } } }`, {
      filter: { channelIds: [channel.id], alertIds: [alert.id] },
    });
    expect(outbox.webhookNotifications.nodes).toEqual([{ id: notification.id }]);
    const redelivered = await ok(`mutation ($id: ID!) { redeliverWebhookNotification(id: $id) { id status idempotencyKey } }`, { id: notification.id });
    expect(redelivered.redeliverWebhookNotification).toEqual({ id: notification.id, status: 'PENDING', idempotencyKey: notification.idempotencyKey });

    // Viewers: rules and alerts yes; channels, notifications and attempts no.
    for (const operation of ['{ webhookChannels { id } }', '{ webhookNotifications { totalCount } }', `{ alertRules { nodes { channels { id } } } }`, `{ alerts { nodes { notifications { totalCount } } } }`]) {
      const body = await gql(operation, undefined, 'viewer');
      expect(body.errors?.length, operation).toBeGreaterThan(0);
      expect(new Set(body.errors?.map((e) => e.extensions?.code)), operation).toEqual(new Set(['FORBIDDEN']));
    }
    const forbiddenNode = await gql(`query ($id: ID!) { node(id: $id) { id } }`, { id: channel.id }, 'viewer');
    expect(forbiddenNode.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);

    const rotated = await ok(`mutation ($id: ID!) { rotateWebhookChannelSecret(id: $id) { secret channel { id } } }`, { id: channel.id });
    expect(rotated.rotateWebhookChannelSecret.secret).toMatch(/^whsec_/);
    expect(rotated.rotateWebhookChannelSecret.secret).not.toBe(secret);
    const updated = await ok(`mutation ($id: ID!) { updateWebhookChannel(id: $id, patch: { enabled: false }) { enabled name } }`, { id: channel.id });
    expect(updated.updateWebhookChannel).toEqual({ enabled: false, name: 'ops' });
    expect((await ok(`mutation ($id: ID!) { deleteWebhookChannel(id: $id) }`, { id: channel.id })).deleteWebhookChannel).toBe(channel.id);
    const gone = await gql(`mutation ($id: ID!) { deleteWebhookChannel(id: $id) }`, { id: channel.id });
    expect(gone.errors?.map((e) => [e.extensions?.code, e.extensions?.argument])).toEqual([['NOT_FOUND', 'id']]);
    await until(async () => (await count('webhook_channels')) === 0, 'channel deleted');
  });
});
