import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastReportsByBoxIds } from '../../src/models/boxes';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { NEWER_FORMAT_EXAMPLE, NEWER_FORMAT_TABLE, OLDER_FORMAT_EXAMPLE, OLDER_FORMAT_TABLE } from '../fixtures/seed-examples';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.close());

/** The box's row, with its last report as GraphQL serves it (Box.lastReport.body), parsed. */
async function box(licenseKey: string) {
  const { rows } = await gateway.sql.query('select b.* from boxes b where b.license_key = $1', [licenseKey]);
  const body = await lastBody(licenseKey);
  return rows[0] && { ...rows[0], last_report: body === undefined ? undefined : JSON.parse(body) };
}

/** The box's last report body as GraphQL serves it, byte for byte. */
async function lastBody(licenseKey: string): Promise<string | undefined> {
  const { rows } = await gateway.sql.query('select id from boxes where license_key = $1', [licenseKey]);
  return rows[0] && (await lastReportsByBoxIds(gateway.sql, [rows[0].id])).get(rows[0].id)?.body;
}

async function devicesOf(licenseKey: string) {
  const { rows } = await gateway.sql.query(
    `select d.external_id, d.name, d.ip, d.type, d.url, d.permission_id, d.status, d.reported_status, d.reported_type, d.removed_at
     from devices d join boxes b on b.id = d.box_id where b.license_key = $1 order by d.external_id`,
    [licenseKey],
  );
  return rows;
}

describe('the seed documents, verbatim', () => {
  it('accepts the newer format example (sub_devices, a comment, trailing commas)', async () => {
    const res = await postReport(gateway.url, NEWER_FORMAT_EXAMPLE);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ licenseKey: 'AFVKQF000120210604151110', format: 'new', devices: 1, changes: 2 });
    expect(res.json.warnings).toEqual([{ code: 'LENIENT_JSON', message: 'The body is not strict JSON; it was read as JSON5.', path: '' }]);
    expect(await devicesOf('AFVKQF000120210604151110')).toEqual([
      {
        external_id: '2c1a6a12-ecf4-4490-a2fc-8d7a5023bfcd',
        name: '前门设备',
        ip: '192.168.1.100',
        type: 'rtsp',
        url: 'rtsp://192.168.1.100:554/ch2',
        permission_id: '820737ae-a6d3-4322-bf7c-46f48066fb64',
        status: 'online',
        reported_status: null,
        reported_type: null,
        removed_at: null,
      },
    ]);
    expect(await box('AFVKQF000120210604151110')).toMatchObject({ report_format: 'new', status: 'online', address: '127.0.0.1' });
  });

  it('accepts the older format example (a Python-style device dict)', async () => {
    const res = await postReport(gateway.url, OLDER_FORMAT_EXAMPLE.replace('AFVKQF000120210604151110', 'OLDEXAMPLE0001'));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ licenseKey: 'OLDEXAMPLE0001', format: 'old', devices: 1, changes: 2 });
    expect(await devicesOf('OLDEXAMPLE0001')).toEqual([
      {
        external_id: 'ZKZCPI000120190807142601__192.168.1.101',
        name: '',
        ip: '192.168.1.101',
        type: 'rtsp',
        url: null,
        permission_id: '95274d2c-0941-4d96-b032-ab200f81362c',
        status: 'online',
        reported_status: null,
        reported_type: null,
        removed_at: null,
      },
    ]);
  });

  it('accepts the newer format as its table describes it, every device type', async () => {
    const res = await postReport(gateway.url, NEWER_FORMAT_TABLE, { path: '/api/device-status' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      boxId: expect.any(String),
      licenseKey: 'ZKZCPI000120190807142601',
      format: 'new',
      devices: 4,
      changes: 5,
      warnings: [],
    });
    const devices = await devicesOf('ZKZCPI000120190807142601');
    expect(devices.map((d) => [d.type, d.url, d.status])).toEqual([
      ['file', '/data/test.mp4', 'online'],
      ['rtsp', 'rtsp://192.168.1.100:554/main/av', 'online'],
      ['gb28181', 'gb28281://xxxx', 'online'],
      ['photo', '192.168.1.22', 'offline'],
    ]);
  });

  it('keeps the older format box fields and every device field', async () => {
    const report = { ...OLDER_FORMAT_TABLE, dev_sno: 'OLDTABLE0001' };
    const res = await postReport(gateway.url, report);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ format: 'old', devices: 2, changes: 3, warnings: [] });
    const stored = await box('OLDTABLE0001');
    expect(stored).toMatchObject({
      name: 'SE5 north gate',
      report_format: 'old',
      gateway: { gateway_ip: '192.168.1.19', gateway_name: 'SE5 north gate', gateway_status: 'online', gateway_sn: 'HQDZKM6BJACJH0182', gateway_port: 5555 },
      gateway_ext_data: OLDER_FORMAT_TABLE.gateway_ext_data,
      last_report: report,
    });
    expect(stored.first_report_at).toEqual(stored.last_report_at);
    expect(await devicesOf('OLDTABLE0001')).toMatchObject([
      { external_id: 'ZKZCPI000120190807142601__192.168.1.101', url: 'rtsp://192.168.1.101:554/main/av', name: 'aaa', status: 'online' },
      { external_id: 'ZKZCPI000120190807142601__192.168.1.25', url: null, type: 'photo', status: 'offline' },
    ]);
  });
});

