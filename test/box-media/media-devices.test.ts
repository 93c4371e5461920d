import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADDMEDIADEVICE, DELETEMEDIADEVICE } from '../helpers/fake-box';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { closedPort } from '../helpers/net';
import { recordStatements } from '../helpers/statements';
import { createToken } from '../helpers/tokens';
import { until } from '../helpers/wait';
import {
  AddMediaDeviceMutation,
  addDevice,
  closeFakeBoxes,
  databaseId,
  deleteDevice,
  fakeBox,
  MediaDeviceRequestsQuery,
  mediaRequests,
  registerBoxAt,
  stored,
  type DeviceInput,
} from './operations';

// addMediaDevice and deleteMediaDevice through a real gateway against real loopback HTTP servers that
// answer as a box does (test/helpers/fake-box.ts), and as boxes go wrong: every outcome's exact
// answer, and what it left stored (the audit row always; a request row only when the box took it).

const TIMEOUT_MS = 800;
const CAMERA: DeviceInput = { name: 'Front gate', type: 'rtsp', url: 'rtsp://192.168.1.100:554/main/av' };

let gateway: TestGateway;
beforeAll(async () => {
  // A 1 s floor: a box with a 1 s report period leaves PENDING after 3 s (default: 3 x 60 s).
  gateway = await startGateway({ boxApiTimeoutMs: TIMEOUT_MS, mediaDevicePendingMinSeconds: 1 });
});
afterAll(() => gateway?.close());
afterEach(closeFakeBoxes);

/** An audit row as the mutation's `change` selects it. */
function change(boxId: string, fields: Record<string, unknown>) {
  return {
    id: expect.any(String),
    action: 'ADD_MEDIA_DEVICE',
    requestedBy: 'ADMIN_TOKEN (token #1)',
    httpStatus: null,
    response: null,
    errorCode: null,
    errorMessage: null,
    box: { id: boxId },
    ...fields,
  };
}

const ADD_BODY = { media_device_name: CAMERA.name, media_device_type: 'rtsp', media_device_url: CAMERA.url };

