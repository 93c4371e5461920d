import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_WEBHOOK_NETWORKS } from './alerts/webhooks/webhook-networks';
import { DEFAULT_BOX_NETWORKS, parseNetwork } from './box-api/box-networks';
import { flag, oneOf, optionalText, text, variableDocs, wholeNumber, type VariableDoc } from './config-variable';

// Everything the gateway reads from its environment, declared once: each variable's parser, default,
// range, unit and line in the manual (`npm run docs:config` writes the README's table from here).

export const INGEST_POLICIES = ['open', 'registered', 'token'] as const;
export type IngestPolicy = (typeof INGEST_POLICIES)[number];

/** pino's levels; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const httpUrl = z.string().transform((raw, ctx) => {
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  const wrong = !url
    ? 'not a URL'
    : url.protocol !== 'http:' && url.protocol !== 'https:'
      ? `scheme ${url.protocol}`
      : url.username || url.password
        ? 'it has credentials'
        : url.search || url.hash
          ? 'it has a query or fragment'
          : undefined;
  if (wrong || !url) {
    ctx.issues.push({ code: 'custom', message: wrong ?? 'not a URL', input: raw });
    return z.NEVER;
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
});

const networkList = z.string().transform((raw, ctx) => {
  const networks = raw.split(/[\s,]+/).filter((part) => part !== '');
  for (const network of networks) {
    try {
      parseNetwork(network);
    } catch (error) {
      ctx.issues.push({ code: 'custom', message: (error as Error).message, input: raw });
    }
  }
  return networks;
});

const configSchema = z.object({
  // The server
  port: wholeNumber({ env: 'PORT', default: 4000, min: 0, max: 65535, about: 'HTTP port for ingest, GraphQL and websockets (`0`: any free port)' }),
  host: text({ env: 'HOST', type: 'string', default: '0.0.0.0', allowed: 'an address or host name', expected: 'an address', value: z.string().trim(), about: 'interface to listen on (boxes report over the network)' }),
  // Unset, HOST 0.0.0.0 (or ::) means the interface each GraphQL request came in on, which is not what
  // a box on another network reaches: production sets it.
  publicUrl: optionalText({
    env: 'PUBLIC_URL',
    type: 'URL',
    allowed: '`http://…` or `https://…` without credentials, query or fragment',
    expected: 'an http:// or https:// URL without credentials, query or fragment, e.g. https://fleet.example.com',
    unsetMeans: 'the address the gateway listens on',
    value: httpUrl,
    about: 'the gateway\'s URL as boxes reach it; `pointBoxAtGateway` sets a box\'s monitor URL to it + `/DeviceStatus` (production must set it)',
  }),
  trustProxy: flag({ env: 'TRUST_PROXY', default: false, about: 'take a box\'s address from the left-most `X-Forwarded-For` entry (behind a reverse proxy)' }),
  logLevel: oneOf({ env: 'LOG_LEVEL', values: LOG_LEVELS, default: 'info', about: 'pino level; logs are JSON lines on stdout' }),
  // The database
  databaseUrl: optionalText({
    env: 'DATABASE_URL',
    type: 'URL',
    allowed: '`postgres://…` or `postgresql://…`',
    expected: 'a postgres:// or postgresql:// URL',
    unsetMeans: 'the embedded Postgres',
    value: z.string().trim().regex(/^postgres(ql)?:\/\/\S+$/),
    about: 'external Postgres; unset runs the embedded one',
  }),
  dataDir: text({
    env: 'FLEETGATE_DATA_DIR',
    type: 'path',
    default: './.fleetgate/postgres',
    allowed: 'a folder, relative to the working directory or absolute',
    expected: 'a folder',
    value: z.string().transform((folder) => path.resolve(folder)),
    about: 'data folder of the embedded Postgres',
  }),
  embeddedPostgresPort: wholeNumber({ env: 'EMBEDDED_PG_PORT', default: 54320, min: 1, max: 65535, about: 'loopback port of the embedded Postgres' }),
  dbPoolSize: wholeNumber({ env: 'DB_POOL_SIZE', default: 10, min: 2, max: 1000, unit: 'connections', about: 'database connections per process for ingest, live events, the offline sweep and token checks' }),
  // A pool of its own, so no number of slow GraphQL queries can hold the connections ingest needs.
  dbApiPoolSize: wholeNumber({ env: 'DB_API_POOL_SIZE', default: 8, min: 1, max: 1000, unit: 'connections', about: 'database connections per process for GraphQL (queries, mutations, the replay of subscriptions), apart from ingest\'s' }),
  graphqlStatementTimeoutMs: wholeNumber({ env: 'GRAPHQL_STATEMENT_TIMEOUT_MS', default: 10_000, min: 100, max: 3_600_000, unit: 'ms', about: 'Postgres stops a GraphQL statement running longer; the field gets `QUERY_TIMEOUT`' }),
  // Reports
  ingestPolicy: oneOf({
    env: 'INGEST_POLICY',
    values: INGEST_POLICIES,
    default: 'open',
    about: '`open`: any licence key (a first report registers the box); `registered`: only boxes an operator registered; `token`: only over `/DeviceStatus/<secret>` with that box\'s secret',
  }),
  // The vendor's keys look like ZKZCPI000120190807142601: six letters, four digits, the issue time.
  licenseKeyPrefix: text({
    env: 'LICENSE_KEY_PREFIX',
    type: 'string',
    default: 'FLEETG',
    allowed: 'exactly 6 letters A–Z',
    expected: 'exactly 6 upper-case letters A–Z',
    value: z.string().trim().regex(/^[A-Z]{6}$/),
    about: 'first six characters of the licence keys this gateway issues (`registerBox` without a key, `registerBoxes`, `npm run boxes -- issue`); then 4 random digits and the UTC issue time `yyyyMMddHHmmss`',
  }),
  ingestMaxBodyBytes: wholeNumber({ env: 'INGEST_MAX_BODY_BYTES', default: 1024 * 1024, min: 1024, max: 64 * 1024 * 1024, unit: 'bytes', about: 'larger report bodies get 413' }),
  ingestMaxDevices: wholeNumber({ env: 'INGEST_MAX_DEVICES', default: 4096, min: 1, max: 100_000, unit: 'devices', about: 'reports with more devices get 400' }),
  ingestBatchWindowMs: wholeNumber({ env: 'INGEST_BATCH_WINDOW_MS', default: 2, min: 0, max: 1000, unit: 'ms', about: 'how long the first report of an idle batch waits for company' }),
  ingestMaxBatch: wholeNumber({ env: 'INGEST_MAX_BATCH', default: 500, min: 1, max: 10_000, unit: 'reports', about: 'most reports in one batch (one transaction)' }),
  // 2 rather than more: fewer, larger batches, which wait less on each other for the history lock.
  ingestPipeline: wholeNumber({ env: 'INGEST_PIPELINE', default: 2, min: 1, max: 64, unit: 'batches', about: 'batches committing at once; the next starts when the previous holds its row locks' }),
  // Online and offline, live events
  offlinePeriods: wholeNumber({ env: 'OFFLINE_PERIODS', default: 3, min: 1, max: 1000, unit: 'report periods', about: 'a box is offline after this many report periods without a report ...' }),
  offlineMinSeconds: wholeNumber({ env: 'OFFLINE_MIN_SECONDS', default: 30, min: 1, max: 86_400, unit: 's', about: '... but never sooner than this' }),
  defaultReportPeriodSeconds: wholeNumber({ env: 'DEFAULT_REPORT_PERIOD_SECONDS', default: 60, min: 1, max: 86_400, unit: 's', about: 'period assumed before one is configured or observed (the vendor\'s default)' }),
  sweepIntervalMs: wholeNumber({ env: 'SWEEP_INTERVAL_MS', default: 2000, min: 10, max: 600_000, unit: 'ms', about: 'how often the offline sweep runs (on one replica)' }),
  eventPollIntervalMs: wholeNumber({ env: 'EVENT_POLL_INTERVAL_MS', default: 2000, min: 10, max: 600_000, unit: 'ms', about: 'safety read of the event table when no NOTIFY arrives' }),
  subscriptionBuffer: wholeNumber({ env: 'SUBSCRIPTION_BUFFER', default: 1000, min: 1, max: 1_000_000, unit: 'events', about: 'events a subscription may have waiting before it is closed as too slow' }),
  // Alerts. A due time between rounds waits for the next: "fires within one interval" is the contract.
  alertEvaluationIntervalMs: wholeNumber({ env: 'ALERT_EVALUATION_INTERVAL_MS', default: 1000, min: 50, max: 600_000, unit: 'ms', about: 'how often alert rules are evaluated (on one replica), besides as soon as status events commit; an alert fires within this of its due time' }),
  // History. 400 days: a year's monthly reports compared with the same month a year before (13 months),
  // with a month's margin, since a month goes only once all of it is older than this.
  historyRetentionDays: wholeNumber({ env: 'HISTORY_RETENTION_DAYS', default: 400, min: 1, max: 36_500, unit: 'days', about: 'status history and box health older than this are dropped, a whole month at a time (on one replica)' }),
  // Calls to boxes
  // Checked on the address actually connected to; link-local, unspecified, multicast and broadcast
  // addresses and the gateway's own ports are refused whatever this says.
  boxNetworks: text({
    env: 'BOX_NETWORKS',
    type: 'list',
    default: DEFAULT_BOX_NETWORKS.join(','),
    allowed: 'CIDRs or addresses, comma- or space-separated',
    expected: 'a list of networks',
    value: networkList,
    about: 'networks the gateway may call as boxes; production sets the boxes\' own, without loopback. Link-local, unspecified, multicast, broadcast and the gateway\'s own ports are refused whatever it says',
  }),
  boxApiTimeoutMs: wholeNumber({ env: 'BOX_API_TIMEOUT_MS', default: 5000, min: 1, max: 600_000, unit: 'ms', about: 'deadline of one call to a box\'s REST API (connect, request, whole answer)' }),
  mediaDevicePendingMinSeconds: wholeNumber({ env: 'MEDIA_DEVICE_PENDING_MIN_SECONDS', default: 60, min: 1, max: 86_400, unit: 's', about: 'a media device an operator added or deleted through a box shows PENDING until a report reflects it, for 3 report periods of the box but at least this; UNCONFIRMED after' }),
  // Webhooks (alert notifications), sent by a deliverer on every replica
  // Receivers are often on the internet, so any unicast address by default; the never-called classes
  // and the gateway's own ports are refused whatever this says. Checked again at every send.
  webhookNetworks: text({
    env: 'WEBHOOK_NETWORKS',
    type: 'list',
    default: DEFAULT_WEBHOOK_NETWORKS.join(','),
    allowed: 'CIDRs or addresses, comma- or space-separated',
    expected: 'a list of networks',
    value: networkList,
    about: 'networks webhooks may be sent to (channel URLs are checked at create/update and on the address connected to at every send); production narrows it. Link-local (cloud metadata), unspecified, multicast, broadcast and the gateway\'s own ports are refused whatever it says',
  }),
  webhookTimeoutMs: wholeNumber({ env: 'WEBHOOK_TIMEOUT_MS', default: 10_000, min: 100, max: 600_000, unit: 'ms', about: 'deadline of one webhook attempt (name lookup, connect, request, whole answer); past it the attempt is `timed_out`' }),
  webhookRetryBaseMs: wholeNumber({ env: 'WEBHOOK_RETRY_BASE_MS', default: 1000, min: 1, max: 3_600_000, unit: 'ms', about: 'backoff after a failed attempt: a random delay up to this, doubling with each failure (full jitter) ...' }),
  webhookRetryMaxMs: wholeNumber({ env: 'WEBHOOK_RETRY_MAX_MS', default: 300_000, min: 1, max: 86_400_000, unit: 'ms', about: '... up to this' }),
  webhookMaxAttempts: wholeNumber({ env: 'WEBHOOK_MAX_ATTEMPTS', default: 10, min: 1, max: 1000, unit: 'attempts', about: 'a notification not delivered after this many attempts is `DEAD` (redeliver sends it again)' }),
  webhookChannelConcurrency: wholeNumber({ env: 'WEBHOOK_CHANNEL_CONCURRENCY', default: 4, min: 1, max: 1000, unit: 'sends', about: 'sends to one channel at once per process: a slow or hanging receiver holds at most this many of the process\'s slots' }),
  webhookConcurrency: wholeNumber({ env: 'WEBHOOK_CONCURRENCY', default: 32, min: 1, max: 10_000, unit: 'sends', about: 'sends at once per process, all channels together' }),
  webhookPollIntervalMs: wholeNumber({ env: 'WEBHOOK_POLL_INTERVAL_MS', default: 250, min: 10, max: 600_000, unit: 'ms', about: 'how often each replica looks for due notifications (also at once on NOTIFY of a change)' }),
  // API tokens
  adminToken: optionalText({
    env: 'ADMIN_TOKEN',
    type: 'secret',
    allowed: '32–256 characters without spaces',
    expected: '32 to 256 characters without spaces',
    fix: 'make one with `npm run token -- generate`, or unset ADMIN_TOKEN and the first start prints one',
    unsetMeans: 'the first start prints one',
    secret: true,
    value: z.string().min(32).max(256).regex(/^\S+$/),
    about: 'an admin API token the gateway makes sure exists (for automated deployments)',
  }),
  tokenCheckMs: wholeNumber({ env: 'TOKEN_CHECK_MS', default: 2000, min: 10, max: 600_000, unit: 'ms', about: 'how often each process asks which of the tokens it holds were revoked' }),
  // What one GraphQL request may ask
  graphqlMaxBodyBytes: wholeNumber({ env: 'GRAPHQL_MAX_BODY_BYTES', default: 256 * 1024, min: 1024, max: 64 * 1024 * 1024, unit: 'bytes', about: 'largest `/graphql` request body and websocket message; larger gets `413 REQUEST_ENTITY_TOO_LARGE`' }),
  graphqlMaxDocumentBytes: wholeNumber({ env: 'GRAPHQL_MAX_DOCUMENT_BYTES', default: 64 * 1024, min: 100, max: 16 * 1024 * 1024, unit: 'bytes', about: 'largest GraphQL document (comments and literals count); larger gets `DOCUMENT_TOO_LARGE`' }),
  graphqlMaxTokens: wholeNumber({ env: 'GRAPHQL_MAX_TOKENS', default: 2000, min: 100, max: 10_000_000, unit: 'tokens', about: 'lexical tokens per GraphQL document, counted while parsing; more gets `TOO_MANY_TOKENS`' }),
  graphqlMaxDepth: wholeNumber({ env: 'GRAPHQL_MAX_DEPTH', default: 12, min: 1, max: 1000, unit: 'levels', about: 'deepest field nesting of a GraphQL operation (fragments add no level); deeper gets `QUERY_TOO_DEEP`' }),
  graphqlMaxAliases: wholeNumber({ env: 'GRAPHQL_MAX_ALIASES', default: 15, min: 0, max: 100_000, unit: 'aliases', about: 'aliased fields per operation; more gets `TOO_MANY_ALIASES`' }),
  graphqlMaxDirectives: wholeNumber({ env: 'GRAPHQL_MAX_DIRECTIVES', default: 50, min: 0, max: 100_000, unit: 'directives', about: 'directives per operation; more gets `TOO_MANY_DIRECTIVES`' }),
  graphqlMaxRepeatedFields: wholeNumber({
    env: 'GRAPHQL_MAX_REPEATED_FIELDS',
    default: 2000,
    min: 0,
    max: 10_000_000,
    unit: 'checks',
    about: 'merge checks that repeated fields cost validation (pairs of same-named fields at one place, through fragments too, and the pairs under them); more gets `TOO_MANY_REPEATED_FIELDS`',
  }),
  graphqlMaxCost: wholeNumber({
    env: 'GRAPHQL_MAX_COST',
    default: 10_000,
    min: 1,
    max: 1_000_000_000,
    about: 'cost of an operation: each field 1, times `first`/`last` (default 50) or the number of `ids` under each list; more gets `COST_LIMIT_EXCEEDED`',
  }),
  graphqlIntrospection: flag({ env: 'GRAPHQL_INTROSPECTION', default: true, about: 'answer `__schema`/`__type` (GraphiQL needs it); `false` answers `INTROSPECTION_DISABLED`' }),
  // Rates and caps (NO_LIMITS_ENV turns them off)
  rateLimitIngestPerAddress: wholeNumber({ env: 'RATE_LIMIT_INGEST_PER_ADDRESS', default: 1000, min: 0, max: 10_000_000, unit: 'per second', about: 'reports from one address (0: no limit)' }),
  rateLimitIngestPerToken: wholeNumber({ env: 'RATE_LIMIT_INGEST_PER_TOKEN', default: 10, min: 0, max: 10_000_000, unit: 'per second', about: 'reports over one box\'s ingest secret (0: no limit)' }),
  rateLimitLoginPerAddress: wholeNumber({ env: 'RATE_LIMIT_LOGIN_PER_ADDRESS', default: 20, min: 0, max: 10_000_000, unit: 'per second', about: 'box logins (`/BoxLogin`) from one address (0: no limit)' }),
  rateLimitGraphqlPerToken: wholeNumber({ env: 'RATE_LIMIT_GRAPHQL_PER_TOKEN', default: 100, min: 0, max: 10_000_000, unit: 'per second', about: 'GraphQL requests per API token (0: no limit)' }),
  rateLimitGraphqlPerAddress: wholeNumber({ env: 'RATE_LIMIT_GRAPHQL_PER_ADDRESS', default: 200, min: 0, max: 10_000_000, unit: 'per second', about: 'GraphQL requests per address, with or without a token (0: no limit)' }),
  wsMaxConnectionsPerToken: wholeNumber({ env: 'WS_MAX_CONNECTIONS_PER_TOKEN', default: 100, min: 0, max: 10_000_000, unit: 'websockets', about: 'open websockets per API token (0: no cap)' }),
  wsMaxConnectionsPerAddress: wholeNumber({ env: 'WS_MAX_CONNECTIONS_PER_ADDRESS', default: 200, min: 0, max: 10_000_000, unit: 'websockets', about: 'open websockets per address, before and after authentication (0: no cap)' }),
  maxSubscriptionsPerToken: wholeNumber({ env: 'MAX_SUBSCRIPTIONS_PER_TOKEN', default: 1000, min: 0, max: 10_000_000, unit: 'subscriptions', about: 'running subscriptions per API token, websocket and SSE together (0: no cap)' }),
});

/** The gateway's settings, typed from the declarations above. */
export type Config = z.output<typeof configSchema>;

