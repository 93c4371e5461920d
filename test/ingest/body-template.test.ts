import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReportReader } from '../../src/ingest/report-reader';
import type { Report, ReportedDevice } from '../../src/ingest/report';

// The body template (src/ingest/body-template.ts) as ReportReader uses it: every shortcut must read as a whole read does.

const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('ReportReader: bodies that differ from the last only in device statuses and health figures', () => {
  const older = (key: string, ext: unknown, status: unknown = 'online') => ({
    dev_sno: key,
    sub_devices: [
      { ep_id: `${key}__10.0.0.1`, ep_ip: '10.0.0.1', ep_status: status, ep_type: 'rtsp', ep_name: '门口 "east" {cam}' },
      { ep_id: `${key}__10.0.0.2`, ep_ip: '10.0.0.2', ep_status: 'online', ep_type: 'photo', ep_name: 'gateway_ext_data: "x"' },
    ],
    gateway_name: 'box',
    gateway_ext_data: ext,
  });
  /** What a reader that never saw the box makes of `bytes`: the reference every shortcut must match. */
  const fresh = (bytes: Buffer) => {
    try {
      return new ReportReader({ maxDevices: 10 }).read(bytes);
    } catch (error) {
      return error;
    }
  };
  /** Every device list read, by its hash: what a Report's statusChanges are checked against. */
  const lists = new Map<string, readonly ReportedDevice[]>();
  /**
   * What `reader` makes of `bytes`. A Report it says has an earlier device list with some statuses
   * changed (statusChanges) must be that list, found by hash among those read, with exactly those
   * statuses changed. The rest must equal a whole read, so statusChanges is left out of the comparison.
   */
  const read = (reader: ReportReader, bytes: Buffer) => {
    let report: Report;
    try {
      report = reader.read(bytes);
    } catch (error) {
      return error;
    }
    lists.set(report.devicesHash, report.devices);
    const { statusChanges, ...rest } = report;
    if (statusChanges) {
      const before = lists.get(statusChanges.previousDevicesHash);
      expect(before).toBeDefined();
      expect(statusChanges.changed.length).toBeGreaterThan(0);
      const changedById = new Map(statusChanges.changed.map((c) => [c.device.externalId, c]));
      expect(changedById.size).toBe(statusChanges.changed.length);
      for (const { device, from } of statusChanges.changed) {
        const was = before!.find((d) => d.externalId === device.externalId);
        expect(was).toEqual({ ...device, status: from });
        expect(from).not.toBe(device.status);
      }
      expect(before!.map((d) => changedById.get(d.externalId)?.device ?? d)).toEqual(report.devices);
    }
    return rest;
  };

  it('parses only the new figures, and the Report equals a whole read', () => {
    const reader = new ReportReader({ maxDevices: 10 });
    const firstBody = body(older('RR-OLD-0000000001', { cpu_usage: 10, sw_version: '1.2' }));
    const first = reader.read(firstBody);
    const nextBody = body(older('RR-OLD-0000000001', { cpu_usage: 11, sw_version: '1.2', note: 'a } b { "c' }));
    const next = reader.read(nextBody);
    expect(next.devices).toBe(first.devices); // the shortcut: the device list was not read again
    expect(next.gatewayExtData).toEqual({ cpu_usage: 11, sw_version: '1.2', note: 'a } b { "c' });
    expect(next.rawBody).toBe(nextBody);
    expect(next.statusChanges).toBeUndefined();
    expect(read(reader, nextBody)).toEqual(fresh(nextBody));
    expect(Object.isFrozen(next)).toBe(true);
    // A change outside the figures is read whole.
    const offline = reader.read(body(older('RR-OLD-0000000001', { cpu_usage: 11 }, 'offline')));
    expect(offline.devices[0]!.status).toBe('offline');
    expect(offline.devices).not.toBe(first.devices);
  });

  it('reads the body whole when the figures are not one storable object, and answers as a whole read does', () => {
    const key = 'RR-OLD-0000000002';
    const [prefix, suffix] = JSON.stringify(older(key, 0)).split('"gateway_ext_data":0');
    const withMiddle = (middle: string | Buffer) => Buffer.concat([Buffer.from(`${prefix}"gateway_ext_data":`), Buffer.from(middle), Buffer.from(suffix!)]);
    const middles: Array<string | Buffer> = [
      'null', '[1,2]', '"text"', '7', // not an object: stored as absent, with a warning
      '{"a":1},"gateway_name":"other"', // two fields, not one value
      '{"a":1', '{"a":1}}', // not JSON
      '{"a":"\\u0000"}', // Postgres refuses NUL: cleaned by the whole read
      `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`, // deeper than a report may nest
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), // not UTF-8
      ' { "a" : [ { "b" : "}" } ] } ', // one object with spaces and braces in strings: the shortcut
    ];
    for (const middle of middles) {
      const reader = new ReportReader({ maxDevices: 10 });
      const first = reader.read(withMiddle('{"cpu_usage":1}'));
      const bytes = withMiddle(middle);
      expect(read(reader, bytes), String(middle)).toEqual(fresh(bytes));
      // Only the last middle takes the shortcut (the device list kept); the others are read whole (or refused).
      const shortcut = (() => {
        try {
          return reader.read(bytes).devices === first.devices;
        } catch {
          return false;
        }
      })();
      expect(shortcut, String(middle)).toBe(middle === middles.at(-1));
    }
  });

  it('reads a new device status without parsing the body again, and only where a whole read keeps it', () => {
    const reader = new ReportReader({ maxDevices: 10 });
    // `"online" ,` padded as the simulator writes it; a duplicate key (the parse keeps the last); a
    // number where a slot's marker could be; a status inside the figures, which is theirs.
    const make = (a: string, b1: string, b2: string, c: string, cpu: number) =>
      Buffer.from(
        `{"dev_sno":"RR-STATUS-0000001","sub_devices":[` +
          `{"ep_id":"a","ep_status":"${a}" ,"ep_type":"rtsp"},` +
          `{"ep_id":"b","ep_status":"${b1}","ep_status":"${b2}","ep_type":"rtsp"},` +
          `{"ep_id":"n","ep_status":0,"ep_type":"rtsp"},` +
          `{"ep_id":"c","ep_type":"rtsp","ep_status":"${c}"}],` +
          `"gateway_ext_data":{"cpu_usage":${cpu},"ep_status":"online"}}`,
      );
    const first = read(reader, make('online', 'online', 'online', 'online', 1)) as Report;
    const steps: Array<[Parameters<typeof make>, boolean]> = [
      [['offline', 'online', 'online', 'online', 1], true], // a: longer token, same padding
      [['offline', 'online', 'offline', 'offline', 2], true], // b's kept one and c, with new figures
      [['offline', 'offline', 'offline', 'offline', 2], false], // b's shadowed one: bytes a template keeps
      [['online', 'offline', 'offline', 'ONLINE', 3], false], // not one a template reads: a warning
      [['online', 'offline', 'offline', 'online', 3], false], // after a whole read, from a new template
      [['online', 'offline', 'online', 'online', 3], true],
    ];
    let previous: { devices: unknown[] } = first;
    for (const [args, shortcut] of steps) {
      const bytes = make(...args);
      const got = read(reader, bytes) as { devices: unknown[] };
      expect(got, args.join()).toEqual(fresh(bytes));
      // A template's read keeps the devices whose status stayed; a whole read makes them all anew.
      expect(got.devices.some((device, i) => device === previous.devices[i]), args.join()).toBe(shortcut);
      previous = got;
    }
  });

  it('reads the statuses after the figures where they moved, when the figures changed length', () => {
    const reader = new ReportReader({ maxDevices: 10 });
    const make = (cpu: number, status: string) =>
      Buffer.from(`{"dev_sno":"RR-STATUS-0000002","gateway_name":"past the first 64 bytes","gateway_ext_data": {"cpu_usage":${cpu}} ,"sub_devices":[{"ep_id":"a","ep_status":"online"},{"ep_id":"b","ep_status":"${status}"}]}`);
    let previous = read(reader, make(1, 'online')) as { devices: unknown[] };
    for (const [cpu, status] of [[100, 'online'], [100, 'offline'], [7, 'offline'], [7, 'online']] as const) {
      const bytes = make(cpu, status);
      const got = read(reader, bytes) as { devices: unknown[] };
      expect(got, `${cpu} ${status}`).toEqual(fresh(bytes));
      expect(got.devices[0], `${cpu} ${status}`).toBe(previous.devices[0]); // read with the template each time
      previous = got;
    }
  });

  it('takes no shortcut where the figures cannot be found for certain', () => {
    const key = 'RR-OLD-0000000003';
    const cases = [
      // the key written twice at the top level: JSON.parse keeps the last
      (ext: string) => `{"dev_sno":"${key}","sub_devices":[],"gateway_ext_data":{"first":true},"gateway_name":"n","gateway_ext_data":${ext}}`,
      // the key escaped once
      (ext: string) => `{"dev_sno":"${key}","sub_devices":[],"gateway_name":"a long enough name","gateway\\u005fext_data":${ext}}`,
      // the key as a nested one, the real one escaped
      (ext: string) => `{"dev_sno":"${key}","sub_devices":[{"ep_id":"x","ep_name":{"gateway_ext_data":${ext}}}],"gateway\\u005fext_data":{"n":1}}`,
    ];
    for (const make of cases) {
      const reader = new ReportReader({ maxDevices: 10 });
      reader.read(Buffer.from(make('{"cpu":1}')));
      const bytes = Buffer.from(make('{"cpu":2}'));
      expect(read(reader, bytes)).toEqual(fresh(bytes));
    }
  });

  it('matches a whole read for any sequence of bodies (property, fixed seed)', () => {
    const text = fc.string({ unit: fc.constantFrom('a', '"', '\\', '{', '}', '[', ']', ',', ':', ' ', '界', '\u0000', '\ud800') });
    const extData = fc.oneof(
      { weight: 6, arbitrary: fc.dictionary(fc.constantFrom('cpu_usage', 'memory_usage', 'note', 'sw_version', 'gateway_ext_data', '__proto__'), fc.oneof(fc.integer(), text, fc.jsonValue({ maxDepth: 3 }))) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    );
    // What else the body says: each part mostly the same as the step before (undefined), as in a box's next report.
    const sometimes = <T,>(...values: T[]) => fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...values) });
    const step = fc.record({
      ext: extData,
      // mostly the two a template reads; the others (a warning each, a number where a slot's marker could be) read whole
      status: fc.oneof(
        { weight: 2, arbitrary: fc.constant(undefined) },
        { weight: 2, arbitrary: fc.constantFrom<unknown>('online', 'offline') },
        { weight: 1, arbitrary: fc.constantFrom<unknown>('ONLINE', 'weird', 0, 1) },
      ),
      // fields after the figures; a second gateway_ext_data there is the one JSON.parse keeps
      extra: sometimes('', ',"gateway_sn":"SN-1"', ',"gateway_sn":"SN-2"', ',"gateway_ext_data":{"shadowed":true}'),
      spaces: sometimes(0, 2),
    });
    let shortcuts = 0;
    let statusShortcuts = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), (steps) => {
        const reader = new ReportReader({ maxDevices: 10 });
        let previous: unknown;
        let current: { status: unknown; extra: string; spaces: number } = { status: 'online', extra: '', spaces: 0 };
        for (const s of steps) {
          current = { status: s.status ?? current.status, extra: s.extra ?? current.extra, spaces: s.spaces ?? current.spaces };
          const json = JSON.stringify(older('RR-OLD-PROPERTY-1', s.ext, current.status), null, current.spaces);
          const bytes = Buffer.from(`${json.slice(0, -1)}${current.extra}}`);
          const got = read(reader, bytes);
          expect(got).toEqual(fresh(bytes));
          const devices = (report: unknown) => (report as { devices?: unknown } | undefined)?.devices;
          // The shortcuts: the device list kept (only the figures new), or its unchanged devices kept (a status new).
          const now = devices(got) as unknown[] | undefined;
          const before = devices(previous) as unknown[] | undefined;
          if (got !== previous && now && before && (now === before || now.some((device, i) => device === before[i]))) shortcuts++;
          if (now && before && now !== before && now.some((device, i) => device === before[i])) statusShortcuts++;
          previous = got;
        }
      }),
      { seed: 6_2026_11, numRuns: 500 },
    );
    expect(shortcuts).toBeGreaterThan(120); // the property exercised the shortcuts, not only whole reads
    expect(statusShortcuts).toBeGreaterThan(15); // of them, a status changed (the figures, mostly new at every step, too)
  }, 120_000); // CPU-bound: about 9 s alone, several times that beside the database tests on two cores
});