describe('a box that takes the device', () => {
  it('addMediaDevice sends the documented body, answers MediaDeviceRequested (PENDING), and keeps the audit and request rows', async () => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);
    const device: DeviceInput = {
      ...CAMERA,
      permissionId: 'group-1',
      netRelay: { ip: '192.168.1.9', port: 502, channel: 2, delayTime: 3000 },
      doRtmpForward: true,
      rtmpAddress: 'rtmp://10.0.0.9/live/gate1',
      roiArea: [0, 0, 1920, 1080],
    };
    const result = await addDevice(gateway, id, device);

    const sent = {
      ...ADD_BODY,
      permission_id: 'group-1',
      net_relay: { ip: '192.168.1.9', port: 502, channel: 2, delay_time: 3000 },
      do_rtmp_forward: true,
      rtmp_address: 'rtmp://10.0.0.9/live/gate1',
      roi_area: [0, 0, 1920, 1080],
    };
    expect(box.requests.map((r) => [r.path, r.headers['content-type'], r.body])).toEqual([[ADDMEDIADEVICE, 'application/json', sent]]);
    const generated = box.mediaDevices[0]!.media_device_id;
    const answer = { media_device_id: generated, media_device_name: CAMERA.name };
    expect(result).toEqual({
      __typename: 'MediaDeviceRequested',
      box: { id },
      change: change(id, { request: sent, target: `127.0.0.1:${box.port}`, outcome: 'APPLIED', httpStatus: 200, response: answer }),
      request: {
        id: expect.any(String),
        action: 'ADD',
        mediaDeviceId: generated,
        name: CAMERA.name,
        type: 'rtsp',
        url: CAMERA.url,
        permissionId: 'group-1',
        requestedBy: 'ADMIN_TOKEN (token #1)',
        requestedAt: expect.any(String),
        state: 'PENDING',
        box: { id },
        change: { id: result.change.id },
        device: null,
      },
    });
    const rows = await stored(gateway, id);
    expect(rows.audit).toEqual([expect.objectContaining({ action: 'addmediadevice', outcome: 'applied', request: sent, response: answer, error_code: null })]);
    expect(rows.requests).toEqual([
      expect.objectContaining({ action: 'add', media_device_id: generated, name: CAMERA.name, type: 'rtsp', url: CAMERA.url, permission_id: 'group-1', change_id: rows.audit[0]!.id }),
    ]);
    expect(await mediaRequests(gateway, id)).toEqual([result.request]);
  });

  it('deleteMediaDevice sends the id, answers MediaDeviceRequested (PENDING) with what the reports knew of the device', async () => {
    const box = await fakeBox({ mediaDevices: [{ media_device_id: 'cam-1', media_device_name: 'Lobby', media_device_type: 'photo', media_device_url: '192.168.1.22' }] });
    const id = await registerBoxAt(gateway, box.host, box.port);
    const licenseKey = (await gateway.sql.query('select license_key from boxes where id = $1', [databaseId(id)])).rows[0].license_key;
    const report = await postReport(gateway.url, {
      mq_license_key: licenseKey,
      media_devices: [{ media_device_id: 'cam-1', media_device_name: 'Lobby', media_device_status: 'online', media_device_ip: '192.168.1.22', permission_id: 'g', media_device_type: 'photo', media_device_url: '192.168.1.22' }],
    });
    expect(report.status).toBe(200);

    const result = await deleteDevice(gateway, id, 'cam-1');

    expect(box.requests.map((r) => [r.path, r.body])).toEqual([[DELETEMEDIADEVICE, { media_device_id: 'cam-1' }]]);
    expect(box.mediaDevices).toEqual([]);
    expect(result).toMatchObject({
      __typename: 'MediaDeviceRequested',
      change: { outcome: 'APPLIED', response: { media_device_id: 'cam-1', media_device_name: 'Lobby' } },
      request: { action: 'DELETE', mediaDeviceId: 'cam-1', name: 'Lobby', type: 'photo', url: '192.168.1.22', permissionId: 'g', state: 'PENDING', device: { externalId: 'cam-1', removed: false } },
    });
    // Device.pendingDeletion shows it while the reports still list the device.
    const read = await graphql<{ box: { devices: { nodes: Array<{ externalId: string; pendingDeletion: { id: string; state: string } | null }> } } }, { id: string }>(
      gateway.url,
      'query($id: ID!) { box(id: $id) { devices { nodes { externalId pendingDeletion { id state } } } } }',
      { id },
    );
    expect(read.body.data!.box.devices.nodes).toEqual([{ externalId: 'cam-1', pendingDeletion: { id: result.request.id, state: 'PENDING' } }]);
  });

  it('each type with the URL the vendor documents for it reaches the box (gb28181 also with its example’s gb28281:// spelling)', async () => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);
    const urls = { photo: '192.168.1.22', file: '/data/test.mp4', gb28181: 'gb28181://34020000001320000001', gb28281: 'gb28281://34020000001320000002' };
    for (const [name, url] of Object.entries(urls)) {
      const type = name === 'gb28281' ? 'gb28181' : name;
      expect((await addDevice(gateway, id, { name, type, url })).__typename, `${type} ${url}`).toBe('MediaDeviceRequested');
    }
    expect(box.mediaDevices.map((d) => d.media_device_url)).toEqual(Object.values(urls));
  });

  it('a request goes UNCONFIRMED once the pending window (3 report periods, at least the floor) passes without a report', async () => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);
    await gateway.sql.query('update boxes set report_period_seconds = 1 where id = $1', [databaseId(id)]);
    const result = await addDevice(gateway, id, { ...CAMERA, mediaDeviceId: 'late-1' });
    expect(result.request.state).toBe('PENDING');
    const [late] = await until(async () => {
      const rows = await mediaRequests(gateway, id, { state: ['UNCONFIRMED'] });
      return rows.length > 0 ? rows : undefined;
    }, 'the request to turn UNCONFIRMED', { timeoutMs: 10_000 });
    expect(late).toMatchObject({ id: result.request.id, state: 'UNCONFIRMED' });
    expect(await mediaRequests(gateway, id, { state: ['PENDING', 'CONFIRMED'] })).toEqual([]);
  });
});