/**
 * Every rate limit and cap turned off, as environment variables: for benchmarks and tests, whose load
 * comes from one address with one token at rates the limits exist to stop.
 */
export const NO_LIMITS_ENV: Readonly<Record<string, string>> = {
  RATE_LIMIT_INGEST_PER_ADDRESS: '0',
  RATE_LIMIT_INGEST_PER_TOKEN: '0',
  RATE_LIMIT_LOGIN_PER_ADDRESS: '0',
  RATE_LIMIT_GRAPHQL_PER_TOKEN: '0',
  RATE_LIMIT_GRAPHQL_PER_ADDRESS: '0',
  WS_MAX_CONNECTIONS_PER_TOKEN: '0',
  WS_MAX_CONNECTIONS_PER_ADDRESS: '0',
  MAX_SUBSCRIPTIONS_PER_TOKEN: '0',
};

/** Bad settings, all of them at once, one line each: what was given, what is allowed, what to do. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.length === 1 ? problems[0] : `${problems.length} settings are wrong:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** The declared variables in their order, with what the manual says about each. */
export function configVariables(): VariableDoc[] {
  return Object.values(configSchema.shape).map((schema) => variableDocs.get(schema)!);
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const input = Object.fromEntries(Object.entries(configSchema.shape).map(([key, schema]) => [key, env[variableDocs.get(schema)!.env]]));
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((issue) => issue.message));
  return { ...parsed.data, ...overrides };
}
