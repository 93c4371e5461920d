import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { decodeStatusEventCursor, encodeStatusEventCursor } from '../../src/graphql/cursors';
import { ensurePartitions } from '../../src/history/partitions';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { newerReport, olderReport, post } from './fleet-fixture';
import { graphql } from './generated';
import type { DevicesQuery as DevicesResult } from './generated/graphql';

// A small fleet made through the ingest route: two newer boxes, one older box with its gateway details,
// one removed box, a device that changed status, one that left its list, and some old history.
let gateway: TestGateway;
let newBoxId: string;
let oldBoxId: string;

beforeAll(async () => {
  gateway = await startGateway();
  newBoxId = (
    await post(
      gateway,
      newerReport('Q-NEW-1', [
        { id: 'n1', name: 'front door', ip: '192.168.1.10', url: 'rtsp://192.168.1.10:554/main' },
        { id: 'n2', name: 'gate', status: 'offline', type: 'photo', ip: '192.168.1.22', url: '192.168.1.22' },
        { id: 'n3', name: 'recording', type: 'file', ip: '127.0.0.1', url: '/data/test.mp4' },
        { id: 'n4', name: 'national', type: 'gb28181', ip: '192.168.1.30', url: 'gb28181://34020000001320000001' },
      ]),
    )
  ).boxId;
  // n2 comes online, n3 leaves the list.
  await post(
    gateway,
    newerReport('Q-NEW-1', [
      { id: 'n1', name: 'front door', ip: '192.168.1.10', url: 'rtsp://192.168.1.10:554/main' },
      { id: 'n2', name: 'gate', type: 'photo', ip: '192.168.1.22', url: '192.168.1.22' },
      { id: 'n4', name: 'national', type: 'gb28181', ip: '192.168.1.30', url: 'gb28181://34020000001320000001' },
    ]),
  );
  oldBoxId = (
    await post(
      gateway,
      olderReport('Q-OLD-1', [
        { id: 'Q-OLD-1__192.168.2.1', ip: '192.168.2.1', name: 'lobby' },
        { id: 'Q-OLD-1__192.168.2.2', ip: '192.168.2.2', name: 'yard', status: 'offline', type: 'photo' },
        { id: 'Q-OLD-1__192.168.2.3', ip: '192.168.2.3', name: 'thermal', status: 'error', type: 'thermal' },
      ]),
    )
  ).boxId;
  await post(gateway, newerReport('Q-NEW-2', [{ id: 'm1', name: 'dock' }, { id: 'm2', name: 'stairs' }]));
  await post(gateway, newerReport('Q-GONE', [{ id: 'g1', name: 'gone camera' }]));
  await gateway.sql.query(`update boxes set removed_at = now() where license_key = 'Q-GONE'`);
  // Old history of n1, as if it had been watched for days before (in months that need their partition).
  await ensurePartitions(gateway.sql, 'status_events', new Date('2024-01-01T00:00:00Z'), new Date('2024-01-31T00:00:00Z'));
  await gateway.sql.query(
    `insert into status_events (box_id, device_id, from_status, to_status, at)
     select d.box_id, d.id, e.from_status, e.to_status, e.at::timestamptz
     from devices d, (values ('online', 'offline', '2024-01-02T00:00:00Z'), ('offline', 'online', '2024-01-03T00:00:00Z')) as e(from_status, to_status, at)
     where d.external_id = 'n1'`,
  );
});
afterAll(() => gateway?.close());

const BoxesQuery = graphql(`
  query Boxes($first: Int, $after: String, $last: Int, $before: String, $filter: BoxFilter, $orderBy: BoxOrder) {
    boxes(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id licenseKey name status online reportFormat lastReportAt } }
    }
  }
`);

const BoxQuery = graphql(`
  query Box($id: ID, $licenseKey: String) {
    box(id: $id, licenseKey: $licenseKey) {
      id
      licenseKey
      name
      address
      status
      statusSince
      firstReportAt
      lastReportAt
      reportCount
      reportPeriodSeconds
      observedReportPeriodSeconds
      configuredReportPeriodSeconds
      reportFormat
      gateway { ip name status serialNumber port swVersion sdkVersion mac cpuUsage memoryUsage diskUsage temperature raw }
      deviceCounts { total online offline unknown removed byType { type total online offline unknown removed } }
      devices(first: 10, filter: { removed: null }, orderBy: { field: NAME }) {
        totalCount
        nodes { externalId name status removed }
      }
    }
  }
`);

