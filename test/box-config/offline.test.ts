import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { until } from '../helpers/wait';
import { newerReport, post } from '../graphql/fleet-fixture';
import { closeFakeBoxes, configure, fakeBox, UpdateBoxMutation } from './operations';

// The period a box took is the one offline detection uses, from the sweep's next round.

let gateway: TestGateway;
beforeAll(async () => {
  // Three periods of 1 s, not the 30 s floor; the sweep every 100 ms.
  gateway = await startGateway({ offlineMinSeconds: 1, sweepIntervalMs: 100 });
});
afterAll(() => gateway?.close());
afterEach(closeFakeBoxes);

async function boxStatus(licenseKey: string) {
  const { rows } = await gateway.sql.query(
    `select b.status, b.last_report_at, (select min(e.at) from status_events e where e.box_id = b.id and e.device_id is null and e.to_status = 'offline') as offline_at
     from boxes b where b.license_key = $1`,
    [licenseKey],
  );
  return rows[0] as { status: string; last_report_at: Date; offline_at: Date | null };
}

it('a box configured to report every second goes offline 3 s after its last report, not before; one without a period does not', async () => {
  const box = await fakeBox();
  const { boxId } = await post(gateway, newerReport('OFF-CONFIGURED', [{ id: 'd1' }]));
  await post(gateway, newerReport('OFF-UNCONFIGURED', [{ id: 'd1' }]));
  await query(gateway.url, UpdateBoxMutation, { boxId, apiPort: box.port });

  // One report, no observed period: without a configured one it would be 3 x 60 s.
  expect(await configure(gateway, { boxId, reportPeriodSeconds: 1 })).toMatchObject({ __typename: 'ConfigureBoxSuccess', reportPeriodSeconds: 1 });

  let configured = await boxStatus('OFF-CONFIGURED');
  await until(async () => (configured = await boxStatus('OFF-CONFIGURED')).offline_at !== null, 'the configured box to go offline', { intervalMs: 50 });
  expect(configured.status).toBe('offline');
  const silentFor = configured.offline_at!.getTime() - configured.last_report_at.getTime();
  expect(silentFor).toBeGreaterThanOrEqual(3_000);
  // The sweep runs every 100 ms; the rest is slack for a busy machine.
  expect(silentFor).toBeLessThan(6_000);

  expect(await boxStatus('OFF-UNCONFIGURED')).toMatchObject({ status: 'online', offline_at: null });
});
