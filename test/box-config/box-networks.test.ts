import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BoxNetworks, DEFAULT_BOX_NETWORKS, normaliseAddress, parseNetwork } from '../../src/box-api/box-networks';
import { setConfigs } from '../../src/box-api/client';
import { ConfigError, loadConfig } from '../../src/config';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { auditRows, BoxConfigQuery, boxRow, closeFakeBoxes, configure, fakeBox, RegisterBoxMutation } from './operations';

// The box API proxy reaches only boxes: an address is checked where it is connected to, against
// BOX_NETWORKS and the classes that are never a box, and a refusal is answered and audited.

afterEach(closeFakeBoxes);

let registered = 0;
async function registerAt(gateway: TestGateway, address: string, apiPort: number): Promise<string> {
  const { registerBox } = await query(gateway.url, RegisterBoxMutation, { licenseKey: `NET-${process.pid}-${++registered}`, address, apiPort });
  expect(registerBox.__typename).toBe('RegisterBoxSuccess');
  return (registerBox as { box: { id: string } }).box.id;
}

/** configureBox on a box at `address:port` is refused with `refusal`, audited, and changes nothing. */
async function expectRefused(gateway: TestGateway, address: string, port: number, refusal: string, refusedAddress: string) {
  const id = await registerAt(gateway, address, port);
  const target = `${address.includes(':') ? `[${address}]` : address}:${port}`;

  const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 15, monitorUrl: 'http://10.0.0.5:4000/DeviceStatus' });

  expect(result).toMatchObject({
    __typename: 'BoxAddressRefused',
    refusal,
    address: refusedAddress,
    target,
    change: { outcome: 'REFUSED', target, httpStatus: null, response: null, errorCode: `ADDRESS_${refusal}`, box: { id } },
  });
  const { message } = result as { message: string };
  expect(message).toMatch(new RegExp(`^The gateway does not call ${target.replace(/[[\]().]/g, '\\$&')}: `));
  expect(message).toContain('Nothing was sent.');
  expect(message).toContain('updateBox');
  const rows = await auditRows(gateway, id);
  expect(rows).toEqual([
    expect.objectContaining({ outcome: 'refused', target, http_status: null, response: null, error_code: `ADDRESS_${refusal}`, request: expect.any(Object) }),
  ]);
  expect(rows[0]!.error_message).toContain(refusedAddress);
  expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: null, report_period_seconds: null });

  const { boxConfig } = await query(gateway.url, BoxConfigQuery, { boxId: id });
  expect(boxConfig).toMatchObject({ __typename: 'BoxAddressRefused', refusal, address: refusedAddress, target });
  return { id, message };
}

describe('with the default box networks (loopback and private ranges)', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ boxApiTimeoutMs: 1_500 });
  });
  afterAll(() => gateway?.close());

  it('the gateway’s own HTTP port, by address or by name, is refused', async () => {
    const port = Number(new URL(gateway.url).port);
    await expectRefused(gateway, '127.0.0.1', port, 'GATEWAY_PORT', '127.0.0.1');
    await expectRefused(gateway, 'localhost', port, 'GATEWAY_PORT', '127.0.0.1');
    await expectRefused(gateway, '::ffff:127.0.0.1', port, 'GATEWAY_PORT', '127.0.0.1');
    await expectRefused(gateway, '127.0.0.2', port, 'GATEWAY_PORT', '127.0.0.2');
  });

  it('its Postgres port is refused', async () => {
    const port = Number(new URL(gateway.app.databaseUrl).port);
    await expectRefused(gateway, '127.0.0.1', port, 'GATEWAY_PORT', '127.0.0.1');
  });

  it.each([
    ['cloud metadata', '169.254.169.254', 'LINK_LOCAL', '169.254.169.254'],
    ['cloud metadata as IPv4-mapped IPv6', '::ffff:169.254.169.254', 'LINK_LOCAL', '169.254.169.254'],
    ['cloud metadata in hex IPv4-mapped IPv6', '::ffff:a9fe:a9fe', 'LINK_LOCAL', '169.254.169.254'],
    ['IPv6 link-local', 'fe80::1', 'LINK_LOCAL', 'fe80::1'],
    ['0.0.0.0', '0.0.0.0', 'UNSPECIFIED', '0.0.0.0'],
    ['::', '::', 'UNSPECIFIED', '::'],
    ['IPv4 multicast', '224.0.0.1', 'MULTICAST', '224.0.0.1'],
    ['IPv6 multicast', 'ff02::1', 'MULTICAST', 'ff02::1'],
    ['broadcast', '255.255.255.255', 'BROADCAST', '255.255.255.255'],
    ['a public address', '8.8.8.8', 'NOT_ALLOWED', '8.8.8.8'],
  ])('%s is refused', async (_name, address, refusal, refusedAddress) => {
    await expectRefused(gateway, address, 5555, refusal, refusedAddress);
  });

  it('a box on loopback still works (the simulator and the quick start)', async () => {
    const box = await fakeBox();
    const id = await registerAt(gateway, '127.0.0.1', box.port);
    expect(await configure(gateway, { boxId: id, reportPeriodSeconds: 15 })).toMatchObject({ __typename: 'ConfigureBoxSuccess', reportPeriodSeconds: 15 });
  });
});