describe('a box that refuses', () => {
  it.each([
    ['UNSUPPORT_CONTENT_TYPE', 'Content-Type must be application/json'],
    ['MISSING_ARGUMENTS', 'missing argument: media_device_name'],
    ['INVALID_ARGUMENTS', 'invalid media_device_type'],
    ['DEVICE_RTMP_ADDRESS_DUPLICATE_ERROR', 'rtmp address already used'],
    ['DEVICE_MAX_NUM_ERROR', 'too many media devices'],
    ['DEVICE_ADDRESS_DUPLICATE_ERROR', 'media device url already exists'],
  ])('addMediaDevice refused with %s is BoxRejectedMediaDevice; only the audit row is stored', async (code, message) => {
    const box = await fakeBox({ mediaErrors: { add: { code, message } } });
    const id = await registerBoxAt(gateway, box.host, box.port);

    const result = await addDevice(gateway, id, CAMERA);

    expect(result).toEqual({
      __typename: 'BoxRejectedMediaDevice',
      message,
      code,
      httpStatus: 400,
      change: change(id, {
        request: ADD_BODY,
        target: `127.0.0.1:${box.port}`,
        outcome: 'REJECTED',
        httpStatus: 400,
        response: { error: { code, message } },
        errorCode: code,
        errorMessage: message,
      }),
    });
    const rows = await stored(gateway, id);
    expect(rows.audit).toEqual([expect.objectContaining({ action: 'addmediadevice', outcome: 'rejected', error_code: code })]);
    expect(rows.requests).toEqual([]);
    expect(await mediaRequests(gateway, id)).toEqual([]);
  });

  it.each([
    ['UNSUPPORT_CONTENT_TYPE', 'Content-Type must be application/json'],
    ['MISSING_ARGUMENTS', 'missing argument: media_device_id'],
    ['INVALID_ARGUMENTS', 'invalid media_device_id'],
  ])('deleteMediaDevice refused with %s is BoxRejectedMediaDevice; only the audit row is stored', async (code, message) => {
    const box = await fakeBox({ mediaErrors: { delete: { code, message } } });
    const id = await registerBoxAt(gateway, box.host, box.port);
    const result = await deleteDevice(gateway, id, 'cam-9');
    expect(result).toMatchObject({
      __typename: 'BoxRejectedMediaDevice',
      message,
      code,
      httpStatus: 400,
      change: { action: 'DELETE_MEDIA_DEVICE', outcome: 'REJECTED', errorCode: code, request: { media_device_id: 'cam-9' } },
    });
    const rows = await stored(gateway, id);
    expect(rows.audit).toEqual([expect.objectContaining({ action: 'deletemediadevice', outcome: 'rejected', error_code: code })]);
    expect(rows.requests).toEqual([]);
  });

  it('deleteMediaDevice of an id the box does not have is DEVICE_ID_NOT_FOUND (a string or, as the vendor’s table allows, a number)', async () => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);
    expect(await deleteDevice(gateway, id, 'nope')).toMatchObject({ __typename: 'BoxRejectedMediaDevice', code: 'DEVICE_ID_NOT_FOUND', message: 'media device not found' });

    box.behave({ kind: 'raw', status: 400, contentType: 'application/json', body: '{"error": {"code": 404001, "message": "media device not found"}}' });
    expect(await deleteDevice(gateway, id, 'nope')).toMatchObject({ __typename: 'BoxRejectedMediaDevice', code: '404001', change: { errorCode: '404001' } });
    expect((await stored(gateway, id)).requests).toEqual([]);
  });
});