const DevicesQuery = graphql(`
  query Devices($first: Int, $after: String, $last: Int, $before: String, $filter: DeviceFilter, $orderBy: DeviceOrder) {
    devices(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges {
        cursor
        node {
          id
          externalId
          name
          ip
          type
          reportedType
          url
          permissionId
          status
          reportedStatus
          statusSince
          lastSeenAt
          firstSeenAt
          removed
          removedAt
          box { id licenseKey lastReportAt }
        }
      }
    }
  }
`);

const DeviceHistoryQuery = graphql(`
  query DeviceHistory($id: ID!, $since: DateTime) {
    device(id: $id) {
      id
      externalId
      statusEvents(first: 50, filter: { since: $since }) {
        totalCount
        edges { cursor node { id subject fromStatus toStatus at device { id } box { licenseKey } } }
      }
    }
  }
`);

const StatusEventsQuery = graphql(`
  query StatusEvents($first: Int, $after: String, $last: Int, $before: String, $filter: StatusEventFilter, $orderBy: StatusEventOrder) {
    statusEvents(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id cursor subject fromStatus toStatus at box { licenseKey } device { externalId } } }
    }
  }
`);

const FleetSummaryQuery = graphql(`
  query FleetSummary {
    fleetSummary {
      countedAt
      boxes { total online offline byFormat { format total online offline } }
      devices { total online offline unknown removed byType { type total online offline unknown removed } }
      perBox(first: 10, orderBy: { field: LICENSE_KEY }) {
        totalCount
        nodes { licenseKey deviceCounts { total online offline unknown removed } }
      }
    }
  }
`);

const NodeQuery = graphql(`
  query Node($id: ID!) {
    node(id: $id) {
      id
      __typename
      ... on Box { licenseKey }
      ... on Device { externalId }
      ... on StatusEvent { toStatus }
    }
  }
`);

