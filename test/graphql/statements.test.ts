import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send, query } from '../helpers/graphql';
import { recordStatements } from '../helpers/statements';
import { newerReport, olderReport, post } from './fleet-fixture';
import { graphql } from './generated';

// No N+1: the statements a response costs do not grow with its page sizes. 55 boxes of 22 devices.
// Every statement sent on the GraphQL pool is counted, the response cache's snapshot read
// (`select pg_current_snapshot()`) included; a failure prints them.
const BOXES = 55;
const DEVICES_PER_BOX = 22;

let gateway: TestGateway;
beforeAll(async () => {
  // The pages here are the query benchmark's dashboards (50 boxes × 20 devices costs 13,651), above the default cost limit.
  // The event hub's catch-up read and the token re-check would run on the main pool at their own times.
  gateway = await startGateway({ graphqlMaxCost: 50_000, eventPollIntervalMs: 3_600_000, tokenCheckMs: 3_600_000 });
  await Promise.all(
    Array.from({ length: BOXES }, (_, b) => {
      const devices = Array.from({ length: DEVICES_PER_BOX }, (_, d) => ({
        id: `S${b}-D${d}`,
        name: `box ${b} camera ${d}`,
        status: d % 5 === 0 ? 'offline' : 'online',
        type: ['rtsp', 'photo', 'file', 'gb28181'][d % 4],
        ip: `10.${b}.0.${d + 1}`,
      }));
      const key = `STMT-${String(b).padStart(3, '0')}`;
      return post(gateway, b % 2 === 0 ? newerReport(key, devices) : olderReport(key, devices));
    }),
  );
  // A token is looked up once, on its first request: that statement is the token's, not a response's.
  expect((await send(gateway.url, '{ __typename }')).status).toBe(200);
});
afterAll(() => gateway?.close());

/** Both of the gateway's pools: GraphQL reads on its own, and nothing of a query may slip onto the other. */
const pools = () => [gateway.app.apiPool, gateway.app.pool];

const DevicesWithBoxes = graphql(`
  query StatementsDevicesWithBoxes($first: Int!) {
    devices(first: $first, filter: { status: [ONLINE] }) {
      totalCount
      edges {
        cursor
        node {
          id
          name
          status
          lastSeenAt
          box { id licenseKey name status lastReportAt gateway { serialNumber } }
        }
      }
    }
  }
`);

const BoxesWithDevices = graphql(`
  query StatementsBoxesWithDevices($first: Int!, $devices: Int!) {
    boxes(first: $first) {
      totalCount
      edges {
        node {
          id
          licenseKey
          deviceCounts { total online offline byType { type total } }
          devices(first: $devices) {
            totalCount
            pageInfo { hasNextPage endCursor }
            edges { node { id name status type box { id licenseKey } } }
          }
        }
      }
    }
  }
`);

const DevicesWithHistory = graphql(`
  query StatementsDevicesWithHistory($first: Int!) {
    devices(first: $first) {
      nodes {
        id
        statusEvents(first: 5) { totalCount nodes { toStatus at box { licenseKey } device { id } } }
      }
    }
  }
`);

const NodesById = graphql(`
  query StatementsNodes($ids: [ID!]!) {
    nodes(ids: $ids) {
      id
      ... on Device { name box { licenseKey deviceCounts { total } } }
    }
  }
`);

describe('statements per response, whatever the page size', () => {
  it('a page of devices with their boxes: the page and its count', async () => {
    const small = await recordStatements(pools(), async () => {
      const data = await query(gateway.url, DevicesWithBoxes, { first: 5 });
      expect(data.devices.edges).toHaveLength(5);
    });
    const large = await recordStatements(pools(), async () => {
      const data = await query(gateway.url, DevicesWithBoxes, { first: 100 });
      expect(data.devices.edges).toHaveLength(100);
      expect(new Set(data.devices.edges.map((e) => e.node.box.licenseKey)).size).toBeGreaterThan(4);
      expect(data.devices.totalCount).toBe(BOXES * (DEVICES_PER_BOX - 5));
    });
    // snapshot; devices with their boxes; their count.
    expect(large, large.join('\n---\n')).toHaveLength(3);
    expect(small, small.join('\n---\n')).toHaveLength(large.length);
  });

  it('50 boxes with their first 20 devices each: one statement per kind of thing read', async () => {
    const small = await recordStatements(pools(), () => query(gateway.url, BoxesWithDevices, { first: 2, devices: 3 }));
    let data: unknown;
    const large = await recordStatements(pools(), async () => {
      const result = await query(gateway.url, BoxesWithDevices, { first: 50, devices: 20 });
      data = result;
      expect(result.boxes.edges).toHaveLength(50);
      for (const { node } of result.boxes.edges) {
        expect(node.devices.edges).toHaveLength(20);
        expect(node.devices.totalCount).toBe(DEVICES_PER_BOX);
        expect(node.devices.pageInfo.hasNextPage).toBe(true);
        expect(node.deviceCounts.total).toBe(DEVICES_PER_BOX);
        expect(node.devices.edges.every((e) => e.node.box.id === node.id)).toBe(true);
      }
    });
    expect(data).toBeDefined();
    // snapshot; boxes page; boxes count; devices of all 50 boxes; their counts; their status counts.
    expect(large, large.join('\n---\n')).toHaveLength(6);
    expect(small, small.join('\n---\n')).toHaveLength(large.length);
  });

  it('a page of devices with each one’s history', async () => {
    const small = await recordStatements(pools(), () => query(gateway.url, DevicesWithHistory, { first: 3 }));
    const large = await recordStatements(pools(), async () => {
      const data = await query(gateway.url, DevicesWithHistory, { first: 200 });
      expect(data.devices.nodes).toHaveLength(200);
      for (const device of data.devices.nodes) {
        expect(device.statusEvents.totalCount).toBe(1);
        expect(device.statusEvents.nodes[0]!.device!.id).toBe(device.id);
      }
    });
    // snapshot; devices page; events of all its devices; their counts; the events' boxes; the events' devices.
    expect(large, large.join('\n---\n')).toHaveLength(6);
    expect(small, small.join('\n---\n')).toHaveLength(large.length);
  });

  it('nodes by id are loaded together', async () => {
    const { devices } = await query(gateway.url, DevicesWithBoxes, { first: 60 });
    const ids = devices.edges.map((e) => e.node.id);
    const small = await recordStatements(pools(), () => query(gateway.url, NodesById, { ids: ids.slice(0, 2) }));
    const large = await recordStatements(pools(), async () => {
      const data = await query(gateway.url, NodesById, { ids });
      expect(data.nodes).toHaveLength(60);
    });
    // snapshot; devices by id; their boxes; the boxes' counts.
    expect(large, large.join('\n---\n')).toHaveLength(4);
    expect(small, small.join('\n---\n')).toHaveLength(large.length);
  });
});
