import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { newerReport, post } from '../graphql/fleet-fixture';
import {
  auditRows,
  BoxConfigChangesQuery,
  boxRow,
  BoxVisibleQuery,
  closeFakeBoxes,
  configure,
  fakeBox,
  PointBoxAtGatewayMutation,
  RegisterBoxMutation,
  registerFakeBox,
  RemoveBoxMutation,
  unknownBoxId,
  UpdateBoxMutation,
} from './operations';

// registerBox, updateBox and removeBox through a real gateway; and PUBLIC_URL for pointBoxAtGateway.

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway({ publicUrl: 'https://fleet.example.com/gw' });
});
afterAll(() => gateway?.close());
afterEach(closeFakeBoxes);

const register = async (variables: { licenseKey: string; name?: string | null; address?: string | null; apiPort?: number | null }) =>
  (await query(gateway.url, RegisterBoxMutation, variables)).registerBox;
const update = async (variables: { boxId: string; name?: string | null; address?: string | null; apiPort?: number | null }) =>
  (await query(gateway.url, UpdateBoxMutation, variables)).updateBox;
const remove = async (boxId: string, deleteHistory?: boolean) => (await query(gateway.url, RemoveBoxMutation, { boxId, deleteHistory })).removeBox;
const idOf = (result: unknown) => (result as { box: { id: string } }).box.id;
const dbId = (id: string) => Number(Buffer.from(id, 'base64').toString('utf8').split(':')[1]);

describe('registerBox', () => {
  it('makes a box known before it reports, OFFLINE, with the address and port of its REST API', async () => {
    const result = await register({ licenseKey: 'REG-1', name: 'north gate', address: '10.1.2.3', apiPort: 6000 });
    expect(result).toEqual({
      __typename: 'RegisterBoxSuccess',
      restored: false,
      box: {
        id: expect.any(String),
        licenseKey: 'REG-1',
        name: 'north gate',
        status: 'OFFLINE',
        address: null,
        apiAddress: '10.1.2.3',
        apiPort: 6000,
        configuredApiAddress: '10.1.2.3',
        configuredApiPort: 6000,
        lastReportAt: null,
      },
    });
  });

  it('without address and port the box is called where its reports come from, on 5555', async () => {
    const result = await register({ licenseKey: 'REG-2' });
    expect(result).toMatchObject({ box: { apiAddress: null, apiPort: 5555, configuredApiAddress: null, configuredApiPort: null } });
    await post(gateway, newerReport('REG-2', [{ id: 'd1' }]));
    const { box } = await query(gateway.url, BoxConfigChangesQuery, { id: idOf(result) });
    expect(box).toMatchObject({ apiAddress: '127.0.0.1', apiPort: 5555, configuredApiAddress: null });
  });

  it('a licence key the gateway knows (registered, or from a report) is LicenseKeyTaken and changes nothing', async () => {
    const first = await register({ licenseKey: 'REG-3', address: '10.0.0.3' });
    expect(await register({ licenseKey: 'REG-3', address: '10.9.9.9' })).toEqual({
      __typename: 'LicenseKeyTaken',
      message: 'A box with licence key "REG-3" is already known; change it with updateBox.',
      licenseKey: 'REG-3',
      box: { id: idOf(first) },
    });
    expect(await boxRow(gateway, idOf(first))).toMatchObject({ api_address: '10.0.0.3' });

    const { boxId } = await post(gateway, newerReport('REG-REPORTED', [{ id: 'd1' }]));
    expect(await register({ licenseKey: 'REG-REPORTED' })).toMatchObject({ __typename: 'LicenseKeyTaken', box: { id: boxId } });
  });

  it('refuses keys, addresses and ports no box can have: InvalidBoxInput', async () => {
    expect(await register({ licenseKey: ' ', address: 'http://10.0.0.1:5555', apiPort: 0 })).toEqual({
      __typename: 'InvalidBoxInput',
      message: expect.any(String),
      problems: [
        { field: 'licenseKey', message: 'The licence key must be 1 to 256 printable characters without leading or trailing spaces, as the box reports it.' },
        { field: 'address', message: '"http://10.0.0.1:5555" is not an IP address or host name; give it without scheme, port or path.' },
        { field: 'apiPort', message: 'Port 0 is not a whole number from 1 to 65535.' },
      ],
    });
    expect(await register({ licenseKey: 'REG-4', apiPort: 70000 })).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'apiPort' }] });
    expect(await register({ licenseKey: 'REG-4', address: '127.1' })).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'address' }] });
    expect(await register({ licenseKey: 'x'.repeat(257) })).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'licenseKey' }] });
    const { rows } = await gateway.sql.query(`select count(*)::int as n from boxes where license_key = 'REG-4'`);
    expect(rows[0].n).toBe(0);
  });

  it('accepts host names and IPv6 literals', async () => {
    expect(await register({ licenseKey: 'REG-5', address: 'box-5.site.example' })).toMatchObject({ box: { apiAddress: 'box-5.site.example' } });
    expect(await register({ licenseKey: 'REG-6', address: 'fd00::19', apiPort: 5555 })).toMatchObject({ box: { apiAddress: 'fd00::19' } });
  });
});

