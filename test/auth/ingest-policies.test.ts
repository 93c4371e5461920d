import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeBox, type FakeBox } from '../helpers/fake-box';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { storedState } from '../helpers/snapshot';

// INGEST_POLICY: open (any licence key), registered (only boxes an operator registered), token (only
// over the secret URL pointBoxAtGateway gave that box). Each refusal has its exact answer, and stores nothing.

const URL_KEY = 'MEDIA_DEVICE_MONITOR_URL';
const report = (key: string, status = 'online') => ({ mq_license_key: key, media_devices: [{ media_device_id: 'cam', media_device_status: status }] });
const refusal = (status: number, code: string, message: string, path: string | null = null) => ({ status, json: { error: { code, message, path } } });

const boxes: FakeBox[] = [];
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.close()));
});

async function register(gateway: TestGateway, licenseKey: string, box?: FakeBox): Promise<string> {
  const response = await graphql<any, unknown>(
    gateway.url,
    'mutation ($k: String!, $a: String, $p: Int) { registerBox(licenseKey: $k, address: $a, apiPort: $p) { __typename ... on RegisterBoxSuccess { box { id } } } }',
    { k: licenseKey, a: box?.host ?? null, p: box?.port ?? null },
  );
  expect(response.body.data?.registerBox.__typename).toBe('RegisterBoxSuccess');
  return response.body.data.registerBox.box.id;
}

async function pointAtGateway(gateway: TestGateway, boxId: string) {
  const response = await graphql<any, unknown>(
    gateway.url,
    'mutation ($id: ID!) { pointBoxAtGateway(boxId: $id) { __typename ... on ConfigureBoxSuccess { monitorUrl box { monitorUrl } } ... on Error { message } } }',
    { id: boxId },
  );
  return response.body.data!.pointBoxAtGateway;
}

const stored = (gateway: TestGateway) => storedState(gateway.sql);

describe('open (the default)', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(() => gateway?.close());

  it('takes any licence key and registers the box by its first report', async () => {
    expect(await postReport(gateway.url, report('OPEN-NEW-01'))).toMatchObject({ status: 200, json: { licenseKey: 'OPEN-NEW-01', changes: 2 } });
  });

  it('still checks a secret in the path: a forged one is refused and nothing is stored', async () => {
    const before = await stored(gateway);
    const forged = await postReport(gateway.url, report('OPEN-NEW-02'), { path: '/DeviceStatus/fgi_forgedforgedforgedforgedforgedforgedforged' });
    expect(forged).toMatchObject(
      refusal(403, 'INVALID_INGEST_TOKEN', 'The secret in this URL is not valid (unknown, replaced, or its box was removed); run pointBoxAtGateway for this box again.'),
    );
    expect(await stored(gateway)).toEqual(before);
  });
});