describe('boxes', () => {
  it('lists the boxes that are not removed, with totalCount', async () => {
    const { boxes } = await query(gateway.url, BoxesQuery, {});
    expect(boxes.totalCount).toBe(3);
    expect(boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-NEW-1', 'Q-OLD-1', 'Q-NEW-2']);
    expect(boxes.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    expect(boxes.edges[0]!.node).toMatchObject({ id: newBoxId, status: 'ONLINE', online: true, reportFormat: 'NEW', name: null });
    expect(boxes.edges[1]!.node).toMatchObject({ id: oldBoxId, reportFormat: 'OLD', name: 'SE5 north gate' });
  });

  it('filters by status, report format and text', async () => {
    const old = await query(gateway.url, BoxesQuery, { filter: { reportFormat: ['OLD'] } });
    expect(old.boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-OLD-1']);
    const offline = await query(gateway.url, BoxesQuery, { filter: { status: ['OFFLINE'] } });
    expect(offline.boxes.totalCount).toBe(0);
    const search = await query(gateway.url, BoxesQuery, { filter: { search: 'north' } });
    expect(search.boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-OLD-1']);
    const byKey = await query(gateway.url, BoxesQuery, { filter: { search: 'q-new' } });
    expect(byKey.boxes.totalCount).toBe(2);
  });

  it('orders by licence key both ways and pages forwards and backwards', async () => {
    const desc = await query(gateway.url, BoxesQuery, { orderBy: { field: 'LICENSE_KEY', direction: 'DESC' } });
    expect(desc.boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-OLD-1', 'Q-NEW-2', 'Q-NEW-1']);

    const page1 = await query(gateway.url, BoxesQuery, { first: 2, orderBy: { field: 'LICENSE_KEY' } });
    expect(page1.boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-NEW-1', 'Q-NEW-2']);
    expect(page1.boxes.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    expect(page1.boxes.totalCount).toBe(3);
    const page2 = await query(gateway.url, BoxesQuery, { first: 2, after: page1.boxes.pageInfo.endCursor, orderBy: { field: 'LICENSE_KEY' } });
    expect(page2.boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-OLD-1']);
    expect(page2.boxes.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });

    const back = await query(gateway.url, BoxesQuery, { last: 1, before: page2.boxes.pageInfo.startCursor, orderBy: { field: 'LICENSE_KEY' } });
    expect(back.boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-NEW-2']);
    expect(back.boxes.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    const last2 = await query(gateway.url, BoxesQuery, { last: 2, orderBy: { field: 'LICENSE_KEY' } });
    expect(last2.boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-NEW-2', 'Q-OLD-1']);
    expect(last2.boxes.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
  });

  it('orders by last report, silent longest first', async () => {
    const { boxes } = await query(gateway.url, BoxesQuery, { orderBy: { field: 'LAST_REPORT_AT', direction: 'ASC' } });
    expect(boxes.edges.map((e) => e.node.licenseKey)).toEqual(['Q-NEW-1', 'Q-OLD-1', 'Q-NEW-2']);
    const times = boxes.edges.map((e) => Date.parse(e.node.lastReportAt!));
    expect([...times].sort()).toEqual(times);
  });

  it('finds one box by id or licence key, with the older boxes’ details typed', async () => {
    const byKey = await query(gateway.url, BoxQuery, { licenseKey: 'Q-OLD-1' });
    const byId = await query(gateway.url, BoxQuery, { id: oldBoxId });
    expect(byId).toEqual(byKey);
    const box = byKey.box!;
    expect(box).toMatchObject({ id: oldBoxId, licenseKey: 'Q-OLD-1', reportFormat: 'OLD', address: '127.0.0.1', reportCount: 1 });
    expect(box.gateway).toEqual({
      ip: '10.0.0.19',
      name: 'SE5 north gate',
      status: 'online',
      serialNumber: 'HQDZKM6BJACJH0182',
      port: 5555,
      swVersion: '2.3.1',
      sdkVersion: '3.0.0',
      mac: '00:11:22:33:44:55',
      cpuUsage: 23.5,
      memoryUsage: 41.2,
      diskUsage: 63,
      temperature: 52,
      raw: expect.objectContaining({ gateway_sn: 'HQDZKM6BJACJH0182', gateway_ext_data: expect.objectContaining({ temperature: '52℃' }) }),
    });
    expect(box.deviceCounts).toMatchObject({ total: 3, online: 1, offline: 1, unknown: 1, removed: 0 });
    expect(box.deviceCounts.byType.find((t) => t.type === 'UNKNOWN')).toMatchObject({ total: 1, unknown: 1 });
    expect(box.deviceCounts.byType.map((t) => t.type)).toEqual(['PHOTO', 'RTSP', 'FILE', 'GB28181', 'UNKNOWN']);
  });

  it('shows a newer box with its period observed, no gateway details, and its removed device when asked', async () => {
    const { box } = await query(gateway.url, BoxQuery, { licenseKey: 'Q-NEW-1' });
    expect(box).toMatchObject({ reportFormat: 'NEW', gateway: null, reportCount: 2, configuredReportPeriodSeconds: null });
    expect(box!.observedReportPeriodSeconds === null || box!.observedReportPeriodSeconds >= 0).toBe(true);
    expect(box!.deviceCounts).toMatchObject({ total: 3, online: 3, offline: 0, removed: 1 });
    expect(box!.devices.totalCount).toBe(4);
    expect(box!.devices.nodes.find((d) => d.externalId === 'n3')).toMatchObject({ removed: true });
  });

  it('hides removed boxes and answers null for unknown ones', async () => {
    expect((await query(gateway.url, BoxQuery, { licenseKey: 'Q-GONE' })).box).toBeNull();
    expect((await query(gateway.url, BoxQuery, { licenseKey: 'NO-SUCH-BOX' })).box).toBeNull();
    expect((await query(gateway.url, BoxQuery, { id: encodeGlobalId('Box', 999999) })).box).toBeNull();
  });
});

describe('devices', () => {
  it('lists devices in their box’s list with their box, last seen at the box’s last report', async () => {
    const { devices } = await query(gateway.url, DevicesQuery, {});
    expect(devices.totalCount).toBe(8);
    expect(devices.edges.map((e) => e.node.externalId)).not.toContain('n3');
    expect(devices.edges.map((e) => e.node.externalId)).not.toContain('g1');
    for (const { node } of devices.edges) {
      expect(node.removed).toBe(false);
      expect(node.lastSeenAt).toBe(node.box.lastReportAt);
    }
    const thermal = devices.edges.find((e) => e.node.name === 'thermal')!.node;
    expect(thermal).toMatchObject({ status: 'UNKNOWN', reportedStatus: 'error', type: 'UNKNOWN', reportedType: 'thermal', permissionId: 'location-1' });
    expect(thermal.box.id).toBe(oldBoxId);
  });

  it('filters by status, type, box, licence key and text', async () => {
    const offline = await query(gateway.url, DevicesQuery, { filter: { status: ['OFFLINE'] } });
    expect(offline.devices.edges.map((e) => e.node.name)).toEqual(['yard']);
    const several = await query(gateway.url, DevicesQuery, { filter: { status: ['OFFLINE', 'UNKNOWN'] } });
    expect(several.devices.totalCount).toBe(2);
    const photos = await query(gateway.url, DevicesQuery, { filter: { type: ['PHOTO'] } });
    expect(photos.devices.edges.map((e) => e.node.name).sort()).toEqual(['gate', 'yard']);
    const ofBox = await query(gateway.url, DevicesQuery, { filter: { box: [oldBoxId] } });
    expect(ofBox.devices.totalCount).toBe(3);
    const ofKey = await query(gateway.url, DevicesQuery, { filter: { licenseKey: ['Q-NEW-2'] } });
    expect(ofKey.devices.edges.map((e) => e.node.name)).toEqual(['dock', 'stairs']);
    const byIp = await query(gateway.url, DevicesQuery, { filter: { search: '192.168.1.2' } });
    expect(byIp.devices.edges.map((e) => e.node.name)).toEqual(['gate']);
    const byUrl = await query(gateway.url, DevicesQuery, { filter: { search: 'GB28181://' } });
    expect(byUrl.devices.edges.map((e) => e.node.name)).toEqual(['national']);
    const byName = await query(gateway.url, DevicesQuery, { filter: { search: 'Door' } });
    expect(byName.devices.edges.map((e) => e.node.name)).toEqual(['front door']);
    const literal = await query(gateway.url, DevicesQuery, { filter: { search: '%' } });
    expect(literal.devices.totalCount).toBe(0);
    const combined = await query(gateway.url, DevicesQuery, { filter: { box: [newBoxId], type: ['RTSP', 'PHOTO'], status: ['ONLINE'] } });
    expect(combined.devices.edges.map((e) => e.node.name).sort()).toEqual(['front door', 'gate']);
  });

  it('shows removed devices when asked, last seen when they left', async () => {
    const removed = await query(gateway.url, DevicesQuery, { filter: { removed: true } });
    expect(removed.devices.edges.map((e) => e.node.externalId)).toEqual(['n3']);
    const n3 = removed.devices.edges[0]!.node;
    expect(n3.removed).toBe(true);
    expect(n3.lastSeenAt).toBe(n3.removedAt);
    expect(n3.statusSince).toBe(n3.removedAt);
    const both = await query(gateway.url, DevicesQuery, { filter: { removed: null } });
    expect(both.devices.totalCount).toBe(9);
  });

  it('orders by name as Postgres does, and pages through every device exactly once', async () => {
    const { rows } = await gateway.sql.query(
      `select d.external_id from devices d join boxes b on b.id = d.box_id
       where b.removed_at is null and d.removed_at is null order by coalesce(d.name, '') desc, d.id desc`,
    );
    const expected = rows.map((r) => r.external_id as string);
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const result: DevicesResult = await query(gateway.url, DevicesQuery, { first: 3, after, orderBy: { field: 'NAME', direction: 'DESC' } });
      seen.push(...result.devices.edges.map((e) => e.node.externalId));
      expect(result.devices.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!result.devices.pageInfo.hasNextPage) break;
      after = result.devices.pageInfo.endCursor;
    }
    expect(seen).toEqual(expected);

    // And backwards from the end, with last/before.
    const backwards: string[] = [];
    let before: string | null = null;
    for (let page = 0; page < 10; page++) {
      const result: DevicesResult = await query(gateway.url, DevicesQuery, { last: 3, before, orderBy: { field: 'NAME', direction: 'DESC' } });
      backwards.unshift(...result.devices.edges.map((e) => e.node.externalId));
      if (!result.devices.pageInfo.hasPreviousPage) break;
      before = result.devices.pageInfo.startCursor;
    }
    expect(backwards).toEqual(expected);
  });

  it('orders by status time with microsecond-exact cursors', async () => {
    const all = await query(gateway.url, DevicesQuery, { orderBy: { field: 'STATUS_SINCE', direction: 'ASC' } });
    const one = await query(gateway.url, DevicesQuery, { first: 1, orderBy: { field: 'STATUS_SINCE', direction: 'ASC' } });
    const rest = await query(gateway.url, DevicesQuery, {
      first: 50,
      after: one.devices.pageInfo.endCursor,
      orderBy: { field: 'STATUS_SINCE', direction: 'ASC' },
    });
    expect([...one.devices.edges, ...rest.devices.edges].map((e) => e.node.id)).toEqual(all.devices.edges.map((e) => e.node.id));
    // Devices of one report share a status time: ties are broken by id.
    const ids = all.devices.edges.map((e) => e.node);
    for (let i = 1; i < ids.length; i++) expect(Date.parse(ids[i]!.statusSince) >= Date.parse(ids[i - 1]!.statusSince)).toBe(true);
  });

  it('first: 0 returns no edges but says whether there are some', async () => {
    const { devices } = await query(gateway.url, DevicesQuery, { first: 0 });
    expect(devices.edges).toEqual([]);
    expect(devices.pageInfo).toMatchObject({ hasNextPage: true, startCursor: null, endCursor: null });
  });
});

describe('status history', () => {
  it('gives one device its history, newest first, with a time window', async () => {
    const { devices } = await query(gateway.url, DevicesQuery, { filter: { search: 'front door' } });
    const id = devices.edges[0]!.node.id;
    const all = await query(gateway.url, DeviceHistoryQuery, { id });
    const events = all.device!.statusEvents.edges.map((e) => e.node);
    expect(events.map((e) => [e.fromStatus, e.toStatus])).toEqual([
      [null, 'ONLINE'],
      ['OFFLINE', 'ONLINE'],
      ['ONLINE', 'OFFLINE'],
    ]);
    expect(events.every((e) => e.subject === 'DEVICE' && e.device?.id === id && e.box.licenseKey === 'Q-NEW-1')).toBe(true);
    expect(all.device!.statusEvents.totalCount).toBe(3);
    const recent = await query(gateway.url, DeviceHistoryQuery, { id, since: '2024-01-02T12:00:00Z' });
    expect(recent.device!.statusEvents.edges.map((e) => e.node.at)).toEqual([events[0]!.at, '2024-01-03T00:00:00.000Z']);
    expect(recent.device!.statusEvents.totalCount).toBe(2);
  });

  it('lists the fleet’s events by time or by id, filtered by subject, status and time', async () => {
    const byTime = await query(gateway.url, StatusEventsQuery, { first: 100, orderBy: { field: 'AT', direction: 'ASC' } });
    const times = byTime.statusEvents.edges.map((e) => Date.parse(e.node.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(byTime.statusEvents.edges[0]!.node.at).toBe('2024-01-02T00:00:00.000Z');
    // Events of the removed box are hidden with it.
    expect(byTime.statusEvents.edges.some((e) => e.node.box.licenseKey === 'Q-GONE')).toBe(false);

    const byId = await query(gateway.url, StatusEventsQuery, { first: 100, orderBy: { field: 'ID', direction: 'DESC' } });
    const ids = byId.statusEvents.edges.map((e) => Number(Buffer.from(e.node.id, 'base64').toString().split(':')[1]));
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(byId.statusEvents.totalCount).toBe(byTime.statusEvents.totalCount);

    const boxes = await query(gateway.url, StatusEventsQuery, { filter: { subject: 'BOX' } });
    expect(boxes.statusEvents.edges.map((e) => [e.node.box.licenseKey, e.node.device, e.node.fromStatus, e.node.toStatus]).sort()).toEqual([
      ['Q-NEW-1', null, null, 'ONLINE'],
      ['Q-NEW-2', null, null, 'ONLINE'],
      ['Q-OLD-1', null, null, 'ONLINE'],
    ]);
    const removals = await query(gateway.url, StatusEventsQuery, { filter: { toStatus: ['REMOVED'] } });
    expect(removals.statusEvents.edges.map((e) => e.node.device?.externalId)).toEqual(['n3']);
    const window = await query(gateway.url, StatusEventsQuery, { filter: { since: '2024-01-01T00:00:00Z', until: '2024-01-03T00:00:00Z' } });
    expect(window.statusEvents.edges.map((e) => e.node.at)).toEqual(['2024-01-02T00:00:00.000Z']);
    const ofBox = await query(gateway.url, StatusEventsQuery, { filter: { box: [oldBoxId] } });
    expect(ofBox.statusEvents.totalCount).toBe(4);
  });

  it('uses the event id as the cursor, the same in every ordering, and pages both ways', async () => {
    const all = await query(gateway.url, StatusEventsQuery, { first: 100 });
    const edges = all.statusEvents.edges;
    for (const edge of edges) {
      expect(edge.cursor).toBe(edge.node.cursor);
      // The event's id, and its time as stored (so a page after it by time reads no month before it).
      const id = Number(Buffer.from(edge.node.id, 'base64').toString().split(':')[1]);
      expect(decodeStatusEventCursor(edge.cursor)).toBe(id);
      expect(JSON.parse(Buffer.from(edge.cursor, 'base64url').toString())).toEqual(['StatusEvent', id, expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+\+00:00$/)]);
    }
    const page = await query(gateway.url, StatusEventsQuery, { first: 3, after: edges[2]!.cursor });
    expect(page.statusEvents.edges.map((e) => e.node.id)).toEqual(edges.slice(3, 6).map((e) => e.node.id));
    // A cursor of the id alone (as live events carry) is looked up, and pages the same.
    const byIdAlone = await query(gateway.url, StatusEventsQuery, { first: 3, after: encodeStatusEventCursor(decodeStatusEventCursor(edges[2]!.cursor)) });
    expect(byIdAlone.statusEvents.edges.map((e) => e.node.id)).toEqual(edges.slice(3, 6).map((e) => e.node.id));
    const back = await query(gateway.url, StatusEventsQuery, { last: 2, before: edges[5]!.cursor });
    expect(back.statusEvents.edges.map((e) => e.node.id)).toEqual(edges.slice(3, 5).map((e) => e.node.id));
    // A cursor from the time ordering works in the id ordering: it is the event's position there.
    const byId = await query(gateway.url, StatusEventsQuery, { first: 100, orderBy: { field: 'ID', direction: 'ASC' } });
    const pivot = byId.statusEvents.edges[4]!;
    const afterPivot = await query(gateway.url, StatusEventsQuery, { first: 100, after: pivot.cursor, orderBy: { field: 'ID', direction: 'ASC' } });
    expect(afterPivot.statusEvents.edges.map((e) => e.node.id)).toEqual(byId.statusEvents.edges.slice(5).map((e) => e.node.id));
  });
});

const LookaheadQuery = graphql(`
  query Lookahead {
    devices(first: 3, filter: { licenseKey: ["Q-OLD-1"] }, orderBy: { field: NAME }) {
      edges { node { ...DeviceBits ... on Device { url lastSeenAt } } }
      nodes { status box { ...BoxBits } }
    }
    statusEvents(first: 20, filter: { subject: DEVICE, box: [] }) { totalCount }
    events: statusEvents(first: 20, filter: { subject: DEVICE, toStatus: [OFFLINE] }) {
      nodes { device { externalId ip permissionId box { gateway { serialNumber } } } }
    }
  }
  fragment DeviceBits on Device { name ip removed }
  fragment BoxBits on Box { licenseKey reportPeriodSeconds online gateway { port } }
`);

describe('lookahead: lists read only the columns asked for', () => {
  it('follows fragments and inline fragments, and other reads of the same rows still get every field', async () => {
    const data = await query(gateway.url, LookaheadQuery);
    expect(data.devices.edges.map((e) => e.node)).toEqual([
      { name: 'lobby', ip: '192.168.2.1', removed: false, url: null, lastSeenAt: expect.any(String) },
      { name: 'thermal', ip: '192.168.2.3', removed: false, url: null, lastSeenAt: expect.any(String) },
      { name: 'yard', ip: '192.168.2.2', removed: false, url: null, lastSeenAt: expect.any(String) },
    ]);
    expect(data.devices.nodes[0]).toEqual({
      status: 'ONLINE',
      box: { licenseKey: 'Q-OLD-1', reportPeriodSeconds: null, online: true, gateway: { port: 5555 } },
    });
    expect(data.statusEvents.totalCount).toBe(0);
    const yard = data.events.nodes.find((e) => e.device?.externalId === 'Q-OLD-1__192.168.2.2');
    expect(yard?.device).toEqual({
      externalId: 'Q-OLD-1__192.168.2.2',
      ip: '192.168.2.2',
      permissionId: 'location-1',
      box: { gateway: { serialNumber: 'HQDZKM6BJACJH0182' } },
    });
  });
});

describe('fleet summary and nodes', () => {
  it('counts boxes and devices by status and type, overall and per box', async () => {
    const { fleetSummary } = await query(gateway.url, FleetSummaryQuery);
    expect(fleetSummary.boxes).toEqual({
      total: 3,
      online: 3,
      offline: 0,
      byFormat: [
        { format: 'NEW', total: 2, online: 2, offline: 0 },
        { format: 'OLD', total: 1, online: 1, offline: 0 },
      ],
    });
    expect(fleetSummary.devices).toMatchObject({ total: 8, online: 6, offline: 1, unknown: 1, removed: 1 });
    const byType = Object.fromEntries(fleetSummary.devices.byType.map((t) => [t.type, t.total]));
    expect(byType).toEqual({ PHOTO: 2, RTSP: 4, FILE: 0, GB28181: 1, UNKNOWN: 1 });
    expect(fleetSummary.devices.byType.find((t) => t.type === 'FILE')).toMatchObject({ removed: 1 });
    expect(fleetSummary.perBox.totalCount).toBe(3);
    expect(fleetSummary.perBox.nodes.map((b) => [b.licenseKey, b.deviceCounts.total, b.deviceCounts.removed])).toEqual([
      ['Q-NEW-1', 3, 1],
      ['Q-NEW-2', 2, 0],
      ['Q-OLD-1', 3, 0],
    ]);
    expect(Math.abs(Date.parse(fleetSummary.countedAt) - Date.now())).toBeLessThan(60_000);
  });

  it('is exact after new reports on a small fleet', async () => {
    await post(gateway, newerReport('Q-NEW-3', [{ id: 'x1', status: 'offline' }]));
    const { fleetSummary } = await query(gateway.url, FleetSummaryQuery);
    expect(fleetSummary.boxes.total).toBe(4);
    expect(fleetSummary.devices.offline).toBe(2);
    await gateway.sql.query(`update boxes set removed_at = now() where license_key = 'Q-NEW-3'`);
  });

  it('resolves any node by its global id', async () => {
    const box = await query(gateway.url, NodeQuery, { id: oldBoxId });
    expect(box.node).toEqual({ id: oldBoxId, __typename: 'Box', licenseKey: 'Q-OLD-1' });
    const { devices } = await query(gateway.url, DevicesQuery, { first: 1 });
    const device = await query(gateway.url, NodeQuery, { id: devices.edges[0]!.node.id });
    expect(device.node).toMatchObject({ __typename: 'Device', externalId: devices.edges[0]!.node.externalId });
    const { statusEvents } = await query(gateway.url, StatusEventsQuery, { first: 1 });
    const event = await query(gateway.url, NodeQuery, { id: statusEvents.edges[0]!.node.id });
    expect(event.node).toMatchObject({ __typename: 'StatusEvent', toStatus: statusEvents.edges[0]!.node.toStatus });
    expect((await query(gateway.url, NodeQuery, { id: encodeGlobalId('Device', 424242) })).node).toBeNull();
  });
});