describe('an older box reporting its health figures', () => {
  it('stores the new figures and the body at every report, and no device rows or history when only they changed', async () => {
    const licenseKey = 'OLDHEALTH0001';
    // Figures of other lengths and characters than the first's, after device names in Chinese.
    const figures = [{ cpu_usage: 23.5 }, { cpu_usage: 24, note: '风扇 "ok" }' }, { cpu_usage: 31.25, temperature: 61 }, { cpu_usage: 9 }];
    const reports = figures.map((ext) => ({
      ...OLDER_FORMAT_TABLE,
      dev_sno: licenseKey,
      sub_devices: OLDER_FORMAT_TABLE.sub_devices.map((d, i) => ({ ...d, ep_name: `大门 ${i}` })),
      gateway_ext_data: { ...OLDER_FORMAT_TABLE.gateway_ext_data, ...ext },
    }));
    const bodies = reports.map((report, i) => JSON.stringify(report, null, i < 2 ? 0 : 1)); // the third with other spacing
    const first = await postReport(gateway.url, bodies[0]);
    expect(first.json).toMatchObject({ changes: 3 });
    expect(await lastBody(licenseKey)).toBe(bodies[0]);
    const stored = async () =>
      (await gateway.sql.query('select r.body from box_last_reports r join boxes b on b.id = r.box_id where b.license_key = $1', [licenseKey])).rows[0];
    const devicesBefore = await gateway.sql.query('select d.* from devices d join boxes b on b.id = d.box_id where b.license_key = $1 order by d.id', [licenseKey]);
    for (const [i, report] of reports.entries()) {
      if (i === 0) continue;
      const res = await postReport(gateway.url, bodies[i]);
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ licenseKey, format: 'old', devices: 2, changes: 0, warnings: [] });
      expect(await box(licenseKey)).toMatchObject({ gateway_ext_data: report.gateway_ext_data, last_report: report });
      expect(await lastBody(licenseKey)).toBe(bodies[i]);
      expect((await stored()).body).toBe(bodies[i]);
    }
    expect(await box(licenseKey)).toMatchObject({ report_count: 4, name: 'SE5 north gate', gateway: { gateway_sn: 'HQDZKM6BJACJH0182' } });
    const devicesAfter = await gateway.sql.query('select d.* from devices d join boxes b on b.id = d.box_id where b.license_key = $1 order by d.id', [licenseKey]);
    expect(devicesAfter.rows).toEqual(devicesBefore.rows);
    const { rows } = await gateway.sql.query('select count(*)::int as n from status_events e join boxes b on b.id = e.box_id where b.license_key = $1', [licenseKey]);
    expect(rows[0].n).toBe(3); // the box and its two devices, first seen
  });
});