describe('registered', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ ingestPolicy: 'registered' });
  });
  afterAll(() => gateway?.close());

  it('refuses an unknown licence key with 403, naming the field, masking the key, storing nothing', async () => {
    const before = await stored(gateway);
    expect(await postReport(gateway.url, report('UNREGISTERED-1'))).toMatchObject(
      refusal(403, 'UNKNOWN_BOX', 'Licence key UNRE…-1 is not registered; register the box (registerBox) before it reports.', 'mq_license_key'),
    );
    expect(await postReport(gateway.url, { dev_sno: 'UNREGISTERED-2', sub_devices: [] })).toMatchObject(
      refusal(403, 'UNKNOWN_BOX', 'Licence key UNRE…-2 is not registered; register the box (registerBox) before it reports.', 'dev_sno'),
    );
    expect(await stored(gateway)).toEqual(before);
  });

  it('takes a registered box’s reports, and refuses them again once it is removed', async () => {
    const id = await register(gateway, 'REGISTERED-1');
    expect(await postReport(gateway.url, report('REGISTERED-1'))).toMatchObject({ status: 200, json: { licenseKey: 'REGISTERED-1', changes: 2 } });
    const removed = await graphql<any, unknown>(gateway.url, 'mutation ($id: ID!) { removeBox(boxId: $id) { __typename } }', { id });
    expect(removed.body.data?.removeBox.__typename).toBe('RemoveBoxSuccess');
    const before = await stored(gateway);
    expect(await postReport(gateway.url, report('REGISTERED-1', 'offline'))).toMatchObject({ status: 403, json: { error: { code: 'UNKNOWN_BOX' } } });
    expect(await stored(gateway)).toEqual(before);
  });

  it('refuses the unknown box alone when reports of known and unknown boxes arrive together', async () => {
    await register(gateway, 'REGISTERED-2');
    const answers = await Promise.all([
      postReport(gateway.url, report('REGISTERED-2')),
      postReport(gateway.url, report('UNREGISTERED-3')),
      postReport(gateway.url, report('REGISTERED-2', 'offline')),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 403, 200]);
    const { rows } = await gateway.sql.query(`select license_key, status from boxes where license_key like '%REGISTERED-%' and license_key not like 'REGISTERED-1' order by 1`);
    expect(rows).toEqual([{ license_key: 'REGISTERED-2', status: 'online' }]);
  });
});

describe('token', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ ingestPolicy: 'token', boxApiTimeoutMs: 1_000 });
  });
  afterAll(() => gateway?.close());

  it('refuses reports without a secret with 401 saying how to get one', async () => {
    await register(gateway, 'TOKEN-NONE');
    const before = await stored(gateway);
    for (const path of ['/DeviceStatus', '/api/device-status', '/devicestatus/']) {
      expect(await postReport(gateway.url, report('TOKEN-NONE'), { path })).toMatchObject(
        refusal(401, 'INGEST_TOKEN_REQUIRED', 'This gateway takes reports only at /DeviceStatus/<secret>; run the pointBoxAtGateway mutation for this box to set its URL.'),
      );
    }
    expect(await stored(gateway)).toEqual(before);
  });

  it('pointBoxAtGateway gives the box a secret URL; its reports are taken over it, another box’s and forged ones are refused', async () => {
    const box = await startFakeBox();
    boxes.push(box);
    const id = await register(gateway, 'TOKEN-BOX-1', box);
    await register(gateway, 'TOKEN-BOX-2');
    const pointed = await pointAtGateway(gateway, id);
    const url = box.config[URL_KEY] as string;
    expect(url).toMatch(new RegExp(`^${gateway.url}/DeviceStatus/fgi_[A-Za-z0-9_-]{43}$`));
    expect(pointed).toEqual({ __typename: 'ConfigureBoxSuccess', monitorUrl: url, box: { monitorUrl: `${gateway.url}/DeviceStatus/fgi_…` } });
    const path = new URL(url).pathname;

    expect(await postReport(gateway.url, report('TOKEN-BOX-1'), { path })).toMatchObject({ status: 200, json: { licenseKey: 'TOKEN-BOX-1', changes: 2 } });
    // Both ingest paths, any letter case of the fixed part.
    expect((await postReport(gateway.url, report('TOKEN-BOX-1'), { path: path.replace('/DeviceStatus', '/api/device-status') })).status).toBe(200);
    expect((await postReport(gateway.url, report('TOKEN-BOX-1'), { path: path.replace('/DeviceStatus', '/devicestatus') })).status).toBe(200);

    const before = await stored(gateway);
    expect(await postReport(gateway.url, report('TOKEN-BOX-2'), { path })).toMatchObject(
      refusal(403, 'INGEST_TOKEN_MISMATCH', 'The secret in this URL belongs to box TOKE…-1, not to TOKE…-2; each box reports over its own URL.', 'mq_license_key'),
    );
    const forged = `${path.slice(0, -5)}${path.endsWith('AAAAA') ? 'BBBBB' : 'AAAAA'}`;
    expect(await postReport(gateway.url, report('TOKEN-BOX-1', 'offline'), { path: forged })).toMatchObject({ status: 403, json: { error: { code: 'INVALID_INGEST_TOKEN' } } });
    expect(await stored(gateway)).toEqual(before);

    // The secret is kept in clear nowhere in the database: not in the audit trail, not on the box row.
    const { rows } = await gateway.sql.query(`select count(*)::int as n from box_config_changes c where c::text like $1`, [`%${url.split('/').pop()}%`]);
    expect(rows[0].n).toBe(0);
    const boxRow = await gateway.sql.query(`select b::text as row from boxes b where license_key = 'TOKEN-BOX-1'`);
    expect(boxRow.rows[0].row).not.toContain(url.split('/').pop());
  });

  it('pointing the box again replaces its secret; a box that refuses the new URL keeps the old one', async () => {
    const box = await startFakeBox();
    boxes.push(box);
    const id = await register(gateway, 'TOKEN-ROTATE', box);
    await pointAtGateway(gateway, id);
    const first = new URL(box.config[URL_KEY] as string).pathname;
    await pointAtGateway(gateway, id);
    const second = new URL(box.config[URL_KEY] as string).pathname;
    expect(second).not.toBe(first);
    expect((await postReport(gateway.url, report('TOKEN-ROTATE'), { path: second })).status).toBe(200);
    expect((await postReport(gateway.url, report('TOKEN-ROTATE'), { path: first })).json.error.code).toBe('INVALID_INGEST_TOKEN');

    box.behave({ kind: 'error', error: { code: 'INVALID_ARGUMENTS', message: 'no' } });
    const refused = await pointAtGateway(gateway, id);
    expect(refused.__typename).toBe('BoxRejectedConfig');
    box.behave({ kind: 'box' });
    expect(new URL(box.config[URL_KEY] as string).pathname).toBe(second);
    expect((await postReport(gateway.url, report('TOKEN-ROTATE', 'offline'), { path: second })).status).toBe(200);
  });

  it('a removed box’s secret stops working', async () => {
    const box = await startFakeBox();
    boxes.push(box);
    const id = await register(gateway, 'TOKEN-REMOVED', box);
    await pointAtGateway(gateway, id);
    const path = new URL(box.config[URL_KEY] as string).pathname;
    expect((await postReport(gateway.url, report('TOKEN-REMOVED'), { path })).status).toBe(200);
    await graphql(gateway.url, 'mutation ($id: ID!) { removeBox(boxId: $id) { __typename } }', { id });
    expect((await postReport(gateway.url, report('TOKEN-REMOVED'), { path })).json.error.code).toBe('INVALID_INGEST_TOKEN');
  });
});

