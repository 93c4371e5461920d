import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveEvent } from '../../src/live/event-hub';
import { createTestDatabase } from '../helpers/database';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { waitForRefusedSweep, waitForSweeps } from '../helpers/sweeps';
import { until } from '../helpers/wait';

// Two gateways on one database, as two replicas behind a load balancer.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let a: TestGateway;
let b: TestGateway;

const fast = { eventPollIntervalMs: 60_000, sweepIntervalMs: 100, offlinePeriods: 1, offlineMinSeconds: 1, defaultReportPeriodSeconds: 1 };

beforeAll(async () => {
  database = await createTestDatabase();
  a = await startGateway(fast, database.url);
  b = await startGateway(fast, database.url);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
});

const report = (key: string, status: string) => ({
  mq_license_key: key,
  media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }],
});

async function take(iterator: AsyncIterator<LiveEvent>, count: number, timeoutMs = 5000): Promise<LiveEvent[]> {
  const got: LiveEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count) {
    const next = await Promise.race([
      iterator.next(),
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now()))),
    ]);
    if (next === 'timeout') throw new Error(`got ${got.length} of ${count} events: ${JSON.stringify(got.map((e) => e.id))}`);
    if (next.done) break;
    got.push(next.value);
  }
  return got;
}

describe('events between replicas', () => {
  it('an ingest on A reaches a subscriber on B by NOTIFY, with its device and box', async () => {
    const onB = b.app.events.subscribe((e) => e.box.licenseKey === 'HUB-AB', 100);
    await postReport(a.url, report('HUB-AB', 'online'));
    const events = await take(onB, 2);
    expect(events.map((e) => [e.device?.externalId ?? null, e.fromStatus, e.toStatus])).toEqual([
      [null, null, 'online'],
      ['cam', null, 'online'],
    ]);
    expect(events[1]!.box.licenseKey).toBe('HUB-AB');
    await onB.return!();
  });

  it('delivers in id order with no gap while both replicas ingest', async () => {
    const seen = b.app.events.subscribe((e) => e.box.licenseKey.startsWith('HUB-ORDER-'), 10_000);
    const posts = [];
    for (let i = 0; i < 40; i++) posts.push(postReport(i % 2 ? a.url : b.url, report(`HUB-ORDER-${i % 8}`, i % 3 ? 'online' : 'offline')));
    const answers = await Promise.all(posts);
    const expected = answers.reduce((n, r) => n + r.json.changes, 0);
    const events = await take(seen, expected);
    const ids = events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    const { rows } = await a.sql.query(
      `select e.id from status_events e join boxes b on b.id = e.box_id where b.license_key like 'HUB-ORDER-%' order by e.id`,
    );
    expect(ids).toEqual(rows.map((r) => r.id));
    await seen.return!();
  });

  it('a subscriber that falls behind its buffer is ended with a clear error; others keep receiving', async () => {
    const slow = a.app.events.subscribe((e) => e.box.licenseKey === 'HUB-SLOW', 2);
    const fine = a.app.events.subscribe((e) => e.box.licenseKey === 'HUB-SLOW', 100);
    for (const status of ['online', 'offline', 'online', 'offline']) await postReport(a.url, report('HUB-SLOW', status));
    // Once the fine one has all five, the hub has handed the slow one all five too (it reads none).
    expect(await take(fine, 5)).toHaveLength(5);
    await expect(take(slow, 5)).rejects.toThrow('The subscriber fell 2 events behind and was disconnected; resubscribe from your last cursor.');
    await fine.return!();
  });
});

describe('a subscriber replaying from the table', () => {
  it('laps instead of being cut when its live buffer fills meanwhile, and goes live once nothing was dropped', async () => {
    const key = 'HUB-LAP';
    const filter = { key: 'lap', accepts: (e: LiveEvent) => e.box.licenseKey === key };
    const replaying = a.app.events.subscribeFrom(filter, 2, { replaying: true });
    const fine = a.app.events.subscribe((e) => e.box.licenseKey === key, 100);
    // Five events while "replaying": the buffer of two fills, the events are dropped, not the subscriber.
    for (const status of ['online', 'offline', 'online', 'offline']) await postReport(a.url, report(key, status));
    const five = await take(fine, 5);
    const boundary = replaying.replayed();
    expect(boundary).toBeGreaterThanOrEqual(five[4]!.id); // the replay goes on from the table to here
    expect(replaying.replayed()).toBeUndefined(); // nothing dropped since: live from now on
    await postReport(a.url, report(key, 'online'));
    const [sixth] = await take(fine, 1);
    const [live] = await take(replaying.events, 1);
    expect(live!.id).toBe(sixth!.id); // nothing at or before the boundary comes live
    // Live now: a full buffer ends it as a slow consumer.
    for (const status of ['offline', 'online', 'offline']) await postReport(a.url, report(key, status));
    await take(fine, 3);
    await expect(take(replaying.events, 5)).rejects.toThrow('The subscriber fell 2 events behind');
    await fine.return!();
  });
});

describe('offline sweep', () => {
  it('runs on exactly one replica, marks a silent box offline once, and back online with its next report', async () => {
    await waitForRefusedSweep(a.sql); // one replica holds the sweep, the other asked and was refused
    expect([a.app.sweeper.isLeader, b.app.sweeper.isLeader].filter(Boolean)).toHaveLength(1);
    const events = a.app.events.subscribe((e) => e.box.licenseKey === 'HUB-SILENT' && e.deviceId === null, 100);
    await postReport(b.url, report('HUB-SILENT', 'online'));
    const [first, offline] = await take(events, 2, 5000);
    expect([first!.fromStatus, first!.toStatus]).toEqual([null, 'online']);
    expect([offline!.fromStatus, offline!.toStatus]).toEqual(['online', 'offline']);
    // Several more sweeps pass: still exactly one offline event.
    await waitForSweeps(a.sql, 3);
    const { rows } = await a.sql.query(
      `select count(*)::int as n from status_events e join boxes b on b.id = e.box_id where b.license_key = 'HUB-SILENT' and e.to_status = 'offline'`,
    );
    expect(rows[0].n).toBe(1);
    const back = await postReport(a.url, report('HUB-SILENT', 'online'));
    expect(back.json.changes).toBe(1);
    const [online] = await take(events, 1);
    expect([online!.fromStatus, online!.toStatus]).toEqual(['offline', 'online']);
    await events.return!();
  });

  it('moves to the other replica when the sweeping one stops', async () => {
    const leader = a.app.sweeper.isLeader ? a : b;
    const other = leader === a ? b : a;
    await leader.app.sweeper.stop();
    await until(() => other.app.sweeper.isLeader, 'the other replica to take the sweep', { timeoutMs: 3_000 });
    leader.app.sweeper.start();
  });
});
