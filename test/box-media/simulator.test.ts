import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDMEDIADEVICE_PATH, DELETEMEDIADEVICE_PATH } from '../../src/box-api/client';
import type { BoxApiServer } from '../../tools/simulator/box-api';
import { createFleet, MAX_MEDIA_DEVICES } from '../../tools/simulator/fleet';
import { registerApiPorts, type RegisteredBox } from '../../tools/simulator/register';
import { runSimulator, SIMULATOR_DEFAULTS, type SimulatorTotals } from '../../tools/simulator/run';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { until } from '../helpers/wait';
import { addDevice, deleteDevice, mediaRequests, stored } from './operations';

// End to end: a gateway and a simulated box reporting to it every second, its REST API on a loopback
// port. A device added or deleted through the gateway is PENDING until the box's next report, then
// CONFIRMED. The simulator's box answers the media calls as the vendor documents them.

const PERIOD_S = 1;

let gateway: TestGateway;
const stop = new AbortController();
let simulation: Promise<SimulatorTotals>;
let registered: RegisteredBox[];
let api: BoxApiServer;
const fleet = createFleet({ boxes: 1, devicesPerBox: 3, format: 'new', seed: 23, reportPeriodSeconds: PERIOD_S, monitorUrl: '' });
const box = fleet[0]!;

beforeAll(async () => {
  gateway = await startGateway();
  const url = `${gateway.url}/DeviceStatus`;
  box.monitorUrl = url;
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  simulation = runSimulator(
    { ...SIMULATOR_DEFAULTS, boxes: 1, devicesPerBox: 3, reportPeriodSeconds: PERIOD_S, format: 'new', url, seed: 23, boxApi: { host: '127.0.0.1' } },
    {
      fleet,
      signal: stop.signal,
      onReady: async (servers) => {
        api = servers[0]!;
        registered = await registerApiPorts(`${gateway.url}/graphql`, servers, { address: '127.0.0.1', token: gateway.token });
        ready();
      },
    },
  );
  await Promise.race([started, simulation]);
  // The box has reported its devices once.
  await until(async () => (await gateway.sql.query('select count(*)::int as n from devices')).rows[0].n === 3, 'the first report');
});

afterAll(async () => {
  stop.abort();
  await simulation?.catch(() => undefined);
  await gateway?.close();
});

const boxId = () => registered[0]!.boxId;

/** Waits for the request to read `state`; returns it as read. */
async function untilState(requestId: string, state: string) {
  return until(async () => (await mediaRequests(gateway, boxId())).find((r) => r.id === requestId && r.state === state), `request ${requestId} to be ${state}`, {
    timeoutMs: 10_000,
  });
}

