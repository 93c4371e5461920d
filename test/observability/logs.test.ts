import { afterAll, beforeAll, expect, it } from 'vitest';
import { capturedLogger } from '../helpers/log-capture';
import { startFakeBox, type FakeBox } from '../helpers/fake-box';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { wsClient } from '../helpers/subscriptions';
import { createToken, revokeToken } from '../helpers/tokens';

// Structured logs, at the most talkative level, through everything that handles a secret: API
// tokens, ingest secrets and licence keys must never appear in them.

const { log, lines } = capturedLogger('trace');
let gateway: TestGateway;
let box: FakeBox;

beforeAll(async () => {
  gateway = await startGateway({ ingestPolicy: 'token', boxApiTimeoutMs: 1_000 }, undefined, { log });
  box = await startFakeBox();
});
afterAll(async () => {
  await box?.close();
  await gateway?.close();
});

it('hold no token, ingest secret or full licence key, whatever happens', async () => {
  const licenseKeys = ['LOGS-SECRET-KEY-0001', 'LOGS-SECRET-KEY-0002'];
  const operator = await createToken(gateway.url, 'operator', 'logs operator');
  const registered = await graphql<any, unknown>(
    gateway.url,
    'mutation ($k: String!, $a: String, $p: Int) { registerBox(licenseKey: $k, address: $a, apiPort: $p) { ... on RegisterBoxSuccess { box { id } } } }',
    { k: licenseKeys[0], a: box.host, p: box.port },
    { token: operator.token },
  );
  const boxId = registered.body.data.registerBox.box.id;
  await graphql(gateway.url, 'mutation ($id: ID!) { pointBoxAtGateway(boxId: $id) { __typename } }', { id: boxId }, { token: operator.token });
  const secretUrl = box.config.MEDIA_DEVICE_MONITOR_URL as string;
  const secret = secretUrl.split('/').pop()!;
  const path = new URL(secretUrl).pathname;
  const report = (key: string) => ({ mq_license_key: key, media_devices: [{ media_device_id: 'cam', media_device_status: 'online' }] });

  expect((await postReport(gateway.url, report(licenseKeys[0]!), { path })).status).toBe(200);
  expect((await postReport(gateway.url, report(licenseKeys[1]!), { path })).status).toBe(403); // another box over this secret
  expect((await postReport(gateway.url, report(licenseKeys[1]!))).status).toBe(401); // no secret
  expect((await postReport(gateway.url, `{"mq_license_key": "${licenseKeys[1]}", "media_devices": [`, { path })).status).toBe(400);
  await graphql(gateway.url, '{ boxes { totalCount } }', undefined, { token: `${operator.token.slice(0, -1)}x` }); // a bad token
  await graphql(gateway.url, 'query ($k: String!) { box(licenseKey: $k) { id } }', { k: licenseKeys[0] }, { token: operator.token });
  await graphql(gateway.url, 'query ($k: String!) { box(licenseKey: $k) { id } }', { k: 12 }, { token: operator.token });
  const ws = wsClient(gateway.url, { token: operator.token });
  await new Promise((resolve, reject) => ws.subscribe({ query: '{ currentToken { name } }' }, { next: resolve, error: reject, complete: () => {} }));
  await ws.dispose();
  const badWs = wsClient(gateway.url, { connectionParams: { authorization: `Bearer ${operator.token}x` } });
  await badWs.closed;
  await revokeToken(gateway.url, operator.id);

  expect(lines.length).toBeGreaterThan(5);
  const text = lines.join('\n');
  for (const forbidden of [gateway.token, operator.token, secret, ...licenseKeys]) {
    expect(text.includes(forbidden), `logs contain ${forbidden.slice(0, 8)}…`).toBe(false);
  }
  // Parts long enough to identify a secret are not there either (the prefix shown is `fgt_` + 4 characters).
  for (const forbidden of [gateway.token, operator.token, secret]) expect(text).not.toContain(forbidden.slice(8, 30));
});

it('cut anything shaped like a token to its prefix, and redact credential fields, whoever logs them', () => {
  const { log, lines: captured } = capturedLogger('info');
  const token = 'fgt_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde';
  const secret = 'fgi_ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210_-edcba';
  log.info({ url: `/DeviceStatus/${secret}`, headers: { authorization: `Bearer ${token}` }, connectionParams: { token } }, `asked with ${token}`);
  expect(captured).toHaveLength(1);
  const line = JSON.parse(captured[0]!);
  expect(line).toMatchObject({ url: '/DeviceStatus/fgi_ZyXw…', headers: { authorization: '[redacted]' }, connectionParams: '[redacted]', msg: 'asked with fgt_AbCd…' });
});
