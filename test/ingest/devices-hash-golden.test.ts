import { describe, expect, it } from 'vitest';
import { devicesHash, type ReportedDevice } from '../../src/ingest/report';

// boxes.devices_hash written by earlier versions is compared with what this one computes: a fixed list
// must keep its fixed hash, however the function is rewritten (the value was also computed apart from
// the code, from the definition in devices-hash.test.ts).
const DEVICES: ReportedDevice[] = [
  { externalId: 'cam-2', name: '南门 gate', ip: '10.0.0.2', type: 'rtsp', url: 'rtsp://10.0.0.2/live', permissionId: null, status: 'offline', reportedStatus: '0', reportedType: 'RTSP' },
  { externalId: 'cam-1', name: 'Lobby', ip: '10.0.0.1', type: 'photo', url: null, permissionId: 'p-7', status: 'online', reportedStatus: null, reportedType: null },
  { externalId: 'cam-3', name: null, ip: null, type: 'unknown', url: null, permissionId: null, status: 'unknown', reportedStatus: 'sleeping', reportedType: 'thermal' },
];

describe('devicesHash golden values', () => {
  it('a fixed device list, in any order, hashes to a fixed string', () => {
    expect(devicesHash(DEVICES)).toBe('DR52TKepuCLDj8L+M6S5l4z7+wM=');
    expect(devicesHash([...DEVICES].reverse())).toBe('DR52TKepuCLDj8L+M6S5l4z7+wM=');
  });

  it('no devices hash to SHA-1 of the empty text', () => {
    expect(devicesHash([])).toBe('2jmj7l5rSw0yVb/vlWAYkK/YBwk=');
  });
});
