import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capturedLogger } from '../helpers/log-capture';
import { startFakeBox, type FakeBox } from '../helpers/fake-box';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { wsClient, wsSubscribe } from '../helpers/subscriptions';
import { createToken } from '../helpers/tokens';

// What a role may read is decided on the type and the value, not on the field leading there: every
// path a viewer has to the config audit trail, raw reports, API tokens and camera credentials.

const PASSWORD = 'Hunter2';
const CAMERA_URL = `rtsp://admin:${PASSWORD}@10.0.0.9/live`;
const SNAPSHOT_URL = 'http://10.0.0.10/snap.jpg?user=admin&password=s3cret&channel=1';
const NAME_URL = 'rtsp://root:Zebra9@10.0.0.11/main';
const MONITOR_URL = 'http://gw.example:8080/DeviceStatus?token=abc123';
/** What leaks a credential if it appears in anything a viewer gets. */
const SECRETS = [PASSWORD, 's3cret', 'Zebra9', 'abc123', 'admin:', 'root:'];

const { log, lines } = capturedLogger('trace');

let gateway: TestGateway;
let box: FakeBox;
const tokens = { viewer: '', operator: '' };
let boxId = '';
let changeId = '';
let viewerTokenId = '';
const deviceIds: Record<string, string> = {};

type Role = keyof typeof tokens;
const ask = async (role: Role, query: string, variables?: Record<string, unknown>) =>
  (await graphql<any, unknown>(gateway.url, query, variables, { token: tokens[role] })).body;
const errorsOf = (body: { errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[] }) =>
  (body.errors ?? []).map(({ message, path, extensions }) => ({ message, path, code: extensions?.code }));
const expectNoSecret = (value: unknown) => {
  const text = JSON.stringify(value);
  for (const secret of SECRETS) expect(text, `"${secret}" in ${text}`).not.toContain(secret);
};

const DEVICES = [
  // No media_device_id: the vendor marks it optional, and the URL becomes the device's id.
  { media_device_ip: '10.0.0.9', media_device_status: 'online', media_device_type: 'rtsp', media_device_url: CAMERA_URL },
  { media_device_id: 'cam-2', media_device_name: 'lobby', media_device_ip: '10.0.0.10', media_device_status: 'online', media_device_type: 'photo', media_device_url: SNAPSHOT_URL },
  { media_device_id: 'cam-3', media_device_name: NAME_URL, media_device_status: 'offline', media_device_type: 'rtsp', media_device_url: NAME_URL },
];

beforeAll(async () => {
  gateway = await startGateway({}, undefined, { log });
  box = await startFakeBox();
  tokens.viewer = (await createToken(gateway.url, 'viewer', 'authz viewer')).token;
  tokens.operator = (await createToken(gateway.url, 'operator', 'authz operator')).token;
  const registered = await ask(
    'operator',
    'mutation ($a: String, $p: Int) { registerBox(licenseKey: "AUTHZ-0001", address: $a, apiPort: $p) { ... on RegisterBoxSuccess { box { id } } } }',
    { a: box.host, p: box.port },
  );
  boxId = registered.data.registerBox.box.id;
  expect((await postReport(gateway.url, { mq_license_key: 'AUTHZ-0001', media_devices: DEVICES })).status).toBe(200);
  const configured = await ask(
    'operator',
    'mutation ($input: ConfigureBoxInput!) { configureBox(input: $input) { __typename ... on ConfigureBoxSuccess { change { id } } } }',
    { input: { boxId, monitorUrl: MONITOR_URL } },
  );
  expect(configured.data.configureBox.__typename).toBe('ConfigureBoxSuccess');
  changeId = configured.data.configureBox.change.id;
  const devices = await ask('operator', '{ devices(first: 10) { nodes { id externalId } } }');
  for (const { id, externalId } of devices.data.devices.nodes) deviceIds[externalId] = id;
  viewerTokenId = (await ask('viewer', '{ currentToken { id } }')).data.currentToken.id;
});
afterAll(async () => {
  await box?.close();
  await gateway?.close();
});

const forbidden = (type: string, role: string, path: (string | number)[]) => ({
  message: `${type} needs the ${role} role; token "authz viewer" has viewer.`,
  path,
  code: 'FORBIDDEN',
});

