import { hash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { devicesHash, type ReportedDevice } from '../../src/ingest/report';

// boxes.devices_hash is compared across replicas and with what earlier versions stored, so its
// definition must not change with the way it is computed: SHA-1 (base64) of each device's fields,
// length-prefixed, in id order, as one UTF-8 text.
const field = (value: string | null) => (value === null ? '-' : `${value.length}:${value}`);
function byDefinition(devices: readonly ReportedDevice[]): string {
  const sorted = [...devices].sort((a, b) => (a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0));
  const text = sorted
    .map((d) => `${field(d.externalId)}${field(d.name)}${field(d.ip)}${d.type}|${field(d.url)}${field(d.permissionId)}${d.status}|${field(d.reportedStatus)}${field(d.reportedType)}`)
    .join('');
  return hash('sha1', text, 'base64');
}

describe('devicesHash', () => {
  it('is the hash of its definition, for any list in any order, devices shared between lists or not (property, fixed seed)', () => {
    // Lone surrogates and the separators themselves included: each device's part is encoded on its own.
    const text = fc.string({ unit: fc.constantFrom('a', 'Z', '界', '😀', '\ud800', '\udc00', '-', ':', '|', '0', ' ') });
    const device = fc.record({
      externalId: text,
      name: fc.option(text),
      ip: fc.option(text),
      type: fc.constantFrom('rtsp', 'photo', 'file', 'gb28181', 'unknown'),
      url: fc.option(text),
      permissionId: fc.option(text),
      status: fc.constantFrom('online', 'offline', 'unknown'),
      reportedStatus: fc.option(text),
      reportedType: fc.option(text),
    }) as fc.Arbitrary<ReportedDevice>;
    const list = fc.uniqueArray(device.map((d) => Object.freeze(d)), { selector: (d) => d.externalId, maxLength: 8 });
    fc.assert(
      fc.property(list, fc.nat(), (devices, seed) => {
        expect(devicesHash(devices)).toBe(byDefinition(devices));
        // The same device objects again, reordered, with one status changed as a template read does.
        const next = [...devices].reverse();
        if (next.length > 0) next[seed % next.length] = Object.freeze({ ...next[seed % next.length]!, status: 'offline' as const });
        expect(devicesHash(next)).toBe(byDefinition(next));
      }),
      { seed: 20261122, numRuns: 500 },
    );
  });

  it('reads a device that is not frozen afresh each time', () => {
    const device = { externalId: 'a', name: null, ip: null, type: 'rtsp', url: null, permissionId: null, status: 'online', reportedStatus: null, reportedType: null } as ReportedDevice;
    const before = devicesHash([device]);
    (device as { status: string }).status = 'offline';
    expect(devicesHash([device])).not.toBe(before);
    expect(devicesHash([device])).toBe(byDefinition([device]));
  });

  it('does not depend on the order of the list', () => {
    const a = Object.freeze({ externalId: 'a', name: '前门', ip: null, type: 'rtsp', url: 'rtsp://a', permissionId: null, status: 'online', reportedStatus: null, reportedType: null } as const);
    const b = Object.freeze({ ...a, externalId: 'b', status: 'offline' } as const);
    expect(devicesHash([a, b])).toBe(devicesHash([b, a]));
    expect(devicesHash([a, b])).not.toBe(devicesHash([a, { ...b, status: 'online' }]));
  });
});
