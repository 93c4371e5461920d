import { describe, expect, it } from 'vitest';
import { normalizeReport } from '../../src/ingest/report';
import { routeBatch, type CommittedHashes } from '../../src/ingest/store/apply-reports';
import type { ReceivedReport } from '../../src/ingest/store/outcome';

// Which path each report of a batch takes, from what this process committed last: no database.

function received(key: string, status = 'online', extra: Record<string, unknown> = {}): ReceivedReport {
  const text = JSON.stringify({ mq_license_key: key, media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }], ...extra });
  return { report: normalizeReport(JSON.parse(text), Buffer.from(text), { maxDevices: 10 }), receivedAt: new Date(0), address: null };
}

const committedAs = (...reports: ReceivedReport[]): CommittedHashes =>
  new Map(reports.map(({ report }) => [report.licenseKey, { rawHash: report.rawHash, devicesHash: report.devicesHash }]));

describe('routeBatch', () => {
  it('sends the same devices again, and an unknown box, by the one-statement path, the body only when it differs', () => {
    const same = received('R-1');
    const newBody = received('R-2', 'online', { note: 'a field the store does not read' });
    const unknown = received('R-3');
    const route = routeBatch([same, newBody, unknown], committedAs(same, received('R-2')));
    expect(route.toDiff).toEqual([]);
    expect(route.unchanged.map(({ received, withBody }) => [received.report.licenseKey, withBody])).toEqual([['R-1', false], ['R-2', true], ['R-3', true]]);
  });

  it('diffs a device list known to have changed, and every report of a box that reports twice in the batch', () => {
    const changed = received('R-4', 'offline');
    const twice = [received('R-5'), received('R-5', 'offline')];
    const route = routeBatch([changed, ...twice], committedAs(received('R-4')));
    expect(route.toDiff).toEqual([changed, ...twice]);
    expect(route.unchanged).toEqual([]);
  });
});
