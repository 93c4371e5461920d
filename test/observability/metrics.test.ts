import { afterAll, beforeAll, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { graphql as send } from '../helpers/graphql';
import { scrapeMetrics, waitForMetric } from '../helpers/metrics';
import { wsClient, wsSubscribe } from '../helpers/subscriptions';
import { newerReport } from '../graphql/fleet-fixture';
import { createMetrics } from '../../src/observability/metrics';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.close());

const eventually = (series: string, value: number) => waitForMetric(gateway.url, series, (seen) => seen === value, 5_000);

it('counts reports by outcome, batches, GraphQL operations, online boxes and devices, and live connections', async () => {
  expect((await postReport(gateway.url, newerReport('M-BOX-1', [{ id: 'm1' }, { id: 'm2', status: 'offline' }]))).status).toBe(200);
  expect((await postReport(gateway.url, newerReport('M-BOX-2', [{ id: 'm3' }]))).status).toBe(200);
  expect((await postReport(gateway.url, '{"not": "a report"}')).status).toBe(400);
  const answer = await send(gateway.url, '{ fleetSummary { boxes { total } } }');
  expect(answer.body.errors).toBeUndefined();

  const metrics = await scrapeMetrics(gateway.url);
  expect((await fetch(`${gateway.url}/metrics`)).headers.get('content-type')).toContain('text/plain; version=0.0.4');
  expect(metrics.get('fleetgate_ingest_reports_total{status="200"}')).toBe(2);
  expect(metrics.get('fleetgate_ingest_reports_total{status="400"}')).toBe(1);
  expect(metrics.get('fleetgate_ingest_report_duration_seconds_count')).toBe(3);
  expect(metrics.get('fleetgate_ingest_report_duration_seconds_bucket{le="+Inf"}')).toBe(3);
  // The two reports were posted one after the other: two batches of one.
  expect(metrics.get('fleetgate_ingest_batch_size_count')).toBe(2);
  expect(metrics.get('fleetgate_ingest_batch_size_sum')).toBe(2);
  expect(metrics.get('fleetgate_graphql_operation_duration_seconds_count{operation_type="query"}')).toBe(1);
  expect(metrics.get('fleetgate_boxes_online')).toBe(2);
  expect(metrics.get('fleetgate_devices_online')).toBe(2);
  expect(metrics.get('fleetgate_websocket_connections')).toBe(0);
  expect(metrics.get('fleetgate_live_subscriptions')).toBe(0);
  expect(metrics.get('process_cpu_user_seconds_total')).toBeGreaterThan(0);
  expect(metrics.has('nodejs_eventloop_lag_seconds')).toBe(true);

  const client = wsClient(gateway.url);
  try {
    const subscription = wsSubscribe(client, 'subscription { deviceStatusChanged { toStatus } }');
    await eventually('fleetgate_websocket_connections', 1);
    await eventually('fleetgate_live_subscriptions', 1);
    await eventually('fleetgate_graphql_operation_duration_seconds_count{operation_type="subscription"}', 1);
    subscription.close();
  } finally {
    await client.dispose();
  }
  await eventually('fleetgate_websocket_connections', 0);
  // A closed subscription leaves the event hub when its next event arrives (the resolver's iterator is
  // waiting on the hub's when it is returned), so the gauge drops after the next change.
  expect((await postReport(gateway.url, newerReport('M-BOX-1', [{ id: 'm1', status: 'offline' }, { id: 'm2', status: 'offline' }]))).status).toBe(200);
  await eventually('fleetgate_live_subscriptions', 0);
});

it('reads the online counts at most once per TTL, however often it is scraped', async () => {
  let queries = 0;
  const pool = new Proxy(gateway.app.pool, {
    get(target, property, receiver) {
      if (property !== 'query') return Reflect.get(target, property, receiver);
      return (...args: Parameters<typeof target.query>) => {
        queries++;
        return (target.query as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const metrics = createMetrics({ pool, websocketConnections: () => 0, subscriptions: () => 0 });
  for (let i = 0; i < 5; i++) expect((await metrics.render()).body).toContain('\nfleetgate_boxes_online 2\n');
  expect(queries).toBe(1);
});
