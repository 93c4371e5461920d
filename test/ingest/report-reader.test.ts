import { describe, expect, it } from 'vitest';
import { ReportError } from '../../src/ingest/errors';
import { ReportReader } from '../../src/ingest/report-reader';

const body = (value: unknown) => Buffer.from(JSON.stringify(value));
const newer = (key: string, status = 'online') => ({
  mq_license_key: key,
  media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }],
});

describe('ReportReader', () => {
  it('returns the same frozen Report for the same bytes, and a new one when they change', () => {
    const reader = new ReportReader({ maxDevices: 10 });
    const first = reader.read(body(newer('RR-0001')));
    expect(reader.read(body(newer('RR-0001')))).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.devices) && Object.isFrozen(first.warnings)).toBe(true);
    const changed = reader.read(body(newer('RR-0001', 'offline')));
    expect(changed).not.toBe(first);
    expect(changed.devices[0]!.status).toBe('offline');
    // Only each box's last body is kept.
    expect(reader.read(body(newer('RR-0001')))).not.toBe(first);
  });

  it('keeps at most `capacity` boxes and body bytes, dropping the oldest', () => {
    const reader = new ReportReader({ maxDevices: 10 }, { reports: 2, bytes: 1e6 });
    const a = reader.read(body(newer('RR-A')));
    const b = reader.read(body(newer('RR-B')));
    reader.read(body(newer('RR-C')));
    expect(reader.read(body(newer('RR-B')))).toBe(b);
    expect(reader.read(body(newer('RR-A')))).not.toBe(a);

    const size = body(newer('RR-D')).length;
    const small = new ReportReader({ maxDevices: 10 }, { reports: 100, bytes: 2.5 * size });
    const d = small.read(body(newer('RR-D')));
    const e = small.read(body(newer('RR-E')));
    small.read(body(newer('RR-F'))); // a third would pass the byte budget: the oldest goes
    expect(small.read(body(newer('RR-E')))).toBe(e);
    expect(small.read(body(newer('RR-D')))).not.toBe(d);
  });

  it('reads lenient bodies and a byte order mark as before, and refuses bad ones every time', () => {
    const reader = new ReportReader({ maxDevices: 1 });
    const lenient = Buffer.from("{mq_license_key: 'RR-LENIENT', media_devices: [],}");
    const report = reader.read(lenient);
    expect(report.warnings.map((w) => w.code)).toEqual(['LENIENT_JSON']);
    expect(reader.read(lenient)).toBe(report);
    expect(JSON.parse(report.rawBody.toString())).toEqual({ mq_license_key: 'RR-LENIENT', media_devices: [] });

    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body(newer('RR-BOM'))]);
    expect(reader.read(withBom).rawBody.toString()).toBe(JSON.stringify(newer('RR-BOM')));

    const tooMany = body({ mq_license_key: 'RR-MANY', media_devices: [{ media_device_id: 'a' }, { media_device_id: 'b' }] });
    for (let i = 0; i < 2; i++) expect(() => reader.read(tooMany)).toThrow(ReportError);
  });
});

describe('ReportReader: boxes whose bodies open with the same bytes', () => {
  it('tells them apart byte for byte, whichever reported last', () => {
    const reader = new ReportReader({ maxDevices: 10 });
    const opening = 'x'.repeat(80); // the first 64 bytes alike: the licence key comes later
    const bodyOf = (key: string, cpu: number) =>
      Buffer.from(JSON.stringify({ gateway_name: opening, dev_sno: key, sub_devices: [{ ep_id: `${key}-cam`, ep_status: 'online', ep_type: 'rtsp' }], gateway_ext_data: { cpu } }));
    const seen = new Map<string, unknown>();
    for (const [key, cpu] of [['RR-ALIKE-A', 1], ['RR-ALIKE-B', 1], ['RR-ALIKE-A', 1], ['RR-ALIKE-B', 2], ['RR-ALIKE-A', 3], ['RR-ALIKE-A', 3], ['RR-ALIKE-B', 2]] as const) {
      const report = reader.read(bodyOf(key, cpu));
      expect(report).toEqual(new ReportReader({ maxDevices: 10 }).read(bodyOf(key, cpu)));
      expect(report.licenseKey).toBe(key);
      if (seen.get(`${key}:${cpu}`)) expect(report).toBe(seen.get(`${key}:${cpu}`)); // the same bytes again: the same Report
      seen.set(`${key}:${cpu}`, report);
    }
  });
});