describe('input refused before any call', () => {
  it.each<[string, Partial<DeviceInput>, Array<{ field: string; message: string }>]>([
    ['an empty name', { name: '  ' }, [{ field: 'device.name', message: 'device.name is required and must not be empty.' }]],
    ['a type the box does not know', { type: 'usb' }, [{ field: 'device.type', message: '"usb" is not a media device type: use rtsp, photo, file or gb28181.' }]],
    [
      'an rtsp device without rtsp://',
      { url: 'http://192.168.1.100/stream' },
      [{ field: 'device.url', message: '"http://192.168.1.100/stream" does not fit type rtsp: an rtsp device needs an rtsp:// URL with a host, e.g. rtsp://192.168.1.100:554/main/av.' }],
    ],
    [
      'a gb28181 device without gb28181://',
      { type: 'gb28181', url: '34020000001320000001' },
      [{ field: 'device.url', message: '"34020000001320000001" does not fit type gb28181: a gb28181 device needs a gb28181:// URL, e.g. gb28181://34020000001320000001.' }],
    ],
    [
      'a photo device with a URL',
      { type: 'photo', url: 'http://192.168.1.22/snap' },
      [{ field: 'device.url', message: '"http://192.168.1.22/snap" does not fit type photo: a photo device’s URL is the IP address or host name of the camera, e.g. 192.168.1.22 (no scheme, port or path).' }],
    ],
    [
      'a file device with a relative path',
      { type: 'file', url: 'data/test.mp4' },
      [{ field: 'device.url', message: '"data/test.mp4" does not fit type file: a file device’s URL is an absolute path on the box without `..`, e.g. /data/test.mp4.' }],
    ],
    ['a name with a line break', { name: 'Gate\n2' }, [{ field: 'device.name', message: 'device.name contains a control character (a line break, tab, NUL, ...); remove it.' }]],
    ['a name too long', { name: 'x'.repeat(129) }, [{ field: 'device.name', message: 'device.name is 129 characters long; at most 128 are accepted.' }]],
    ['an empty id', { mediaDeviceId: '' }, [{ field: 'device.mediaDeviceId', message: 'device.mediaDeviceId must not be empty; leave it out instead.' }]],
    ['a region that is not four coordinates', { roiArea: [0, 0, 10] }, [{ field: 'device.roiArea', message: 'roiArea is four whole pixel coordinates [x1, y1, x2, y2], each from 0 to 100000.' }]],
    ['forwarding without an RTMP address', { doRtmpForward: true }, [{ field: 'device.rtmpAddress', message: 'doRtmpForward needs rtmpAddress: where the box forwards the stream.' }]],
  ])('%s is InvalidMediaDevice, audited as INVALID_INPUT; the box saw nothing', async (_what, change_, problems) => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);

    const result = await addDevice(gateway, id, { ...CAMERA, ...change_ });

    expect(result).toMatchObject({ __typename: 'InvalidMediaDevice', code: 'INVALID_INPUT', problems, message: problems.map((p) => p.message).join(' ') });
    expect(result.change).toMatchObject({ outcome: 'INVALID', target: null, errorCode: 'INVALID_INPUT' });
    expect(box.requests).toEqual([]);
    const rows = await stored(gateway, id);
    expect(rows.audit).toEqual([expect.objectContaining({ action: 'addmediadevice', outcome: 'invalid', error_code: 'INVALID_INPUT', target: null })]);
    expect(rows.requests).toEqual([]);
  });

  it('an empty id to delete is InvalidMediaDevice; the box saw nothing', async () => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);
    expect(await deleteDevice(gateway, id, '')).toMatchObject({
      __typename: 'InvalidMediaDevice',
      code: 'INVALID_INPUT',
      problems: [{ field: 'mediaDeviceId', message: 'mediaDeviceId is required and must not be empty.' }],
      change: { outcome: 'INVALID', request: { media_device_id: '' } },
    });
    expect(box.requests).toEqual([]);
    expect((await stored(gateway, id)).requests).toEqual([]);
  });

  it('an unknown box or a malformed id is InvalidMediaDevice with nothing recorded', async () => {
    const unknown = Buffer.from('Box:999999').toString('base64');
    expect(await addDevice(gateway, unknown, CAMERA)).toMatchObject({ __typename: 'InvalidMediaDevice', problems: [{ field: 'boxId' }], change: null });
    expect(await deleteDevice(gateway, 'not-an-id', 'x')).toMatchObject({
      __typename: 'InvalidMediaDevice',
      problems: [{ field: 'boxId', message: '"not-an-id" is not a Box id; use the `id` of a Box this API returned.' }],
      change: null,
    });
  });

  it('a URL the box’s reports already list is refused locally with DEVICE_ADDRESS_DUPLICATE_ERROR; the box saw nothing', async () => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);
    const licenseKey = (await gateway.sql.query('select license_key from boxes where id = $1', [databaseId(id)])).rows[0].license_key;
    await postReport(gateway.url, {
      mq_license_key: licenseKey,
      media_devices: [{ media_device_id: 'cam-7', media_device_name: 'Gate', media_device_status: 'online', media_device_ip: '192.168.1.100', permission_id: 'g', media_device_type: 'rtsp', media_device_url: CAMERA.url }],
    });

    const result = await addDevice(gateway, id, CAMERA);

    expect(result).toMatchObject({
      __typename: 'InvalidMediaDevice',
      code: 'DEVICE_ADDRESS_DUPLICATE_ERROR',
      problems: [{ field: 'device.url', message: 'The box already has a device with this URL: "cam-7" (Gate). Delete that one first, or give another URL.' }],
      change: { outcome: 'INVALID', errorCode: 'DEVICE_ADDRESS_DUPLICATE_ERROR', target: null },
    });
    expect(box.requests).toEqual([]);
    const rows = await stored(gateway, id);
    expect(rows.requests).toEqual([]);
    expect(rows.devices).toEqual([{ external_id: 'cam-7', url: CAMERA.url, removed_at: null }]);
  });
});

