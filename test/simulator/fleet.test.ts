import { describe, expect, it } from 'vitest';
import {
  createFleet,
  DEVICE_TYPES,
  licenseKeyFor,
  type FleetOptions,
  type NewFormatReport,
  type OldFormatReport,
} from '../../tools/simulator/fleet';
import { LatencyHistogram } from '../../tools/simulator/latency';
import { PrebuiltReport, ReportStream } from '../../tools/simulator/prebuilt';

// Field names exactly as in the vendor's two pages (shared/seeds/000_… newer, 001_… older).
const NEW_REPORT_FIELDS = ['media_devices', 'mq_license_key'];
const NEW_DEVICE_FIELDS = [
  'media_device_id',
  'media_device_ip',
  'media_device_name',
  'media_device_status',
  'media_device_type',
  'media_device_url',
  'permission_id',
];
const OLD_REPORT_FIELDS = [
  'dev_sno',
  'gateway_ext_data',
  'gateway_ip',
  'gateway_name',
  'gateway_port',
  'gateway_sn',
  'gateway_status',
  'sub_devices',
];
const OLD_DEVICE_FIELDS = ['ep_id', 'ep_ip', 'ep_location', 'ep_name', 'ep_status', 'ep_type'];
const EXT_DATA_FIELDS = ['cpu_usage', 'disk_usage', 'gateway_mac', 'memory_usage', 'sdk_version', 'sw_version', 'temperature'];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const IPV4 = /^192\.168\.\d{1,3}\.\d{1,3}$/;
const STATUSES = ['online', 'offline'];

function fleet(overrides: Partial<FleetOptions> = {}) {
  return createFleet({
    boxes: 4,
    devicesPerBox: 12,
    format: 'new',
    seed: 1,
    reportPeriodSeconds: 5,
    monitorUrl: 'http://127.0.0.1:4000/DeviceStatus',
    ...overrides,
  });
}

const sortedKeys = (value: object) => Object.keys(value).sort();

/** A device's URL must fit its type, as the newer page lists them. */
function urlFitsType(type: string, url: string, ip: string): boolean {
  switch (type) {
    case 'rtsp':
      return url.startsWith(`rtsp://${ip}:554/`);
    case 'photo':
      return url === ip;
    case 'file':
      return /^\/data\/.+\.mp4$/.test(url);
    case 'gb28181':
      return /^gb28181:\/\/\d{20}$/.test(url);
    default:
      return false;
  }
}

describe('licence keys', () => {
  it('are 24 characters like the vendor example, stable per box and seed', () => {
    expect(licenseKeyFor(0, 1)).toBe('SIM000000120240101000001');
    expect(licenseKeyFor(41, 7)).toHaveLength('ZKZCPI000120190807142601'.length);
    expect(licenseKeyFor(41, 7)).not.toBe(licenseKeyFor(41, 8));
  });
});

describe('newer report format', () => {
  it('has exactly the documented fields, with plausible values', () => {
    for (const box of fleet({ format: 'new' })) {
      const report = box.buildReport() as NewFormatReport;
      expect(sortedKeys(report)).toEqual(NEW_REPORT_FIELDS);
      expect(report.mq_license_key).toBe(box.licenseKey);
      expect(report.media_devices).toHaveLength(12);
      for (const device of report.media_devices) {
        expect(sortedKeys(device)).toEqual(NEW_DEVICE_FIELDS);
        expect(device.media_device_id).toMatch(UUID);
        expect(device.permission_id).toMatch(UUID);
        expect(device.media_device_ip).toMatch(IPV4);
        expect(device.media_device_name).not.toBe('');
        expect(STATUSES).toContain(device.media_device_status);
        expect(DEVICE_TYPES).toContain(device.media_device_type);
        expect(urlFitsType(device.media_device_type, device.media_device_url, device.media_device_ip)).toBe(true);
      }
    }
  });

  it('gives each device of a box its own id, ip and url (the box refuses duplicate urls)', () => {
    for (const box of fleet({ devicesPerBox: 300 })) {
      const devices = (box.buildReport() as NewFormatReport).media_devices;
      for (const field of ['media_device_id', 'media_device_ip', 'media_device_url'] as const) {
        expect(new Set(devices.map((d) => d[field])).size).toBe(devices.length);
      }
    }
  });

  it('mixes all four device types across a fleet', () => {
    const types = new Set(fleet({ boxes: 10 }).flatMap((box) => box.devices.map((d) => d.type)));
    expect([...types].sort()).toEqual([...DEVICE_TYPES].sort());
  });
});