describe('what real boxes vary', () => {
  it('accepts media_devices or sub_devices on either path', async () => {
    for (const [path, listField] of [
      ['/DeviceStatus', 'media_devices'],
      ['/api/device-status', 'sub_devices'],
      ['/DeviceStatus/', 'sub_devices'],
      ['/devicestatus', 'media_devices'],
      ['/API/Device-Status/', 'media_devices'],
    ] as const) {
      const res = await postReport(
        gateway.url,
        { mq_license_key: `LIST-${listField}-${path.length}`, [listField]: [{ media_device_id: 'a', media_device_status: 'online', media_device_type: 'rtsp' }] },
        { path },
      );
      expect(res.status, `${path} ${listField}`).toBe(200);
      expect(res.json.devices).toBe(1);
    }
  });

  it('identifies a newer device without media_device_id by its URL', async () => {
    const res = await postReport(gateway.url, {
      mq_license_key: 'NOID0001',
      media_devices: [{ media_device_url: 'rtsp://10.0.0.5/ch1', media_device_status: 'online', media_device_type: 'rtsp' }],
    });
    expect(res.status).toBe(200);
    expect((await devicesOf('NOID0001'))[0].external_id).toBe('rtsp://10.0.0.5/ch1');
  });

  it('derives an older device id from dev_sno and its address when ep_id is missing', async () => {
    const res = await postReport(gateway.url, { dev_sno: 'NOEPID0001', sub_devices: [{ ep_ip: '10.0.0.9', ep_status: 'offline', ep_type: 'photo' }] });
    expect(res.status).toBe(200);
    expect((await devicesOf('NOEPID0001'))[0].external_id).toBe('NOEPID0001__10.0.0.9');
  });

  it('reads status and type in any letter case and with spaces', async () => {
    const res = await postReport(gateway.url, {
      mq_license_key: 'CASE0001',
      media_devices: [{ media_device_id: 'a', media_device_status: ' OnLine ', media_device_type: 'GB28181' }],
    });
    expect(res.json.warnings).toEqual([]);
    expect(await devicesOf('CASE0001')).toMatchObject([{ status: 'online', type: 'gb28181' }]);
  });

  it('stores an undocumented status or type as unknown and says so, keeping the box report', async () => {
    const res = await postReport(gateway.url, {
      mq_license_key: 'ODD0001',
      media_devices: [
        { media_device_id: 'a', media_device_status: 'rebooting', media_device_type: 'thermal' },
        { media_device_id: 'b', media_device_type: 'rtsp' },
        { media_device_id: 'c', media_device_status: 1, media_device_type: 'rtsp' },
        { media_device_id: 'd', media_device_status: 'online', media_device_type: 'rtsp' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json.warnings).toEqual([
      { code: 'UNKNOWN_STATUS', message: 'media_device_status is "rebooting", not one of online, offline; stored as unknown', path: 'media_devices[0].media_device_status' },
      { code: 'UNKNOWN_TYPE', message: 'media_device_type is "thermal", not one of photo, rtsp, file, gb28181; stored as unknown', path: 'media_devices[0].media_device_type' },
      { code: 'UNKNOWN_STATUS', message: 'media_device_status is missing, not one of online, offline; stored as unknown', path: 'media_devices[1].media_device_status' },
      { code: 'UNKNOWN_STATUS', message: 'media_device_status is 1, not one of online, offline; stored as unknown', path: 'media_devices[2].media_device_status' },
    ]);
    expect(await devicesOf('ODD0001')).toMatchObject([
      { external_id: 'a', status: 'unknown', reported_status: 'rebooting', type: 'unknown', reported_type: 'thermal' },
      { external_id: 'b', status: 'unknown', reported_status: null, type: 'rtsp' },
      { external_id: 'c', status: 'unknown', reported_status: '1' },
      { external_id: 'd', status: 'online', reported_status: null },
    ]);
  });

  it('answers the summary as plain JSON, its licence key escaped and the box id in the API\'s global-id form', async () => {
    const licenseKey = 'KEY "quoted" \\ 界\u2028\u0007';
    const res = await postReport(gateway.url, {
      mq_license_key: licenseKey,
      media_devices: [{ media_device_id: 'a', media_device_status: 'ONLINE?', media_device_type: 'rtsp' }],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const { rows } = await gateway.sql.query('select id from boxes where license_key = $1', [licenseKey]);
    const warnings = [{ code: 'UNKNOWN_STATUS', message: 'media_device_status is "ONLINE?", not one of online, offline; stored as unknown', path: 'media_devices[0].media_device_status' }];
    const boxId = Buffer.from(`Box:${rows[0].id}`).toString('base64');
    expect(res.text).toBe(JSON.stringify({ boxId, licenseKey, format: 'new', devices: 1, changes: 2, warnings }));
    // The same again: no change, and no warning list but its own.
    const again = await postReport(gateway.url, { mq_license_key: licenseKey, media_devices: [{ media_device_id: 'a', media_device_status: 'online', media_device_type: 'rtsp' }] });
    expect(again.text).toBe(JSON.stringify({ boxId, licenseKey, format: 'new', devices: 1, changes: 1, warnings: [] }));
  });

  it('never rejects a report for fields it does not know', async () => {
    const res = await postReport(gateway.url, {
      mq_license_key: 'EXTRA0001',
      firmware: { build: 42 },
      timestamp: 1700000000,
      media_devices: [{ media_device_id: 'a', media_device_status: 'online', media_device_type: 'rtsp', fps: 25, extra: [1, 2] }],
    });
    expect(res.status).toBe(200);
    expect((await box('EXTRA0001')).last_report.firmware).toEqual({ build: 42 });
  });

  it('keeps the last body byte for byte as the box sent it, uncompressed, and replaces it when it changes', async () => {
    // Key order, spacing and an escape as a box wrote them: what jsonb would have normalized away.
    const devices = Array.from({ length: 40 }, (_, i) => `{"media_device_id": "cam-${i}", "media_device_status": "online", "media_device_name": "Gate \\u00e9 ${i}"}`);
    const first = `{"media_devices": [${devices.join(', ')}],  "mq_license_key": "RAW0001"}`;
    expect(Buffer.byteLength(first)).toBeGreaterThan(2048); // past the size Postgres would compress by default
    expect((await postReport(gateway.url, first)).status).toBe(200);
    const stored = async () =>
      (await gateway.sql.query(
        `select r.body, pg_column_compression(r.body) as compression from box_last_reports r join boxes b on b.id = r.box_id where b.license_key = 'RAW0001'`,
      )).rows[0];
    expect(await stored()).toEqual({ body: first, compression: null });

    const second = first.replace('"cam-0", "media_device_status": "online"', '"cam-0", "media_device_status": "offline"');
    expect((await postReport(gateway.url, second)).json).toMatchObject({ changes: 1 });
    expect(await stored()).toEqual({ body: second, compression: null });
  });

  it('writes numbers as text and drops objects in text fields with a warning', async () => {
    const res = await postReport(gateway.url, {
      dev_sno: 'TYPES0001',
      sub_devices: [{ ep_id: 12345, ep_ip: { v4: '10.0.0.1' }, ep_status: 'online', ep_type: 'rtsp', ep_location: 7 }],
    });
    expect(res.status).toBe(200);
    expect(res.json.warnings).toEqual([{ code: 'INVALID_FIELD', message: 'ep_ip should be a string; the value was ignored', path: 'sub_devices[0].ep_ip' }]);
    expect(await devicesOf('TYPES0001')).toMatchObject([{ external_id: '12345', ip: null, permission_id: '7' }]);
  });

  it('accepts a report with no Content-Type, or a JSON one with a charset', async () => {
    const noType = await postReport(gateway.url, { mq_license_key: 'CT0001', media_devices: [] }, { contentType: '' });
    expect(noType.status).toBe(200);
    const charset = await postReport(gateway.url, { mq_license_key: 'CT0002', media_devices: [] }, { contentType: 'application/json; charset=UTF-8' });
    expect(charset.status).toBe(200);
  });

  it('stores text that Postgres cannot hold as is (NUL, lone surrogates) safely', async () => {
    const body = '{"mq_license_key":"NUL0001","media_devices":[{"media_device_id":"a","media_device_name":"cam\\u0000era \\ud800","media_device_status":"online","media_device_type":"rtsp"}]}';
    const res = await postReport(gateway.url, body);
    expect(res.status).toBe(200);
    expect((await devicesOf('NUL0001'))[0].name).toBe('camera \uFFFD');
  });

  it('accepts a body that starts with a UTF-8 byte order mark, as strict JSON', async () => {
    const res = await postReport(gateway.url, `\uFEFF${JSON.stringify({ mq_license_key: 'BOM0001', media_devices: [] })}`);
    expect(res.status).toBe(200);
    expect(res.json.warnings).toEqual([]);
  });

  it('accepts an empty device list: the box has no devices', async () => {
    const res = await postReport(gateway.url, { mq_license_key: 'EMPTY0001', media_devices: [] });
    expect(res.json).toMatchObject({ devices: 0, changes: 1 });
  });

  it('takes the box address from X-Forwarded-For only when told to trust a proxy', async () => {
    const res = await postReport(gateway.url, { mq_license_key: 'XFF0001', media_devices: [] }, { headers: { 'x-forwarded-for': '10.9.8.7' } });
    expect(res.status).toBe(200);
    expect((await box('XFF0001')).address).toBe('127.0.0.1');
    const proxied = await startGateway({ trustProxy: true }, gateway.app.databaseUrl);
    try {
      await postReport(proxied.url, { mq_license_key: 'XFF0001', media_devices: [] }, { headers: { 'x-forwarded-for': '10.9.8.7, 172.16.0.1' } });
      expect((await box('XFF0001')).address).toBe('10.9.8.7');
    } finally {
      await proxied.close();
    }
  });
});