describe('BoxConfigChange is the operator’s, however it is reached', () => {
  const CHANGE_FIELDS = 'id requestedBy request target response outcome';

  it('node(id:) answers null and FORBIDDEN to a viewer, for any selection, __typename included', async () => {
    for (const selection of [`... on BoxConfigChange { ${CHANGE_FIELDS} }`, '__typename', 'id']) {
      const body = await ask('viewer', `query ($id: ID!) { node(id: $id) { ${selection} } }`, { id: changeId });
      expect(body).toEqual({ data: { node: null }, errors: [expect.anything()] });
      expect(errorsOf(body)).toEqual([forbidden('BoxConfigChange', 'operator', ['node'])]);
    }
  });

  it('nodes(ids:) answers null for it and FORBIDDEN, and still the box next to it', async () => {
    const body = await ask('viewer', `query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on BoxConfigChange { ${CHANGE_FIELDS} } } }`, {
      ids: [boxId, changeId],
    });
    expect(body.data.nodes).toEqual([{ __typename: 'Box', id: boxId }, null]);
    expect(errorsOf(body)).toEqual([forbidden('BoxConfigChange', 'operator', ['nodes', 1])]);
  });

  it('enumerating sequential ids tells a viewer nothing: an existing change and a missing one answer alike', async () => {
    const answer = async (id: string) => ask('viewer', `query ($id: ID!) { node(id: $id) { __typename } }`, { id });
    const missing = await answer(Buffer.from('BoxConfigChange:999').toString('base64'));
    expect(missing).toEqual(await answer(changeId));
    expect(errorsOf(missing)).toEqual([forbidden('BoxConfigChange', 'operator', ['node'])]);
  });

  it('Box.configChanges stays FORBIDDEN to a viewer, reached through box, node and boxes', async () => {
    for (const [query, path] of [
      ['query ($id: ID!) { box(id: $id) { configChanges(first: 5) { nodes { id target } } } }', ['box', 'configChanges']],
      ['query ($id: ID!) { node(id: $id) { ... on Box { configChanges(first: 5) { totalCount } } } }', ['node', 'configChanges']],
      ['{ boxes(first: 5) { nodes { configChanges(first: 5) { totalCount } } } }', ['boxes', 'nodes', 0, 'configChanges']],
    ] as const) {
      const body = await ask('viewer', query, { id: boxId });
      expect(errorsOf(body)).toEqual([forbidden('Box.configChanges', 'operator', [...path])]);
      expectNoSecret(body);
    }
  });

  it('an operator reads it everywhere, with the request and the box’s answer', async () => {
    const byNode = await ask('operator', `query ($id: ID!) { node(id: $id) { ... on BoxConfigChange { ${CHANGE_FIELDS} } } }`, { id: changeId });
    expect(byNode.errors).toBeUndefined();
    expect(byNode.data.node).toMatchObject({ id: changeId, requestedBy: expect.stringContaining('authz operator'), outcome: 'APPLIED' });
    expect(JSON.stringify(byNode.data.node.request)).toContain(MONITOR_URL);
    const byList = await ask('operator', `query ($id: ID!) { box(id: $id) { configChanges(first: 5) { nodes { ${CHANGE_FIELDS} } } } }`, { id: boxId });
    expect(byList.data.box.configChanges.nodes).toEqual([byNode.data.node]);
    const byNodes = await ask('operator', `query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: [changeId] });
    expect(byNodes).toEqual({ data: { nodes: [{ id: changeId }] } });
  });
});

describe('Box.lastReport (the raw body) is the operator’s, however it is reached', () => {
  it('FORBIDDEN to a viewer through box, node, nodes, boxes and devices.box', async () => {
    for (const [query, path] of [
      ['query ($id: ID!) { box(id: $id) { lastReport { body } } }', ['box', 'lastReport']],
      ['query ($id: ID!) { node(id: $id) { ... on Box { lastReport { body } } } }', ['node', 'lastReport']],
      ['query ($id: ID!) { nodes(ids: [$id]) { ... on Box { lastReport { body } } } }', ['nodes', 0, 'lastReport']],
      ['{ boxes(first: 1) { nodes { lastReport { body } } } }', ['boxes', 'nodes', 0, 'lastReport']],
      ['{ devices(first: 1) { nodes { box { lastReport { body } } } } }', ['devices', 'nodes', 0, 'box', 'lastReport']],
    ] as const) {
      const body = await ask('viewer', query, { id: boxId });
      expect(errorsOf(body)).toEqual([forbidden('Box.lastReport', 'operator', [...path])]);
      expectNoSecret(body);
    }
  });

  it('an operator reads the body as sent', async () => {
    const body = await ask('operator', 'query ($id: ID!) { node(id: $id) { ... on Box { lastReport { body } } } }', { id: boxId });
    expect(body.data.node.lastReport.body).toContain(CAMERA_URL);
  });
});

describe('camera credentials reach no viewer, whatever holds them', () => {
  const DEVICE_FIELDS = 'id externalId name ip permissionId';
  const MASKED = {
    [CAMERA_URL]: { externalId: 'rtsp://***@10.0.0.9/live', name: null, ip: '10.0.0.9' },
    'cam-2': { externalId: 'cam-2', name: 'lobby', ip: '10.0.0.10' },
    'cam-3': { externalId: 'cam-3', name: 'rtsp://***@10.0.0.11/main', ip: null },
  };

  it('a device’s id never encodes its URL', () => {
    for (const id of Object.values(deviceIds)) expect(Buffer.from(id, 'base64').toString()).toMatch(/^Device:\d+$/);
  });

  it('externalId and name are masked in every list and lookup; url stays FORBIDDEN', async () => {
    const id = deviceIds[CAMERA_URL];
    const paths = [
      ['{ devices(first: 10) { nodes { $FIELDS } } }', (d: any) => d.devices.nodes],
      ['query ($box: ID!) { box(id: $box) { devices(first: 10) { edges { node { $FIELDS } } } } }', (d: any) => d.box.devices.edges.map((e: any) => e.node)],
      ['query ($id: ID!) { device(id: $id) { $FIELDS } }', (d: any) => [d.device]],
      ['query ($id: ID!) { node(id: $id) { ... on Device { $FIELDS } } }', (d: any) => [d.node]],
      ['query ($id: ID!) { nodes(ids: [$id]) { ... on Device { $FIELDS } } }', (d: any) => d.nodes],
      ['{ statusEvents(first: 10, filter: { subject: DEVICE }) { nodes { device { $FIELDS } } } }', (d: any) => d.statusEvents.nodes.map((n: any) => n.device)],
      ['{ fleetSummary { perBox(first: 5) { nodes { devices(first: 10) { nodes { $FIELDS } } } } } }', (d: any) => d.fleetSummary.perBox.nodes[0].devices.nodes],
    ] as const;
    for (const [query, devicesOf] of paths) {
      const text = query.replace('$FIELDS', DEVICE_FIELDS);
      const viewer = await ask('viewer', text, { id, box: boxId });
      expect(viewer.errors, `${query}: ${JSON.stringify(viewer.errors)}`).toBeUndefined();
      expectNoSecret(viewer);
      for (const device of devicesOf(viewer.data)) {
        const external = Object.entries(deviceIds).find(([, deviceId]) => deviceId === device.id)![0];
        expect(device).toMatchObject(MASKED[external as keyof typeof MASKED]);
      }
      const operator = await ask('operator', text, { id, box: boxId });
      expect(JSON.stringify(operator.data)).toContain(CAMERA_URL);
    }
    const url = await ask('viewer', 'query ($id: ID!) { node(id: $id) { ... on Device { externalId url } } }', { id });
    expect(url.data.node).toEqual({ externalId: 'rtsp://***@10.0.0.9/live', url: null });
    expect(errorsOf(url)).toEqual([forbidden('Device.url', 'operator', ['node', 'url'])]);
  });

  it('the operator sees every value as reported', async () => {
    const body = await ask('operator', '{ devices(first: 10) { nodes { externalId name url } } }');
    expect(body.data.devices.nodes).toEqual([
      { externalId: CAMERA_URL, name: null, url: CAMERA_URL },
      { externalId: 'cam-2', name: 'lobby', url: SNAPSHOT_URL },
      { externalId: 'cam-3', name: NAME_URL, url: NAME_URL },
    ]);
  });

  it('search answers a password substring exactly as a wrong guess: no device, a count of 0', async () => {
    const search = (role: Role, text: string) =>
      ask(role, 'query ($s: String, $box: ID!) { devices(filter: { search: $s }) { totalCount nodes { id } } box(id: $box) { devices(filter: { search: $s }) { totalCount } } }', {
        s: text,
        box: boxId,
      });
    const miss = await search('viewer', 'admin:Zz');
    expect(miss.data).toEqual({ devices: { totalCount: 0, nodes: [] }, box: { devices: { totalCount: 0 } } });
    for (const guess of [`admin:${PASSWORD}`, 'admin:H', PASSWORD, 's3cret', 'password=s', 'Zebra9', 'root:Z', 'snap.jpg', '/live']) {
      expect((await search('viewer', guess)).data, guess).toEqual(miss.data);
    }
    // What a viewer is shown is searchable: the name and ip, masked.
    expect((await search('viewer', 'lobby')).data.devices.totalCount).toBe(1);
    expect((await search('viewer', '10.0.0.9')).data.devices.totalCount).toBe(1);
    expect((await search('viewer', 'rtsp://***@10.0.0.11')).data.devices.totalCount).toBe(1);
    // The operator's search still matches URLs.
    expect((await search('operator', `admin:${PASSWORD}`)).data.devices.totalCount).toBe(1);
    expect((await search('operator', 'password=s3')).data.devices.totalCount).toBe(1);
  });

  it('ordering by name sorts, and cursors hold, the masked names only; a forged cursor cannot test a guess', async () => {
    const order = '(first: 10, orderBy: { field: NAME, direction: DESC }) { edges { cursor node { id name } } }';
    const viewer = await ask('viewer', `{ devices${order} }`);
    expect(viewer.data.devices.edges.map((e: any) => e.node.name)).toEqual(['rtsp://***@10.0.0.11/main', 'lobby', null]);
    for (const { cursor } of viewer.data.devices.edges) expectNoSecret(Buffer.from(cursor, 'base64url').toString());
    const forged = (name: string) => Buffer.from(JSON.stringify(['Device:NAME', name, 0])).toString('base64url');
    const after = async (name: string) =>
      (await ask('viewer', `query ($a: String) { devices(first: 10, after: $a, orderBy: { field: NAME }) { totalCount nodes { id } } }`, { a: forged(name) })).data;
    expect(await after('rtsp://root:Zebra8')).toEqual(await after('rtsp://root:Zebra9~'));
    const operator = await ask('operator', `{ devices${order} }`);
    expect(operator.data.devices.edges[0].node.name).toBe(NAME_URL);
  });

  it('Box.monitorUrl shows a viewer the address without its credentials', async () => {
    const viewer = await ask('viewer', 'query ($id: ID!) { box(id: $id) { monitorUrl } }', { id: boxId });
    expect(viewer.data.box.monitorUrl).toBe('http://gw.example:8080/DeviceStatus?token=***');
    const operator = await ask('operator', 'query ($id: ID!) { box(id: $id) { monitorUrl } }', { id: boxId });
    expect(operator.data.box.monitorUrl).toBe(MONITOR_URL);
  });

  it('an older box’s own details are masked for a viewer', async () => {
    const report = {
      dev_sno: 'AUTHZ-OLD-1',
      gateway_name: 'gw rtsp://admin:Hunter2@10.0.0.20/x',
      gateway_ext_data: { sw_version: '1.0', note: 'http://10.0.0.20/api?token=abc123' },
      sub_devices: [{ ep_ip: '10.0.0.21', ep_status: 'online', ep_url: 'rtsp://admin:Hunter2@10.0.0.21/live' }],
    };
    expect((await postReport(gateway.url, report)).status).toBe(200);
    const query = '{ box(licenseKey: "AUTHZ-OLD-1") { name gateway { name raw } devices { nodes { externalId } } } }';
    const viewer = await ask('viewer', query);
    expect(viewer.errors).toBeUndefined();
    expectNoSecret(viewer);
    expect(viewer.data.box.devices.nodes).toEqual([{ externalId: 'AUTHZ-OLD-1__rtsp://***@10.0.0.21/live' }]);
    expect(viewer.data.box.gateway.raw.gateway_ext_data.note).toBe('http://10.0.0.20/api?token=***');
    expect(viewer.data.box.name).toBe('gw rtsp://***@10.0.0.20/x');
    const operator = await ask('operator', query);
    expect(operator.data.box.devices.nodes).toEqual([{ externalId: 'AUTHZ-OLD-1__rtsp://admin:Hunter2@10.0.0.21/live' }]);
    expect(operator.data.box.name).toBe(report.gateway_name);
    // Boxes are searched and sorted by the name as each role is shown it.
    const boxes = (role: Role, search: string) =>
      ask(role, 'query ($s: String) { boxes(filter: { search: $s }, orderBy: { field: NAME }) { totalCount edges { cursor node { name } } } }', { s: search });
    expect((await boxes('viewer', 'admin:Hunter2')).data.boxes).toEqual({ totalCount: 0, edges: [] });
    expect((await boxes('operator', 'admin:Hunter2')).data.boxes.totalCount).toBe(1);
    const shown = await boxes('viewer', 'gw rtsp://***@');
    expect(shown.data.boxes.totalCount).toBe(1);
    expectNoSecret(Buffer.from(shown.data.boxes.edges[0].cursor, 'base64url').toString());
  });

  it('the response cache never serves an operator’s answer to a viewer', async () => {
    const query = '{ devices(first: 10, filter: { search: "Hunter2" }) { totalCount nodes { externalId name } } }';
    const operator = await ask('operator', query);
    expect(operator.data.devices.totalCount).toBeGreaterThan(0);
    const viewer = await ask('viewer', query);
    expect(viewer).toEqual({ data: { devices: { totalCount: 0, nodes: [] } } });
    const plain = '{ devices(first: 10) { nodes { externalId } } }';
    expect(JSON.stringify(await ask('operator', plain))).toContain(CAMERA_URL);
    expectNoSecret(await ask('viewer', plain));
  });

  it('subscriptions deliver a viewer the masked device, the operator the reported one', async () => {
    const query = 'subscription { deviceStatusChanged { device { id externalId name } } }';
    const viewerClient = wsClient(gateway.url, { token: tokens.viewer });
    const operatorClient = wsClient(gateway.url, { token: tokens.operator });
    const viewer = wsSubscribe(viewerClient, query);
    const operator = wsSubscribe(operatorClient, query);
    const withUrl = `rtsp://admin:${PASSWORD}@10.0.0.30/live`;
    const report = { mq_license_key: 'AUTHZ-LIVE', media_devices: [{ media_device_status: 'online', media_device_url: withUrl }] };
    // A subscription starts when the gateway has it: report (toggling the status) until both saw an event, within a deadline.
    const events = new Map<typeof viewer, any>();
    const deadline = Date.now() + 10_000;
    for (let online = true; events.size < 2; online = !online) {
      expect(Date.now()).toBeLessThan(deadline);
      report.media_devices[0]!.media_device_status = online ? 'online' : 'offline';
      await postReport(gateway.url, report);
      for (const sub of [viewer, operator]) if (!events.has(sub)) await sub.next(250).then((event) => events.set(sub, event), () => {});
    }
    const seen = events.get(viewer);
    expectNoSecret(seen);
    expect(seen.data.deviceStatusChanged.device.externalId).toBe('rtsp://***@10.0.0.30/live');
    expect(events.get(operator).data.deviceStatusChanged.device.externalId).toBe(withUrl);
    viewer.close();
    operator.close();
    await viewerClient.dispose();
    await operatorClient.dispose();
  });

  it('logs hold no camera credential', () => {
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) for (const secret of [PASSWORD, 's3cret', 'Zebra9']) expect(line).not.toContain(secret);
  });
});

describe('ApiToken: a token reads itself; other tokens are the admin’s', () => {
  it('currentToken answers a viewer its own token', async () => {
    expect(await ask('viewer', '{ currentToken { id name role } }')).toEqual({ data: { currentToken: { id: viewerTokenId, name: 'authz viewer', role: 'VIEWER' } } });
  });
});