describe('updateBox', () => {
  it('sets what is given, leaves what is left out, and clears what is null', async () => {
    const id = idOf(await register({ licenseKey: 'UPD-1', name: 'old name', address: '10.0.0.1', apiPort: 6001 }));
    expect(await update({ boxId: id, apiPort: 6002 })).toEqual({
      __typename: 'UpdateBoxSuccess',
      box: { id, name: 'old name', address: null, apiAddress: '10.0.0.1', apiPort: 6002, configuredApiAddress: '10.0.0.1', configuredApiPort: 6002 },
    });
    expect(await update({ boxId: id, name: 'new name', address: null, apiPort: null })).toEqual({
      __typename: 'UpdateBoxSuccess',
      box: { id, name: 'new name', address: null, apiAddress: null, apiPort: 5555, configuredApiAddress: null, configuredApiPort: null },
    });
  });

  it('the next configureBox calls the address and port set', async () => {
    const { boxId } = await post(gateway, newerReport('UPD-2', [{ id: 'd1' }]));
    const box = await fakeBox();
    expect(await update({ boxId, apiPort: box.port })).toMatchObject({ __typename: 'UpdateBoxSuccess', box: { apiAddress: '127.0.0.1', apiPort: box.port } });
    expect(await configure(gateway, { boxId, reportPeriodSeconds: 30 })).toMatchObject({ __typename: 'ConfigureBoxSuccess', reportPeriodSeconds: 30 });
    expect(box.requests).toHaveLength(1);
  });

  it('refuses an unknown box and values no box can have', async () => {
    expect(await update({ boxId: unknownBoxId, name: 'x' })).toEqual({
      __typename: 'InvalidBoxInput',
      message: 'There is no box with this id: it never reported, was never registered, or was removed.',
      problems: [{ field: 'boxId', message: 'There is no box with this id: it never reported, was never registered, or was removed.' }],
    });
    const id = idOf(await register({ licenseKey: 'UPD-3' }));
    expect(await update({ boxId: id, address: 'not an address', apiPort: -1 })).toMatchObject({
      __typename: 'InvalidBoxInput',
      problems: [{ field: 'address' }, { field: 'apiPort' }],
    });
    expect(await update({ boxId: 'garbage', apiPort: 1 })).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'boxId' }] });
  });
});

