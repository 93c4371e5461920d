import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { AlertChangeHub } from './alerts/change-hub';
import { AlertEvaluator } from './alerts/evaluator';
import { WebhookDeliverer } from './alerts/webhooks/deliverer';
import { WebhookNetworks } from './alerts/webhooks/webhook-networks';
import { Authenticator } from './auth/authenticator';
import { Cap, RateLimit } from './auth/rate-limits';
import { bootstrapAdminToken, type BootstrapOutcome } from './auth/tokens';
import { BoxNetworks } from './box-api/box-networks';
import { SerialQueue } from './box-api/serial-queue';
import type { Config } from './config';
import { createPool, migrateDatabase } from './db/connection';
import { startEmbeddedPostgres, type RunningPostgres } from './db/embedded';
import { createGraphQLServer } from './graphql/server';
import { liveDeliveryFigures } from './graphql/shared-execution';
import { attachWebSocketTransport, type WebSocketTransport } from './graphql/websocket';
import { createIngestHandler, matchIngestPath } from './ingest/http';
import { createLoginHandler, matchLoginPath } from './ingest/login';
import { IngestTrust } from './ingest/trust';
import { ReportWriter } from './ingest/writer';
import { EventHub } from './live/event-hub';
import { OfflineSweeper } from './live/offline-sweeper';
import { HistoryMaintainer, prepareHistory } from './history/maintainer';
import { createLogger, type Logger } from './log';
import { createProbeEndpoints } from './observability/endpoints';
import { RolloutChangeHub } from './rollouts/change-hub';
import { RolloutRunner } from './rollouts/runner';
import { createReadinessCheck } from './observability/health';
import { createMetrics } from './observability/metrics';

export interface App {
  /** Starts Postgres (embedded unless DATABASE_URL), migrates, and listens. */
  start(): Promise<void>;
  /** Stops accepting, commits what was accepted, closes connections, stops an embedded Postgres. */
  stop(): Promise<void>;
  /** `http://host:port` once started. */
  readonly url: string;
  readonly databaseUrl: string;
  /** Ingest, live events, the offline sweep, token checks. */
  readonly pool: pg.Pool;
  /** GraphQL's own connections (see DB_API_POOL_SIZE). */
  readonly apiPool: pg.Pool;
  readonly log: Logger;
  readonly events: EventHub;
  readonly sweeper: OfflineSweeper;
  /** Partitions of the history: made ahead, dropped past the retention (on one replica). */
  readonly history: HistoryMaintainer;
  /** Alert rules evaluated on one replica at a time. */
  readonly alertEvaluator: AlertEvaluator;
  readonly authenticator: Authenticator;
  readonly ingestTrust: IngestTrust;
  /** What start-up did about the first admin token (main.ts prints a new one once). */
  readonly bootstrap: BootstrapOutcome;
  /** Sends alert notifications (the outbox), on every replica; `poke()` after queueing some. */
  readonly webhooks: WebhookDeliverer;
  /** Addresses a webhook may be sent to (WEBHOOK_NETWORKS, less this gateway's own ports): channel writes check URLs with it. */
  readonly webhookNetworks: WebhookNetworks;
  /** Calls the boxes of running rollouts, on one replica at a time. */
  readonly rolloutRunner: RolloutRunner;
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'No such route. Reports go to POST /DeviceStatus.', path: null } }));
}

/** How often the history maintainer looks for months to make or drop; a start runs it at once too. */
const HISTORY_MAINTENANCE_INTERVAL_MS = 3_600_000;

/** How often the rollout runner looks for work besides when a rollout changes; a start runs it at once too. */
const ROLLOUT_ROUND_INTERVAL_MS = 1_000;

/** Connections of the webhook deliverer (claims and attempt records, a few ms each), besides its LISTEN session. */
const WEBHOOK_POOL_SIZE = 2;

/**
 * The deliverer's claim must walk alert_notifications_due_idx in order and stop after a few rows. Right
 * after a burst of alerts the table's statistics still say it is nearly empty, and Postgres then chose
 * a bitmap scan and a sort of every pending row (32 ms for 4,000 rows instead of 0.2 ms); these
 * sessions run only the claim and the attempt records, so they forbid that plan.
 */
const DELIVERER_PLANNER_SETTINGS = { enable_bitmapscan: 'off', enable_sort: 'off' };

/** Time to receive a request's headers, and the whole request; past it Node answers 408 and closes. */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;

