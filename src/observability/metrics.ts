import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type pg from 'pg';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { run, sql } from '../db/sql';

export interface MetricsSources {
  pool: pg.Pool;
  /** Open websocket connections. */
  websocketConnections: () => number;
  /** Live subscriptions of this process (EventHub.subscriberCount + AlertChangeHub.subscriberCount). */
  subscriptions: () => number;
  /** Live delivery's sharing, counted since the process started (see graphql/shared-execution.ts). */
  liveDelivery?: () => LiveDeliveryFigures;
  /** How long the online counts are kept between scrapes. Default 5,000 ms. */
  onlineCountsTtlMs?: number;
}

export interface LiveDeliveryFigures {
  /** Distinct filters among the status subscriptions: what each event is matched against. */
  filters: number;
  /** Executions of a subscription's selection for an event. */
  executions: number;
  /** Results handed to a subscriber from another's execution of the same event. */
  sharedResults: number;
  /** Pages of stored events read for replays, and pages served to a replay from another's read. */
  replayReads: number;
  replayPagesShared: number;
}

export interface GatewayMetrics {
  /** For the ingest handler: a report was answered with `status` after `ms`. */
  ingestAnswered(status: number, ms: number): void;
  /** For the box login route: a login was answered (`ok`, `unknown_key`, `bound_elsewhere`, `invalid`, `rate_limited`). */
  loginAnswered(outcome: string): void;
  /** For the report writer: a group commit of `size` reports started. */
  batchCommitted(size: number): void;
  /** For the rollout runner: a target's call was recorded with configureBox's outcome kind. */
  rolloutCall(outcome: string): void;
  /** Times GraphQL operations by type (query, mutation, subscription set-up). */
  readonly graphqlPlugin: Plugin;
  /** The Prometheus text exposition and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/**
 * The gateway's Prometheus metrics on a registry of its own (so two gateways in one process do not share
 * counters), with Node's default process metrics. Online counts are read from the database at most once
 * per TTL, however often `/metrics` is scraped.
 */
export function createMetrics(sources: MetricsSources): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const reports = new Counter({
    name: 'fleetgate_ingest_reports_total',
    help: 'Device-status reports answered, by HTTP status.',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const reportsByStatus = new Map<number, { inc(): void }>();
  const reportDuration = new Histogram({
    name: 'fleetgate_ingest_report_duration_seconds',
    help: 'From a report arriving to its answer (200 only once committed).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'fleetgate_ingest_batch_size',
    help: 'Reports per group-commit transaction.',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [registry],
  });
  const logins = new Counter({
    name: 'fleetgate_box_logins_total',
    help: 'Box logins answered, by outcome (ok, unknown_key, bound_elsewhere, invalid, rate_limited).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const operationDuration = new Histogram({
    name: 'fleetgate_graphql_operation_duration_seconds',
    help: 'GraphQL execution time by operation type (for subscriptions: until the subscription is set up).',
    labelNames: ['operation_type'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  const ttlMs = sources.onlineCountsTtlMs ?? 5_000;
  let online: { at: number; counts: Promise<{ boxes: number; devices: number } | undefined> } | undefined;
  const onlineCounts = () => {
    if (!online || Date.now() - online.at >= ttlMs) {
      const counts = run<{ boxes: number; devices: number }>(
        sources.pool,
        sql`select (select count(*) from boxes where status = 'online' and removed_at is null) as boxes,
                   (select count(*) from devices where status = 'online' and removed_at is null) as devices`,
      )
        .then(({ rows }) => rows[0])
        .catch(() => undefined); // database down: the gauges keep their last values
      online = { at: Date.now(), counts };
    }
    return online.counts;
  };
  new Gauge({
    name: 'fleetgate_boxes_online',
    help: 'Boxes online (read at most every few seconds).',
    registers: [registry],
    async collect() {
      const counts = await onlineCounts();
      if (counts) this.set(Number(counts.boxes));
    },
  });
  new Gauge({
    name: 'fleetgate_devices_online',
    help: 'Devices online in their box\'s current list (read at most every few seconds).',
    registers: [registry],
    async collect() {
      const counts = await onlineCounts();
      if (counts) this.set(Number(counts.devices));
    },
  });
  new Gauge({
    name: 'fleetgate_websocket_connections',
    help: 'Open websocket connections.',
    registers: [registry],
    collect() {
      this.set(sources.websocketConnections());
    },
  });
  new Gauge({
    name: 'fleetgate_live_subscriptions',
    help: 'Live subscriptions (websocket and SSE) of this process.',
    registers: [registry],
    collect() {
      this.set(sources.subscriptions());
    },
  });
  const live = sources.liveDelivery;
  if (live) {
    const figure = (name: string, help: string, pick: (figures: LiveDeliveryFigures) => number, type: 'counter' | 'gauge') =>
      type === 'gauge'
        ? new Gauge({ name, help, registers: [registry], collect() { this.set(pick(live())); } })
        : new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(pick(live())); } });
    figure('fleetgate_live_filters', 'Distinct filters among the status subscriptions of this process: each event is matched once per filter.', (f) => f.filters, 'gauge');
    figure('fleetgate_live_executions_total', 'Executions of a subscription for an event (one per distinct operation, variables and role).', (f) => f.executions, 'counter');
    figure('fleetgate_live_shared_results_total', 'Results a subscriber got from another subscriber’s execution of the same event.', (f) => f.sharedResults, 'counter');
    figure('fleetgate_live_replay_reads_total', 'Pages of stored events read from the database for subscriptions resuming from a cursor.', (f) => f.replayReads, 'counter');
    figure('fleetgate_live_replay_pages_shared_total', 'Pages of stored events served to a resuming subscription from another’s read.', (f) => f.replayPagesShared, 'counter');
  }

  const operationType = (args: Parameters<NonNullable<Plugin['onExecute']>>[0]['args']) =>
    getOperationAST(args.document, args.operationName)?.operation ?? 'unknown';

  const rolloutCalls = new Counter({
    name: 'fleetgate_rollout_calls_total',
    help: 'Box calls made by rollouts on this replica, by configureBox outcome (applied, rejected, unreachable, timed_out, bad_answer, address_refused, invalid).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });

  return {
    rolloutCall(outcome) {
      rolloutCalls.labels(outcome).inc();
    },
    ingestAnswered(status, ms) {
      // One child per status, made once: no label object to build and hash per report.
      let counter = reportsByStatus.get(status);
      if (!counter) reportsByStatus.set(status, (counter = reports.labels(String(status))));
      counter.inc();
      reportDuration.observe(ms / 1000);
    },
    loginAnswered(outcome) {
      logins.labels(outcome).inc();
    },
    batchCommitted(size) {
      batchSize.observe(size);
    },
    graphqlPlugin: {
      onExecute({ args }) {
        const stop = operationDuration.startTimer({ operation_type: operationType(args) });
        return { onExecuteDone: () => void stop() };
      },
      onSubscribe({ args }) {
        const stop = operationDuration.startTimer({ operation_type: operationType(args) });
        return { onSubscribeResult: () => void stop(), onSubscribeError: () => void stop() };
      },
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