describe('older report format', () => {
  it('has the documented fields plus the box-level gateway fields', () => {
    for (const box of fleet({ format: 'old' })) {
      const report = box.buildReport() as OldFormatReport;
      expect(sortedKeys(report)).toEqual(OLD_REPORT_FIELDS);
      expect(sortedKeys(report.gateway_ext_data)).toEqual(EXT_DATA_FIELDS);
      expect(report.dev_sno).toBe(box.licenseKey);
      expect(report.gateway_port).toBe(5555);
      expect(report.gateway_ip).toMatch(IPV4);
      for (const device of report.sub_devices) {
        expect(sortedKeys(device)).toEqual(OLD_DEVICE_FIELDS);
        expect(device.ep_id).toBe(`${report.dev_sno}__${device.ep_ip}`);
        expect(device.ep_location).toMatch(UUID);
        expect(STATUSES).toContain(device.ep_status);
        expect(DEVICE_TYPES).toContain(device.ep_type);
      }
      // The vendor's example sends ep_name empty; the simulator does so for some devices.
      expect(report.sub_devices.some((d) => d.ep_name === '')).toBe(true);
    }
  });

  it('lets the health figures drift a little between reports, within bounds', () => {
    const [box] = fleet({ format: 'old', boxes: 1 });
    const first = (box!.nextReport(0).report as OldFormatReport).gateway_ext_data;
    let last = first;
    let changed = false;
    for (let i = 0; i < 50; i++) {
      const next = (box!.nextReport(0).report as OldFormatReport).gateway_ext_data;
      expect(Math.abs(next.cpu_usage! - last.cpu_usage!)).toBeLessThanOrEqual(3.05);
      expect(Math.abs(next.temperature! - last.temperature!)).toBeLessThanOrEqual(0.55);
      for (const value of [next.cpu_usage!, next.memory_usage!, next.disk_usage!]) {
        expect(value).toBeGreaterThan(0);
        expect(value).toBeLessThan(100);
      }
      changed ||= next.cpu_usage !== first.cpu_usage;
      last = next;
    }
    expect(changed).toBe(true);
    expect(last.sw_version).toBe(first.sw_version);
    expect(last.gateway_mac).toBe(first.gateway_mac);
  });
});