function refuseWhileStopping(res: ServerResponse): void {
  res.shouldKeepAlive = false;
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5', connection: 'close' });
  res.end(JSON.stringify({ error: { code: 'SHUTTING_DOWN', message: 'This gateway is stopping; nothing was stored. Retry in a moment.', path: null } }));
}

/** The port in a postgres:// URL (5432 when it names none). */
function databasePort(databaseUrl: string): number {
  const port = URL.canParse(databaseUrl) ? Number(new URL(databaseUrl).port) : 0;
  return port > 0 ? port : 5432;
}

export function buildApp(config: Config, log: Logger = createLogger(config.logLevel)): App {
  let postgres: RunningPostgres | undefined;
  let pool: pg.Pool | undefined;
  /** GraphQL's own connections (DB_API_POOL_SIZE): slow queries wait for these, never for ingest's. */
  let apiPool: pg.Pool | undefined;
  let writer: ReportWriter | undefined;
  let events: EventHub | undefined;
  let alertChanges: AlertChangeHub | undefined;
  let sweeper: OfflineSweeper | undefined;
  let history: HistoryMaintainer | undefined;
  let alertEvaluator: AlertEvaluator | undefined;
  let server: Server | undefined;
  let websockets: WebSocketTransport | undefined;
  let authenticator: Authenticator | undefined;
  let ingestTrust: IngestTrust | undefined;
  let webhooks: WebhookDeliverer | undefined;
  /** The deliverer's own connections: its claims and records never wait behind ingest's, nor ingest behind them. */
  let webhookPool: pg.Pool | undefined;
  let rolloutChanges: RolloutChangeHub | undefined;
  let rolloutRunner: RolloutRunner | undefined;
  /** Calls that change a box run one at a time per box: operators' (GraphQL) and rollouts' alike. */
  const boxCalls = new SerialQueue<number>();
  let bootstrap: BootstrapOutcome = { kind: 'none' };
  let stopping = false;
  /** Responses under way, so stop() can make them close their connections. */
  const open = new Set<ServerResponse>();
  /** One listener for every response (a response closes once): no closure per request. */
  const forgetResponse = function (this: ServerResponse) {
    open.delete(this);
  };
  let url = '';
  let databaseUrl = config.databaseUrl ?? '';
  /** This gateway's HTTP port once listening, and its database's: a box call never connects to them on this machine. */
  const ownPorts = new Set<number>();
  const boxNetworks = new BoxNetworks(config.boxNetworks, () => ownPorts);
  const webhookNetworks = new WebhookNetworks(config.webhookNetworks, () => ownPorts);

  async function start(): Promise<void> {
    if (!config.databaseUrl) {
      postgres = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, log });
      databaseUrl = postgres.url;
    }
    ownPorts.add(databasePort(databaseUrl));
    if (!config.databaseUrl) ownPorts.add(config.embeddedPostgresPort);
    pool = createPool(databaseUrl, config.dbPoolSize, log);
    await migrateDatabase(pool, log);
    await prepareHistory(pool, log);
    bootstrap = await bootstrapAdminToken(pool, config.adminToken);
    authenticator = new Authenticator(pool, log.child({ part: 'auth' }), { checkMs: config.tokenCheckMs });
    authenticator.start();
    ingestTrust = new IngestTrust(pool, {
      policy: config.ingestPolicy,
      perAddress: config.rateLimitIngestPerAddress,
      perToken: config.rateLimitIngestPerToken,
    });
    // A report's way to a subscriber: ingest's writer commits it with its status events, which
    // go to this process's hub at once (`published`) and to every other replica's by NOTIFY; the
    // hub hands them to the subscriptions of graphql/types/live.ts.
    const hub = (events = new EventHub(databaseUrl, pool, log, { pollIntervalMs: config.eventPollIntervalMs }));
    await hub.start();
    // Alert changes reach `alertChanged` subscribers the same way: NOTIFY, then one read per replica.
    const alertHub = (alertChanges = new AlertChangeHub(databaseUrl, pool, log, { pollIntervalMs: config.eventPollIntervalMs }));
    await alertHub.start();
    sweeper = new OfflineSweeper(
      databaseUrl,
      log,
      {
        intervalMs: config.sweepIntervalMs,
        periods: config.offlinePeriods,
        minSeconds: config.offlineMinSeconds,
        defaultPeriodSeconds: config.defaultReportPeriodSeconds,
      },
      hub.published,
    );
    sweeper.start();
    history = new HistoryMaintainer(databaseUrl, log, { retentionDays: config.historyRetentionDays, intervalMs: HISTORY_MAINTENANCE_INTERVAL_MS });
    history.start();
    // Alerts: a round every ALERT_EVALUATION_INTERVAL_MS, and one as soon as status events commit
    // on any replica (the hub hears them all), for the replica that holds the evaluator.
    const evaluator = (alertEvaluator = new AlertEvaluator(databaseUrl, log, { intervalMs: config.alertEvaluationIntervalMs }));
    hub.onCommitted(() => {
      if (evaluator.isLeader) evaluator.runSoon();
    });
    evaluator.start();
    // The outbox's deliverer runs on every replica (claims are leased, SKIP LOCKED); it hears every
    // replica's alert changes by LISTEN, so whoever records a change needs no handle on it.
    webhookPool = createPool(databaseUrl, WEBHOOK_POOL_SIZE, log, { applicationName: 'fleetgate-webhooks', settings: DELIVERER_PLANNER_SETTINGS });
    webhooks = new WebhookDeliverer(webhookPool, databaseUrl, log.child({ part: 'webhooks' }), {
      timeoutMs: config.webhookTimeoutMs,
      retry: { maxAttempts: config.webhookMaxAttempts, baseMs: config.webhookRetryBaseMs, maxMs: config.webhookRetryMaxMs },
      channelConcurrency: config.webhookChannelConcurrency,
      concurrency: config.webhookConcurrency,
      pollIntervalMs: config.webhookPollIntervalMs,
      networks: webhookNetworks,
    });
    await webhooks.start();
    const metrics = createMetrics({ pool, websocketConnections: () => websockets?.connections ?? 0, subscriptions: () => hub.subscriberCount + alertHub.subscriberCount, liveDelivery: () => liveDeliveryFigures(hub) });
    writer = new ReportWriter(
      pool,
      log,
      { windowMs: config.ingestBatchWindowMs, maxItems: config.ingestMaxBatch, maxInFlight: config.ingestPipeline },
      hub.published,
      (size) => metrics.batchCommitted(size),
    );
    const ingest = createIngestHandler(
      writer,
      ingestTrust,
      { maxBodyBytes: config.ingestMaxBodyBytes, maxDevices: config.ingestMaxDevices, trustProxy: config.trustProxy },
      log,
      (status, ms) => metrics.ingestAnswered(status, ms),
    );
    const login = createLoginHandler(
      pool,
      {
        policy: config.ingestPolicy,
        publicUrl: config.publicUrl,
        trustProxy: config.trustProxy,
        defaultReportPeriodSeconds: config.defaultReportPeriodSeconds,
        perAddress: config.rateLimitLoginPerAddress,
      },
      log,
      { secretsChanged: () => ingestTrust?.forget(), answered: (outcome) => metrics.loginAnswered(outcome) },
    );
    apiPool = createPool(databaseUrl, config.dbApiPoolSize, log, {
      applicationName: 'fleetgate-api',
      statementTimeoutMs: config.graphqlStatementTimeoutMs,
      customPlans: true,
    });
    // Rollouts: every replica hears their changes (subscribers, the runner); one replica runs them.
    const rolloutHub = (rolloutChanges = new RolloutChangeHub(databaseUrl, log));
    await rolloutHub.start();
    rolloutRunner = new RolloutRunner({
      databaseUrl,
      pool,
      log: log.child({ part: 'rollouts' }),
      boxes: { pool, log, call: { timeoutMs: config.boxApiTimeoutMs, networks: boxNetworks }, queue: boxCalls },
      changes: rolloutHub,
      intervalMs: ROLLOUT_ROUND_INTERVAL_MS,
      // A call is a setconfigs and at most one read-back, each bounded by BOX_API_TIMEOUT_MS.
      stopDeadlineMs: 2 * config.boxApiTimeoutMs + 1_000,
      onCall: (outcome) => metrics.rolloutCall(outcome),
    });
    rolloutRunner.start();
    const yoga = createGraphQLServer(
      {
        pool: apiPool,
        log,
        config,
        events: hub,
        authenticator,
        ingestSecretsChanged: () => ingestTrust?.forget(),
        boxNetworks,
        alertChanges: alertHub,
        webhookNetworks,
        boxCalls,
        rolloutChanges: rolloutHub,
      },
      { plugins: [metrics.graphqlPlugin] },
    );
    const probes = createProbeEndpoints(metrics, createReadinessCheck(pool), log);

    // Timeouts are checked every second (Node's default: every 30 s, which would triple them).
    server = createServer({ connectionsCheckingInterval: 1_000 }, (req: IncomingMessage, res: ServerResponse) => {
      // Once stopping, a request that arrives on a kept-alive connection is not taken: the client
      // retries (on another replica); nothing of it is stored.
      if (stopping) return void refuseWhileStopping(res);
      open.add(res);
      res.on('close', forgetResponse);
      const target = req.url ?? '/';
      const query = target.indexOf('?');
      const pathname = query === -1 ? target : target.slice(0, query);
      const ingestPath = matchIngestPath(pathname);
      if (ingestPath) return void ingest(req, res, ingestPath.secret);
      if (matchLoginPath(pathname)) return void login(req, res);
      if (pathname === '/graphql') return void yoga(req, res);
      if (probes(pathname, res)) return;
      notFound(res);
    });
    server.keepAliveTimeout = 65_000; // longer than typical box and load-balancer idle timeouts
    // A client that trickles its headers or body (slowloris) holds a socket for at most this long:
    // boxes send a few kilobytes, at once.
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    websockets = attachWebSocketTransport(server, yoga, log, {
      authenticator,
      perToken: new Cap(config.wsMaxConnectionsPerToken),
      perAddress: new Cap(config.wsMaxConnectionsPerAddress),
      operationsPerToken: new RateLimit(config.rateLimitGraphqlPerToken),
      trustProxy: config.trustProxy,
      maxMessageBytes: config.graphqlMaxBodyBytes,
      slices: hub.slices,
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(config.port, config.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    ownPorts.add(port);
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    url = `http://${host}:${port}`;
    log.info({ url }, 'fleetgate listening');
  }

  async function stop(): Promise<void> {
    stopping = true;
    // No rollout call starts from now on; those under way finish (or are abandoned at the deadline)
    // while the rest stops, and then the runner's lock goes to another replica.
    const runnerStopped = rolloutRunner?.stop();
    // Answers still to come close their connections, so clients do not send more on them.
    for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
    // Requests still reading a body get 5 s from now; then their sockets go.
    const timer = setTimeout(() => server?.closeAllConnections(), 5_000);
    // Websocket clients are told the server is going away (1001) and reconnect elsewhere.
    await websockets?.close();
    websockets = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
      server.closeIdleConnections();
      await writer?.drain();
      await closed;
      server = undefined;
    }
    clearTimeout(timer);
    await runnerStopped;
    rolloutRunner = undefined;
    await rolloutChanges?.stop();
    rolloutChanges = undefined;
    await sweeper?.stop();
    sweeper = undefined;
    await history?.stop();
    history = undefined;
    await alertEvaluator?.stop();
    alertEvaluator = undefined;
    // Sends under way get a moment to finish; the rest keep their leases, which lapse for another replica.
    await webhooks?.stop();
    webhooks = undefined;
    await webhookPool?.end();
    webhookPool = undefined;
    await authenticator?.stop();
    await events?.stop();
    events = undefined;
    await alertChanges?.stop();
    alertChanges = undefined;
    await apiPool?.end();
    apiPool = undefined;
    await pool?.end();
    pool = undefined;
    await postgres?.stop();
    postgres = undefined;
  }

  return {
    start,
    stop,
    get url() {
      return url;
    },
    get databaseUrl() {
      return databaseUrl;
    },
    get pool() {
      if (!pool) throw new Error('app not started');
      return pool;
    },
    get apiPool() {
      if (!apiPool) throw new Error('app not started');
      return apiPool;
    },
    log,
    get events() {
      if (!events) throw new Error('app not started');
      return events;
    },
    get sweeper() {
      if (!sweeper) throw new Error('app not started');
      return sweeper;
    },
    get history() {
      if (!history) throw new Error('app not started');
      return history;
    },
    get alertEvaluator() {
      if (!alertEvaluator) throw new Error('app not started');
      return alertEvaluator;
    },
    get authenticator() {
      if (!authenticator) throw new Error('app not started');
      return authenticator;
    },
    get ingestTrust() {
      if (!ingestTrust) throw new Error('app not started');
      return ingestTrust;
    },
    get bootstrap() {
      return bootstrap;
    },
    get webhooks() {
      if (!webhooks) throw new Error('app not started');
      return webhooks;
    },
    webhookNetworks,
    get rolloutRunner() {
      if (!rolloutRunner) throw new Error('app not started');
      return rolloutRunner;
    },
  };
}