describe('with BOX_NETWORKS that leaves loopback out', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway({ boxApiTimeoutMs: 1_500, boxNetworks: ['10.0.0.0/8', 'fd00::/8'] });
  });
  afterAll(() => gateway?.close());

  it.each([
    ['127.0.0.1', '127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1', '127.0.0.1'],
    ['localhost (a name resolving to a refused address)', '127.0.0.1', 'localhost'],
  ])('a box at %s is never called', async (_name, refusedAddress, address) => {
    const box = await fakeBox();
    const { message } = await expectRefused(gateway, address, box.port, 'NOT_ALLOWED', refusedAddress);
    expect(message).toContain('BOX_NETWORKS: 10.0.0.0/8, fd00::/8');
    expect(box.requests).toHaveLength(0);
  });

  it('::1 is never called', async () => {
    const box = await fakeBox({ host: '::1' });
    await expectRefused(gateway, '::1', box.port, 'NOT_ALLOWED', '::1');
    expect(box.requests).toHaveLength(0);
  });
});

describe('the client checks the address it connects to', () => {
  it('a name is checked on what it resolves to; only allowed addresses are connected to', async () => {
    const box = await fakeBox();
    const onlyThisHost = new BoxNetworks(['127.0.0.1/32']);
    expect((await setConfigs({ address: 'localhost', port: box.port }, { A: 1 }, { networks: onlyThisHost })).kind).toBe('applied');
    const elsewhere = new BoxNetworks(['10.0.0.0/8']);
    expect(await setConfigs({ address: 'localhost', port: box.port }, { A: 2 }, { networks: elsewhere })).toMatchObject({
      kind: 'address_refused',
      refusal: 'not_allowed',
      address: '127.0.0.1',
    });
    expect(box.requests).toHaveLength(1);
  });

  it('refuses the gateway’s ports only on this machine’s addresses, and reads them at each check', () => {
    const ports = new Set<number>();
    const networks = new BoxNetworks(DEFAULT_BOX_NETWORKS, () => ports);
    expect(networks.check('127.0.0.1', 4000)).toBeNull();
    ports.add(4000);
    expect(networks.check('127.0.0.1', 4000)?.refusal).toBe('gateway_port');
    expect(networks.check('::1', 4000)?.refusal).toBe('gateway_port');
    expect(networks.check('10.1.2.3', 4000)).toBeNull();
    expect(networks.check('127.0.0.1', 4001)).toBeNull();
  });

  it('always-refused classes win over BOX_NETWORKS', () => {
    const everything = new BoxNetworks(['0.0.0.0/0', '::/0']);
    expect(everything.check('169.254.169.254', 80)?.refusal).toBe('link_local');
    expect(everything.check('0.0.0.0', 80)?.refusal).toBe('unspecified');
    expect(everything.check('239.1.1.1', 80)?.refusal).toBe('multicast');
    expect(everything.check('fe80::1%eth0', 80)?.refusal).toBe('link_local');
    expect(everything.check('8.8.8.8', 80)).toBeNull();
  });

  it('normalises IPv4-mapped and IPv4-compatible IPv6 to the IPv4 address', () => {
    expect(normaliseAddress('::ffff:127.0.0.1')).toEqual({ address: '127.0.0.1', family: 'ipv4' });
    expect(normaliseAddress('0:0:0:0:0:ffff:7f00:1')).toEqual({ address: '127.0.0.1', family: 'ipv4' });
    expect(normaliseAddress('::10.0.0.1')).toEqual({ address: '10.0.0.1', family: 'ipv4' });
    expect(normaliseAddress('::1')).toEqual({ address: '::1', family: 'ipv6' });
    expect(normaliseAddress('fd00::1')).toEqual({ address: 'fd00::1', family: 'ipv6' });
  });
});

describe('BOX_NETWORKS', () => {
  it('defaults to loopback and the private ranges', () => {
    expect(loadConfig({}).boxNetworks).toEqual(['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']);
  });

  it('takes CIDRs and single addresses, comma- or space-separated', () => {
    expect(loadConfig({ BOX_NETWORKS: '10.20.0.0/16, 192.168.150.1  fd00::/8' }).boxNetworks).toEqual(['10.20.0.0/16', '192.168.150.1', 'fd00::/8']);
    expect(parseNetwork('192.168.150.1')).toEqual({ address: '192.168.150.1', prefix: 32, family: 'ipv4' });
  });

  it.each(['10.0.0.0/33', 'fd00::/129', 'gateway.local', '10.0.0.0/8/1', '10.0.0/8', '10.0.0.0/x'])('refuses %s', (value) => {
    expect(() => loadConfig({ BOX_NETWORKS: value })).toThrow(ConfigError);
  });
});