describe('configuration', () => {
  it('INGEST_POLICY, ADMIN_TOKEN and the limits are checked at start, with what to do', async () => {
    const { ConfigError, loadConfig } = await import('../../src/config');
    expect(loadConfig({}).ingestPolicy).toBe('open');
    expect(loadConfig({ INGEST_POLICY: 'TOKEN' }).ingestPolicy).toBe('token');
    expect(() => loadConfig({ INGEST_POLICY: 'closed' })).toThrow(
      'INGEST_POLICY="closed" is not one of open, registered, token; set one of them, or unset INGEST_POLICY for the default open.',
    );
    expect(() => loadConfig({ ADMIN_TOKEN: 'short' })).toThrow(
      'ADMIN_TOKEN (5 characters, not shown) is not 32 to 256 characters without spaces; make one with `npm run token -- generate`, or unset ADMIN_TOKEN and the first start prints one.',
    );
    expect(loadConfig({}).rateLimitGraphqlPerToken).toBe(100);
    expect(loadConfig({ RATE_LIMIT_GRAPHQL_PER_TOKEN: '0' }).rateLimitGraphqlPerToken).toBe(0);
    expect(() => loadConfig({ WS_MAX_CONNECTIONS_PER_TOKEN: '-1' })).toThrow(ConfigError);
  });
});
