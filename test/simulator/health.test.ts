import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleet, type FleetOptions, type OldFormatReport } from '../../tools/simulator/fleet';
import { runSimulator, SIMULATOR_DEFAULTS } from '../../tools/simulator/run';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';

// The simulator's health figures end to end: a fleet of older boxes reports to a real gateway, and
// Box.health answers what a replay of the same seed says the boxes sent, gaps included.

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway(); // start-up makes the partitions of the months around now
});
afterAll(() => gateway?.close());

// A string: typed documents are generated for test/graphql only.
const BOX_HEALTH = `
  query SimulatedBoxHealth($key: String!, $since: DateTime!) {
    box(licenseKey: $key) {
      health(since: $since, bucket: DAY) {
        reports
        cpu { min max samples }
        temperature { min max samples }
      }
    }
  }
`;
type Summary = { min: number; max: number; samples: number } | null;
type Bucket = { reports: number; cpu: Summary; temperature: Summary };

const REPORTS = 6;

describe('simulated health', () => {
  it('reaches Box.health as the boxes sent it: every report, each figure’s range, and a silent one as a gap', async () => {
    const fleetOptions: FleetOptions = { boxes: 3, devicesPerBox: 2, format: 'old', seed: 11, reportPeriodSeconds: 0.05, monitorUrl: `${gateway.url}/DeviceStatus` };
    const fleet = createFleet(fleetOptions);
    // The same seed replayed: what each box sends. Box 0's temperature fails from the start, as a box's reading can.
    const replay = createFleet(fleetOptions);
    for (const f of [fleet, replay]) f[0]!.silentFigures.add('temperature');
    const sent = replay.map((box) => Array.from({ length: REPORTS }, () => (box.nextReport(SIMULATOR_DEFAULTS.flipRate).report as OldFormatReport).gateway_ext_data));

    const since = new Date(Date.now() - 3_600_000).toISOString();
    const totals = await runSimulator({ ...SIMULATOR_DEFAULTS, url: fleetOptions.monitorUrl, ...fleetOptions, reportsPerBox: REPORTS, connections: 3 }, { fleet });
    expect(totals).toMatchObject({ sent: 3 * REPORTS, acked: 3 * REPORTS, failed: 0 });

    for (const [i, box] of fleet.entries()) {
      const res = await graphql(gateway.url, BOX_HEALTH, { key: box.licenseKey, since });
      expect(res.body.errors).toBeUndefined();
      const buckets = (res.body.data as { box: { health: Bucket[] } }).box.health;
      const stored = buckets.filter((b) => b.reports > 0); // one day, or two across midnight
      expect(stored.reduce((n, b) => n + b.reports, 0)).toBe(REPORTS);
      for (const figure of ['cpu', 'temperature'] as const) {
        const values = sent[i]!.flatMap((ext) => {
          const value = ext[figure === 'cpu' ? 'cpu_usage' : 'temperature'];
          return value === undefined ? [] : [value];
        });
        const summaries = stored.flatMap((b) => (b[figure] ? [b[figure]!] : []));
        expect(summaries.reduce((n, s) => n + s.samples, 0)).toBe(values.length);
        if (values.length === 0) continue; // never sent: null in every bucket, not zero
        expect(Math.min(...summaries.map((s) => s.min))).toBeCloseTo(Math.min(...values), 4);
        expect(Math.max(...summaries.map((s) => s.max))).toBeCloseTo(Math.max(...values), 4);
      }
    }
    expect(sent[0]!.filter((ext) => !('temperature' in ext)).length).toBeGreaterThan(0); // the gap was there to see
  });
});