describe('removeBox', () => {
  it('hides the box and keeps its history; registerBox with its key lists it again', async () => {
    const box = await fakeBox();
    const { boxId: id } = await post(gateway, newerReport('DEL-SOFT', [{ id: 'd1' }, { id: 'd2' }]));
    await update({ boxId: id, apiPort: box.port });
    await configure(gateway, { boxId: id, reportPeriodSeconds: 40 });

    expect(await remove(id)).toEqual({ __typename: 'RemoveBoxSuccess', removedBoxId: id, licenseKey: 'DEL-SOFT', historyDeleted: false });
    expect((await query(gateway.url, BoxVisibleQuery, { id })).box).toBeNull();
    expect(await configure(gateway, { boxId: id, reportPeriodSeconds: 5 })).toMatchObject({ __typename: 'InvalidConfig', problems: [{ field: 'boxId' }] });
    expect(await remove(id)).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'boxId' }] });
    // Everything is still stored, and the removal is in the box's history.
    expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: 40, removed_at: expect.any(Date) });
    expect(await auditRows(gateway, id)).toHaveLength(1);
    const events = await gateway.sql.query('select from_status, to_status from status_events where box_id = $1 and device_id is null order by id', [dbId(id)]);
    expect(events.rows).toEqual([
      { from_status: null, to_status: 'online' },
      { from_status: 'online', to_status: 'removed' },
    ]);

    const restored = await register({ licenseKey: 'DEL-SOFT', address: '127.0.0.1', apiPort: box.port });
    expect(restored).toMatchObject({ __typename: 'RegisterBoxSuccess', restored: true, box: { id, licenseKey: 'DEL-SOFT', status: 'ONLINE' } });
    const { box: read } = await query(gateway.url, BoxConfigChangesQuery, { id });
    expect(read).toMatchObject({ configuredReportPeriodSeconds: 40, configChanges: { totalCount: 1 } });
    const after = await gateway.sql.query('select from_status, to_status from status_events where box_id = $1 and device_id is null order by id', [dbId(id)]);
    expect(after.rows.at(-1)).toEqual({ from_status: 'removed', to_status: 'online' });
  });

  it('with deleteHistory deletes the box with its devices, history and audit trail', async () => {
    const box = await fakeBox();
    const { boxId: id } = await post(gateway, newerReport('DEL-HARD', [{ id: 'd1' }]));
    await update({ boxId: id, apiPort: box.port });
    await configure(gateway, { boxId: id, reportPeriodSeconds: 40 });
    const n = dbId(id);

    expect(await remove(id, true)).toEqual({ __typename: 'RemoveBoxSuccess', removedBoxId: id, licenseKey: 'DEL-HARD', historyDeleted: true });
    const { rows } = await gateway.sql.query(
      `select (select count(*) from boxes where id = $1)::int as boxes, (select count(*) from devices where box_id = $1)::int as devices,
              (select count(*) from status_events where box_id = $1)::int as events, (select count(*) from box_config_changes where box_id = $1)::int as changes`,
      [n],
    );
    expect(rows[0]).toEqual({ boxes: 0, devices: 0, events: 0, changes: 0 });
    expect(await remove(id, true)).toMatchObject({ __typename: 'InvalidBoxInput' });
  });

  it('a box removed earlier can still have its history deleted', async () => {
    const id = idOf(await register({ licenseKey: 'DEL-LATER' }));
    await remove(id);
    expect(await remove(id, true)).toMatchObject({ __typename: 'RemoveBoxSuccess', historyDeleted: true });
    expect(await boxRow(gateway, id)).toBeUndefined();
  });
});

describe('PUBLIC_URL', () => {
  it('pointBoxAtGateway sets PUBLIC_URL + /DeviceStatus', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    const { pointBoxAtGateway } = await query(gateway.url, PointBoxAtGatewayMutation, { boxId: id });
    expect(pointBoxAtGateway).toMatchObject({ __typename: 'ConfigureBoxSuccess', monitorUrl: 'https://fleet.example.com/gw/DeviceStatus' });
    expect(box.config.MEDIA_DEVICE_MONITOR_URL).toBe('https://fleet.example.com/gw/DeviceStatus');
    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: 'https://fleet.example.com/gw/DeviceStatus' });
  });

  it('is read from the environment, checked, and kept without a trailing slash', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://fleet.example.com/' }).publicUrl).toBe('https://fleet.example.com');
    expect(loadConfig({ PUBLIC_URL: 'http://10.0.0.2:4000/gw/' }).publicUrl).toBe('http://10.0.0.2:4000/gw');
    expect(loadConfig({}).publicUrl).toBeUndefined();
    for (const bad of ['fleet.example.com', 'ftp://fleet.example.com', 'https://user:pw@fleet.example.com', 'https://fleet.example.com/?x=1']) {
      expect(() => loadConfig({ PUBLIC_URL: bad })).toThrow(ConfigError);
    }
    expect(loadConfig({}).boxApiTimeoutMs).toBe(5000);
    expect(loadConfig({ BOX_API_TIMEOUT_MS: '750' }).boxApiTimeoutMs).toBe(750);
    expect(() => loadConfig({ BOX_API_TIMEOUT_MS: '0' })).toThrow(ConfigError);
  });
});

it('a Device id is not a box id for any of these', async () => {
  const deviceId = encodeGlobalId('Device', 1);
  expect(await update({ boxId: deviceId, name: 'x' })).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'boxId' }] });
  expect(await remove(deviceId)).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'boxId' }] });
});