describe('health figures over a day', () => {
  const FIGURES = ['cpu_usage', 'memory_usage', 'disk_usage', 'temperature'] as const;
  const BOUNDS = { cpu_usage: [1, 99], memory_usage: [10, 95], disk_usage: [5, 98], temperature: [35, 85] } as const;
  /** A day of reports every 20 s of each older box of a fleet: its gateway_ext_data, report by report. */
  const day = (seed: number) =>
    fleet({ seed, format: 'old', boxes: 6 }).map((box) => Array.from({ length: 4_320 }, () => (box.nextReport(0).report as OldFormatReport).gateway_ext_data));

  it('walk within their bounds, and now and then leave a figure out for a while, not as a zero', () => {
    const reports = day(7);
    let left = 0;
    let longest = 0;
    const outOfBounds: string[] = [];
    for (const box of reports) {
      const run = Object.fromEntries(FIGURES.map((f) => [f, 0]));
      for (const ext of box) {
        for (const figure of FIGURES) {
          const value = ext[figure];
          if (!(figure in ext)) {
            left++;
            longest = Math.max(longest, ++run[figure]!);
            continue;
          }
          run[figure] = 0;
          // Present is a number in bounds: a gap is never sent as null or 0.
          if (typeof value !== 'number' || value < BOUNDS[figure][0] || value > BOUNDS[figure][1]) outOfBounds.push(`${figure} ${value}`);
        }
      }
      expect(box.filter((ext) => FIGURES.every((f) => f in ext)).length).toBeGreaterThan(box.length * 0.6); // mostly whole
    }
    expect(outOfBounds).toEqual([]);
    expect(left).toBeGreaterThan(0);
    expect(longest).toBeGreaterThan(1); // a gap lasts, as a failing reading does
    expect(left).toBeLessThan(reports.length * 4_320 * 4 * 0.1);
  });

  it('are the same for the same seed, figure gaps included, and differ for another', () => {
    expect(day(7)).toEqual(day(7));
    expect(day(8)).not.toEqual(day(7));
  });
});

describe('determinism', () => {
  it('builds the same fleet and the same report sequence from the same seed', () => {
    const run = (seed: number) =>
      fleet({ seed, format: 'mixed' }).map((box) => [1, 2, 3].map(() => JSON.stringify(box.nextReport(0.3).report)));
    expect(run(1)).toEqual(run(1));
    expect(run(2)).not.toEqual(run(1));
  });

  it('keeps a box the same whatever the fleet size', () => {
    const small = fleet({ boxes: 2 })[1]!.buildReport();
    const large = fleet({ boxes: 20 })[1]!.buildReport();
    expect(large).toEqual(small);
  });
});

describe('status flips', () => {
  it('flip each device with roughly the given probability per report', () => {
    const boxes = fleet({ boxes: 100, devicesPerBox: 10 });
    const rate = 0.05;
    const reports = 50;
    let flips = 0;
    for (const box of boxes) for (let i = 0; i < reports; i++) flips += box.advance(rate).length;
    const expected = boxes.length * 10 * reports * rate; // 2500; the standard deviation is about 49
    expect(flips).toBeGreaterThan(expected * 0.9);
    expect(flips).toBeLessThan(expected * 1.1);
  });

  it('bring devices back online as well as taking them offline', () => {
    const [box] = fleet({ boxes: 1, devicesPerBox: 20 });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      for (const index of box!.advance(0.1)) seen.add(`${index}:${box!.devices[index]!.status}`);
    }
    expect([...seen].some((s) => s.endsWith(':online'))).toBe(true);
    expect([...seen].some((s) => s.endsWith(':offline'))).toBe(true);
  });

  it('do not happen at rate 0, and the first report is the initial state', () => {
    const [box] = fleet({ boxes: 1 });
    const before = JSON.stringify(box!.buildReport());
    const first = box!.nextReport(1); // the first report has nothing to flip from yet
    expect(first.flipped).toEqual([]);
    expect(JSON.stringify(first.report)).toBe(before);
    expect(box!.nextReport(0).flipped).toEqual([]);
    expect(JSON.stringify(box!.buildReport())).toBe(before);
  });
});

describe('mixed format', () => {
  it('alternates boxes between the newer and the older format', () => {
    const boxes = fleet({ boxes: 6, format: 'mixed' });
    expect(boxes.map((b) => b.format)).toEqual(['new', 'old', 'new', 'old', 'new', 'old']);
    expect(boxes.map((b) => ('mq_license_key' in b.buildReport() ? 'new' : 'old'))).toEqual(boxes.map((b) => b.format));
  });
});

