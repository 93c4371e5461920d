import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS_TIMEOUT_MS } from '../../src/app';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { storedState } from '../helpers/snapshot';

let gateway: TestGateway;
let before: Awaited<ReturnType<typeof storedState>>;

const device = (id: string, status = 'online') => ({ media_device_id: id, media_device_status: status, media_device_type: 'rtsp', media_device_url: `rtsp://10.0.0.1/${id}` });

beforeAll(async () => {
  gateway = await startGateway({ ingestMaxBodyBytes: 1024 * 1024, ingestMaxDevices: 4096 });
  // Something stored before, which every refused report below must leave exactly as it was.
  expect((await postReport(gateway.url, { mq_license_key: 'KEPT0001', media_devices: [device('a'), device('b', 'offline')] })).status).toBe(200);
  expect((await postReport(gateway.url, { dev_sno: 'KEPT0002', sub_devices: [{ ep_id: 'x', ep_status: 'online', ep_type: 'photo' }] })).status).toBe(200);
  before = await storedState(gateway.sql);
});
afterAll(() => gateway?.close());

// Each case aims at a stored box, so a partial write would show in the snapshot.
const cases: Array<{ name: string; body: unknown; contentType?: string; status: number; error: { code: string; message: string; path: string | null } }> = [
  { name: 'not JSON', body: '{"mq_license_key": "KEPT0001", media_devices', status: 400, error: { code: 'INVALID_JSON', message: expect.stringMatching(/^The body is not valid JSON: /) as unknown as string, path: null } },
  { name: 'an empty body', body: '', status: 400, error: { code: 'INVALID_JSON', message: expect.stringMatching(/^The body is not valid JSON: /) as unknown as string, path: null } },
  { name: 'a JSON array', body: [{ mq_license_key: 'KEPT0001' }], status: 400, error: { code: 'INVALID_REPORT', message: 'A report must be a JSON object.', path: null } },
  { name: 'a JSON string', body: '"KEPT0001"', status: 400, error: { code: 'INVALID_REPORT', message: 'A report must be a JSON object.', path: null } },
  { name: 'wrong content type', body: { mq_license_key: 'KEPT0001', media_devices: [] }, contentType: 'text/plain', status: 415, error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Content-Type text/plain is not accepted; send application/json.', path: null } },
  { name: 'a form', body: 'mq_license_key=KEPT0001', contentType: 'application/x-www-form-urlencoded', status: 415, error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Content-Type application/x-www-form-urlencoded is not accepted; send application/json.', path: null } },
  { name: 'no licence key', body: { media_devices: [] }, status: 400, error: { code: 'MISSING_LICENSE_KEY', message: 'The report has no licence key: newer boxes send mq_license_key, older ones dev_sno.', path: 'mq_license_key' } },
  { name: 'an empty licence key', body: { mq_license_key: '  ', media_devices: [] }, status: 400, error: { code: 'INVALID_LICENSE_KEY', message: 'mq_license_key must be a non-empty string.', path: 'mq_license_key' } },
  { name: 'a licence key that is a number', body: { dev_sno: 12345, sub_devices: [] }, status: 400, error: { code: 'INVALID_LICENSE_KEY', message: 'dev_sno must be a non-empty string.', path: 'dev_sno' } },
  { name: 'a licence key too long to be one', body: { mq_license_key: 'K'.repeat(257), media_devices: [] }, status: 400, error: { code: 'INVALID_LICENSE_KEY', message: 'mq_license_key is longer than 256 characters.', path: 'mq_license_key' } },
  { name: 'two licence keys naming different boxes', body: { mq_license_key: 'KEPT0001', dev_sno: 'KEPT0002', media_devices: [] }, status: 400, error: { code: 'CONFLICTING_LICENSE_KEYS', message: 'mq_license_key and dev_sno name different boxes.', path: 'dev_sno' } },
  { name: 'no device list', body: { mq_license_key: 'KEPT0001' }, status: 400, error: { code: 'MISSING_DEVICES', message: 'The report has no device list (media_devices or sub_devices).', path: 'media_devices' } },
  { name: 'a device list that is not a list', body: { mq_license_key: 'KEPT0001', media_devices: { a: device('a') } }, status: 400, error: { code: 'INVALID_DEVICES', message: 'media_devices must be a list of devices.', path: 'media_devices' } },
  { name: 'a device list that is null', body: { dev_sno: 'KEPT0002', sub_devices: null }, status: 400, error: { code: 'INVALID_DEVICES', message: 'sub_devices must be a list of devices.', path: 'sub_devices' } },
  { name: 'a device that is not an object', body: { mq_license_key: 'KEPT0001', media_devices: [device('a'), 'b'] }, status: 400, error: { code: 'INVALID_DEVICE', message: 'Device media_devices[1] is not an object.', path: 'media_devices[1]' } },
  { name: 'a newer device with no id and no url', body: { mq_license_key: 'KEPT0001', media_devices: [device('a'), { media_device_status: 'offline', media_device_type: 'rtsp', media_device_ip: '10.0.0.3' }] }, status: 400, error: { code: 'UNIDENTIFIABLE_DEVICE', message: 'Device media_devices[1] has no media_device_id and no media_device_url to identify it by.', path: 'media_devices[1].media_device_id' } },
  { name: 'an older device with no id and no address', body: { dev_sno: 'KEPT0002', sub_devices: [{ ep_status: 'offline', ep_type: 'photo', ep_id: '' }] }, status: 400, error: { code: 'UNIDENTIFIABLE_DEVICE', message: 'Device sub_devices[0] has no ep_id and no ep_ip or ep_url to identify it by.', path: 'sub_devices[0].ep_id' } },
  { name: 'two devices with the same id', body: { mq_license_key: 'KEPT0001', media_devices: [device('a', 'offline'), device('b'), device('a')] }, status: 400, error: { code: 'DUPLICATE_DEVICE_ID', message: 'Devices 0 and 2 have the same id "a".', path: 'media_devices[2].media_device_id' } },
  { name: 'more than 4096 devices', body: { mq_license_key: 'KEPT0001', media_devices: Array.from({ length: 4097 }, (_, i) => ({ media_device_id: `d${i}` })) }, status: 400, error: { code: 'TOO_MANY_DEVICES', message: 'media_devices has 4097 devices; at most 4096 are accepted.', path: 'media_devices' } },
  { name: 'nesting deeper than 32 levels', body: `{"mq_license_key":"KEPT0001","media_devices":[],"x":${'['.repeat(40)}${']'.repeat(40)}}`, status: 400, error: { code: 'INVALID_REPORT', message: 'The report is nested deeper than 32 levels.', path: null } },
];

describe('a refused report gets the exact answer and changes nothing', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const res = await postReport(gateway.url, c.body, c.contentType ? { contentType: c.contentType } : {});
      expect(res.status).toBe(c.status);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(res.json).toEqual({ error: c.error });
      expect(await storedState(gateway.sql)).toEqual(before);
    });
  }

  it('a body over 1 MiB: 413, read no further', async () => {
    const big = JSON.stringify({ mq_license_key: 'KEPT0001', media_devices: [device('a')], padding: 'x'.repeat(1024 * 1024) });
    const res = await postReport(gateway.url, big);
    expect(res.status).toBe(413);
    expect(res.json).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'The body is larger than 1048576 bytes.', path: null } });
    expect(await storedState(gateway.sql)).toEqual(before);
  });

  it('a body over 1 MiB without Content-Length (chunked): 413', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(Buffer.from('{"mq_license_key":"KEPT0001","media_devices":[],"p":"'));
        for (let i = 0; i < 20; i++) controller.enqueue(chunk);
        controller.enqueue(Buffer.from('"}'));
        controller.close();
      },
    });
    const res = await fetch(`${gateway.url}/DeviceStatus`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await storedState(gateway.sql)).toEqual(before);
  });

  it('GET on the ingest path: 405 with Allow', async () => {
    const res = await fetch(`${gateway.url}/DeviceStatus`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await res.json()).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: 'GET is not accepted here; boxes POST their reports.', path: null } });
  });

  it('an unknown path: 404 that says where reports go', async () => {
    const res = await fetch(`${gateway.url}/RealTimeEvent`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No such route. Reports go to POST /DeviceStatus.', path: null } });
  });

  it('a client that trickles its headers (slowloris) is answered 408 and dropped after 10 s', { timeout: 30_000 }, async () => {
    const port = Number(new URL(gateway.url).port);
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      const socket = connect(port, '127.0.0.1', () => socket.write('POST /DeviceStatus HTTP/1.1\r\nHost: x\r\n'));
      // One more header line every second, never the end of the headers.
      const trickle = setInterval(() => socket.write(`X-Slow-${Date.now()}: 1\r\n`), 1_000);
      socket.on('data', (chunk) => (text += chunk));
      socket.on('close', () => {
        clearInterval(trickle);
        resolve(text);
      });
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 500);
    expect(Date.now() - started).toBeLessThan(HEADERS_TIMEOUT_MS + 10_000);
  });

  it('a client that hangs up mid-body stores nothing and the gateway carries on', async () => {
    const port = Number(new URL(gateway.url).port);
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('POST /DeviceStatus HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"mq_license_key":"KEPT0001","media_devices":[');
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
    });
    const res = await postReport(gateway.url, { mq_license_key: 'KEPT0001', media_devices: [device('a'), device('b', 'offline')] });
    expect(res.status).toBe(200);
    expect(res.json.changes).toBe(0);
    const after = await storedState(gateway.sql);
    expect(after.devices).toEqual(before.devices);
    expect(after.events).toEqual(before.events);
  });
});