describe('a box that does not answer as it should', () => {
  it('an answer without media_device_id is BoxBadAnswer UNEXPECTED_SHAPE; no request row', async () => {
    const box = await fakeBox({ behavior: { kind: 'raw', status: 200, contentType: 'application/json', body: '{"result": true}' } });
    const id = await registerBoxAt(gateway, box.host, box.port);
    const result = await addDevice(gateway, id, CAMERA);
    expect(result).toEqual({
      __typename: 'BoxBadAnswer',
      message:
        'The box answered HTTP 200 with 16 bytes of application/json: JSON that is not a media device answer (an object with a `media_device_id`). Its content is not shown. The box may have added the device; its next report shows whether it did. No MediaDeviceRequest was kept.',
      defect: 'UNEXPECTED_SHAPE',
      httpStatus: 200,
      contentType: 'application/json',
      bodyBytes: 16,
      target: `127.0.0.1:${box.port}`,
      change: expect.objectContaining({ outcome: 'BAD_ANSWER', errorCode: 'UNEXPECTED_SHAPE', response: null }),
    });
    expect((await stored(gateway, id)).requests).toEqual([]);
  });

  it('a box that hangs is BoxTimedOut with requestSent: it may have happened; no request row', async () => {
    const box = await fakeBox({ behavior: { kind: 'hang' } });
    const id = await registerBoxAt(gateway, box.host, box.port);
    const result = await addDevice(gateway, id, CAMERA);
    expect(result).toMatchObject({
      __typename: 'BoxTimedOut',
      timeoutMs: TIMEOUT_MS,
      requestSent: true,
      target: `127.0.0.1:${box.port}`,
      message: `The box at 127.0.0.1:${box.port} did not answer within ${TIMEOUT_MS} ms. The request was sent, so the box may have added the device; its next report shows whether it did (Box.devices). No MediaDeviceRequest was kept.`,
      change: { outcome: 'TIMED_OUT', errorCode: 'TIMED_OUT' },
    });
    expect((await stored(gateway, id)).requests).toEqual([]);
  });

  it('a connection reset after the request is BoxUnreachable with requestSent; a closed port is BoxUnreachable without', async () => {
    const box = await fakeBox({ behavior: { kind: 'reset' } });
    const id = await registerBoxAt(gateway, box.host, box.port);
    expect(await deleteDevice(gateway, id, 'cam-1')).toMatchObject({ __typename: 'BoxUnreachable', reason: 'RESET', requestSent: true, readBack: null, change: { outcome: 'UNREACHABLE', errorCode: 'RESET' } });

    const port = await closedPort();
    const closed = await registerBoxAt(gateway, '127.0.0.1', port);
    const result = await addDevice(gateway, closed, CAMERA);
    expect(result).toMatchObject({ __typename: 'BoxUnreachable', reason: 'REFUSED', requestSent: false, target: `127.0.0.1:${port}`, change: { outcome: 'UNREACHABLE', errorCode: 'REFUSED' } });
    expect(result.message).toContain('Nothing was sent.');
    expect((await stored(gateway, id)).requests).toEqual([]);
    expect((await stored(gateway, closed)).requests).toEqual([]);
  });

  it('an address outside BOX_NETWORKS is BoxAddressRefused; nothing sent', async () => {
    const id = await registerBoxAt(gateway, '198.51.100.7', 5555);
    expect(await addDevice(gateway, id, CAMERA)).toMatchObject({
      __typename: 'BoxAddressRefused',
      refusal: 'NOT_ALLOWED',
      address: '198.51.100.7',
      target: '198.51.100.7:5555',
      change: { outcome: 'REFUSED', errorCode: 'ADDRESS_NOT_ALLOWED' },
    });
    const rows = await stored(gateway, id);
    expect(rows.audit).toEqual([expect.objectContaining({ action: 'addmediadevice', outcome: 'refused' })]);
    expect(rows.requests).toEqual([]);
  });
});