describe('runtime settings', () => {
  it('reads period and URL from plain fields, so they can change while running', () => {
    const [box] = fleet({ boxes: 1, reportPeriodSeconds: 10 });
    for (let i = 0; i < 20; i++) {
      const delay = box!.nextDelayMs();
      expect(delay).toBeGreaterThanOrEqual(9_000);
      expect(delay).toBeLessThanOrEqual(11_000);
    }
    box!.reportPeriodSeconds = 1;
    box!.monitorUrl = 'http://127.0.0.1:9528/DeviceStatus';
    expect(box!.nextDelayMs()).toBeLessThanOrEqual(1_100);
    expect(box!.firstDelayMs()).toBeLessThan(1_000);
  });
});

/** A pre-built body says null for a figure the box leaves out (its slot cannot go): as the box builds it, without them. */
function withoutNulls(report: Record<string, unknown>) {
  const ext = report.gateway_ext_data as Record<string, unknown> | undefined;
  if (!ext) return report;
  return { ...report, gateway_ext_data: Object.fromEntries(Object.entries(ext).filter(([, value]) => value !== null)) };
}

describe('pre-built report bodies', () => {
  it('parse to the same report the box builds, in both formats, as statuses change', () => {
    for (const box of fleet({ format: 'mixed', devicesPerBox: 16 })) {
      const prebuilt = new PrebuiltReport(box);
      for (let i = 0; i < 30; i++) {
        expect(withoutNulls(JSON.parse(prebuilt.body().toString('utf8')))).toEqual(box.buildReport());
        prebuilt.advance(0.2);
      }
    }
  });

  it('send null for a figure the box leaves out, which the gateway reads as absent too', () => {
    const [box] = fleet({ format: 'old', boxes: 1 });
    const prebuilt = new PrebuiltReport(box!);
    prebuilt.advance(0);
    box!.silentFigures.add('temperature');
    prebuilt.advance(0);
    const ext = JSON.parse(prebuilt.body().toString('utf8')).gateway_ext_data;
    expect(ext.temperature).toBeNull();
    expect({ ...ext, temperature: undefined }).toEqual({ ...(box!.buildReport() as OldFormatReport).gateway_ext_data, temperature: undefined });
  });

  it('are copies, so a body in flight is not changed by the next report', () => {
    const [box] = fleet({ boxes: 1 });
    const prebuilt = new PrebuiltReport(box!);
    const body = prebuilt.body();
    const before = body.toString('utf8');
    prebuilt.advance(1);
    expect(body.toString('utf8')).toBe(before);
    expect(prebuilt.body().toString('utf8')).not.toBe(before);
  });

  it('come round-robin, the first pass unchanged, counting the changes they carry', () => {
    const boxes = fleet({ boxes: 3, format: 'mixed' });
    const stream = new ReportStream(boxes, 0.5);
    const keyOf = (body: Buffer) => {
      const report = JSON.parse(body.toString('utf8')) as { mq_license_key?: string; dev_sno?: string };
      return report.mq_license_key ?? report.dev_sno;
    };
    const firstPass = [stream.next(), stream.next(), stream.next()];
    expect(firstPass.map((r) => r.changes)).toEqual([0, 0, 0]);
    expect(firstPass.map((r) => keyOf(r.body))).toEqual(boxes.map((b) => b.licenseKey));
    let changes = 0;
    for (let i = 0; i < 30; i++) changes += stream.next().changes;
    expect(changes).toBeGreaterThan(0);
    expect(stream.changes).toBe(changes);
  });
});

describe('latency histogram', () => {
  it('gives percentiles within about 1% and the exact maximum', () => {
    const histogram = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) histogram.record(ms);
    expect(histogram.percentile(0.5)).toBeGreaterThanOrEqual(495);
    expect(histogram.percentile(0.5)).toBeLessThanOrEqual(506);
    expect(histogram.percentile(0.99)).toBeGreaterThanOrEqual(985);
    expect(histogram.percentile(0.99)).toBeLessThanOrEqual(1000);
    expect(histogram.maxMs).toBe(1000);
    expect(new LatencyHistogram().percentile(0.5)).toBe(0);
  });
});
