import { describe, expect, it } from 'vitest';
import { normalizeReport } from '../../src/ingest/report';
import { ReportReader } from '../../src/ingest/report-reader';
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

  it('sets only the statuses of a list this process stored last, and diffs it when that list is not the one committed', () => {
    // Read in turn as a box sends them: the second body differs only in a status, read with the template.
    const reader = new ReportReader({ maxDevices: 10 });
    const bodyOf = (key: string, status: string) =>
      Buffer.from(JSON.stringify({ mq_license_key: key, media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }] }));
    const readAs = (key: string, status: string): ReceivedReport => ({ report: reader.read(bodyOf(key, status)), receivedAt: new Date(0), address: null });
    const before = readAs('R-6', 'online');
    for (const key of ['R-7', 'R-8']) readAs(key, 'online');
    const [after6, after7, after8] = ['R-6', 'R-7', 'R-8'].map((key) => readAs(key, 'offline'));
    expect(after7!.report.statusChanges).toBeDefined();
    expect(after6!.report.statusChanges?.previousDevicesHash).toBe(before.report.devicesHash);
    const committed = committedAs(before).set('R-7', { rawHash: 'another body', devicesHash: 'another list' });
    const route = routeBatch([after6!, after7!, after8!], committed);
    // the stored list's statuses; R-7: from a list this process did not store last; R-8: nothing known, its own list expected.
    expect(route.unchanged.map(({ received, withBody, statusChanges }) => [received.report.licenseKey, withBody, statusChanges])).toEqual([
      ['R-6', true, after6!.report.statusChanges],
      ['R-8', true, undefined],
    ]);
    expect(route.toDiff).toEqual([after7]);
  });
});