describe('one call per box at a time', () => {
  it('two adds to one box never overlap at the box; two boxes are called side by side', async () => {
    const [one, two] = await Promise.all([fakeBox({ holdMedia: true }), fakeBox({ holdMedia: true })]);
    const [idOne, idTwo] = await Promise.all([registerBoxAt(gateway, one!.host, one!.port), registerBoxAt(gateway, two!.host, two!.port)]);

    const adding = Promise.all([
      addDevice(gateway, idOne, { ...CAMERA, mediaDeviceId: 'a' }),
      addDevice(gateway, idOne, { name: 'Side', type: 'rtsp', url: 'rtsp://192.168.1.101/main', mediaDeviceId: 'b' }),
      addDevice(gateway, idTwo, { ...CAMERA, mediaDeviceId: 'c' }),
    ]);
    // Both boxes hold a call unanswered at once: the other box's call did not wait for the first box's.
    await until(() => one!.mediaCalls.length === 1 && two!.mediaCalls.length === 1, 'a call held at each box');
    expect(one!.mediaCalls).toHaveLength(1);
    expect(one!.releaseMedia() + two!.releaseMedia()).toBe(2);
    // The first box's second call comes only once its first is answered (and recorded).
    await until(() => one!.mediaCalls.length === 2, 'the first box’s second call');
    expect(one!.releaseMedia()).toBe(1);
    const results = await adding;

    expect(results.map((r) => r.__typename)).toEqual(['MediaDeviceRequested', 'MediaDeviceRequested', 'MediaDeviceRequested']);
    const [first, second] = one!.mediaCalls;
    expect(second!.arrivedAt).toBeGreaterThanOrEqual(first!.answeredAt!);
    expect(one!.mediaDevices.map((d) => d.media_device_id)).toEqual(['a', 'b']);
  });
});

describe('roles', () => {
  it('a viewer may neither add a device nor read the requests (they hold camera URLs); the box sees nothing', async () => {
    const box = await fakeBox();
    const id = await registerBoxAt(gateway, box.host, box.port);
    await addDevice(gateway, id, CAMERA);
    const viewer = await createToken(gateway.url, 'viewer', 'dashboard');

    const add = await graphql<Record<string, unknown>, Record<string, unknown>>(gateway.url, AddMediaDeviceMutation, { boxId: id, device: { ...CAMERA, url: 'rtsp://192.168.1.5/x' } }, { token: viewer.token });
    expect(add.body.data).toBeNull();
    expect(add.body.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    const read = await graphql<{ box: { mediaDeviceRequests: unknown } | null }, Record<string, unknown>>(gateway.url, MediaDeviceRequestsQuery, { id }, { token: viewer.token });
    expect(read.body.data?.box).toBeNull();
    expect(read.body.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    expect(box.requests).toHaveLength(1);
    expect((await stored(gateway, id)).audit).toHaveLength(1);
  });
});

describe('reads', () => {
  it('the requests of many boxes, with their changes and devices, cost the statements of one box', async () => {
    for (const n of [1, 2, 3]) {
      const box = await fakeBox();
      const id = await registerBoxAt(gateway, box.host, box.port);
      expect(await addDevice(gateway, id, { ...CAMERA, url: `rtsp://192.168.9.${n}/main` })).toMatchObject({ __typename: 'MediaDeviceRequested' });
    }
    const read = (first: number) =>
      recordStatements(gateway.app.apiPool, async () => {
        const response = await graphql<{ boxes: { nodes: Array<{ mediaDeviceRequests: unknown[] }> } }, { first: number }>(
          gateway.url,
          'query($first: Int) { boxes(first: $first, orderBy: { field: ID, direction: DESC }) { nodes { mediaDeviceRequests { id state change { id action } device { id } box { id } } } } }',
          { first },
        );
        expect(response.body.errors).toBeUndefined();
        expect(response.body.data!.boxes.nodes.every((node) => node.mediaDeviceRequests.length === 1)).toBe(true);
      });
    const one = await read(1);
    const three = await read(3);
    // The boxes, their requests, the requests' changes, their devices (none listed here: no statement).
    expect(one.length).toBeGreaterThanOrEqual(3);
    expect(three, three.join('\n---\n')).toHaveLength(one.length);
  });
});