describe('through the gateway', () => {
  it('an added device is PENDING, then CONFIRMED by the box’s next report; a deleted one likewise', async () => {
    const added = await addDevice(gateway, boxId(), { name: 'Dock camera', type: 'rtsp', url: 'rtsp://192.168.7.50:554/main/av' });
    expect(added).toMatchObject({ __typename: 'MediaDeviceRequested', request: { action: 'ADD', state: 'PENDING', name: 'Dock camera' } });
    const mediaDeviceId: string = added.request.mediaDeviceId;
    expect(box.devices.map((d) => d.id)).toContain(mediaDeviceId);

    const confirmed = await untilState(added.request.id, 'CONFIRMED');
    expect(confirmed.device).toEqual({ id: expect.any(String), externalId: mediaDeviceId, removed: false });

    const deleted = await deleteDevice(gateway, boxId(), mediaDeviceId);
    expect(deleted).toMatchObject({ __typename: 'MediaDeviceRequested', request: { action: 'DELETE', state: 'PENDING', mediaDeviceId, url: 'rtsp://192.168.7.50:554/main/av' } });
    expect(box.devices.map((d) => d.id)).not.toContain(mediaDeviceId);
    const gone = await untilState(deleted.request.id, 'CONFIRMED');
    expect(gone.device).toMatchObject({ externalId: mediaDeviceId, removed: true });
    const device = await graphql<{ node: { pendingDeletion: unknown; removed: boolean } }, { id: string }>(gateway.url, 'query($id: ID!) { node(id: $id) { ... on Device { removed pendingDeletion { id } } } }', { id: gone.device.id });
    expect(device.body.data!.node).toEqual({ removed: true, pendingDeletion: null });
    // The add's device is gone, so it is no longer CONFIRMED; within its window (60 s at least) it reads PENDING.
    const states = Object.fromEntries((await mediaRequests(gateway, boxId())).map((r) => [r.action, r.state]));
    expect(states).toEqual({ ADD: 'PENDING', DELETE: 'CONFIRMED' });
  });

  it('a delete of an id the box does not have is DEVICE_ID_NOT_FOUND; more than 16 devices is DEVICE_MAX_NUM_ERROR', async () => {
    expect(await deleteDevice(gateway, boxId(), 'no-such-device')).toMatchObject({ __typename: 'BoxRejectedMediaDevice', code: 'DEVICE_ID_NOT_FOUND', httpStatus: 400 });
    const before = box.devices.length;
    const extra: string[] = [];
    for (let n = before; n < MAX_MEDIA_DEVICES; n++) {
      const result = await addDevice(gateway, boxId(), { name: `File ${n}`, type: 'file', url: `/data/extra_${n}.mp4` });
      expect(result).toMatchObject({ __typename: 'MediaDeviceRequested' });
      extra.push(result.request.mediaDeviceId);
    }
    const full = await addDevice(gateway, boxId(), { name: 'One too many', type: 'photo', url: '192.168.7.99' });
    expect(full).toMatchObject({ __typename: 'BoxRejectedMediaDevice', code: 'DEVICE_MAX_NUM_ERROR', message: `the box watches ${MAX_MEDIA_DEVICES} media devices at most` });
    expect(box.devices).toHaveLength(MAX_MEDIA_DEVICES);
    const rejected = (await stored(gateway, boxId())).audit.filter((row) => row.outcome === 'rejected').map((row) => row.error_code);
    expect(rejected).toEqual(['DEVICE_ID_NOT_FOUND', 'DEVICE_MAX_NUM_ERROR']);
    // Leave the box as the other tests found it.
    for (const id of extra) expect(await deleteDevice(gateway, boxId(), id)).toMatchObject({ __typename: 'MediaDeviceRequested' });
    expect(box.devices).toHaveLength(before);
  });
});

describe('the simulated box’s own answers', () => {
  async function post(path: string, body: unknown) {
    const response = await fetch(`http://127.0.0.1:${api.port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as unknown };
  }

  it('refuses as the vendor documents: a missing field by name, a bad type, a URL it has', async () => {
    expect(await post(ADDMEDIADEVICE_PATH, { media_device_name: 'x', media_device_type: 'rtsp' })).toEqual({
      status: 400,
      body: { error: { code: 'MISSING_ARGUMENTS', message: 'missing argument: media_device_url' } },
    });
    expect(await post(ADDMEDIADEVICE_PATH, { media_device_name: 'x', media_device_type: 'usb', media_device_url: '/dev/video0' })).toEqual({
      status: 400,
      body: { error: { code: 'INVALID_ARGUMENTS', message: 'invalid media_device_type: usb; one of photo, rtsp, file, gb28181' } },
    });
    const taken = box.devices[0]!;
    expect(await post(ADDMEDIADEVICE_PATH, { media_device_name: 'x', media_device_type: taken.type, media_device_url: taken.url })).toEqual({
      status: 400,
      body: { error: { code: 'DEVICE_ADDRESS_DUPLICATE_ERROR', message: `media device url already exists: ${taken.url}` } },
    });
    expect(await post(DELETEMEDIADEVICE_PATH, {})).toEqual({ status: 400, body: { error: { code: 'MISSING_ARGUMENTS', message: 'missing argument: media_device_id' } } });
  });
});
