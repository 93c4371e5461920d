import path from 'node:path';
import { DEFAULT_BOX_NETWORKS, parseNetwork } from './box-api/box-networks';

/** Everything the gateway reads from its environment, parsed and checked in one place. */
export interface Config {
  /** HTTP port for ingest, GraphQL and websockets. `PORT`, default 4000; 0 picks a free port. */
  port: number;
  /** Interface to listen on. `HOST`, default `0.0.0.0` (boxes report over the network). */
  host: string;
  /** External Postgres. `DATABASE_URL`; when unset the gateway runs an embedded Postgres. */
  databaseUrl: string | undefined;
  /** Data folder of the embedded Postgres. `FLEETGATE_DATA_DIR`, default `./.fleetgate/postgres`. */
  dataDir: string;
  /** Port of the embedded Postgres (loopback only). `EMBEDDED_PG_PORT`, default 54320. */
  embeddedPostgresPort: number;
  /** Connections for ingest, live events and the offline sweep. `DB_POOL_SIZE`, default 10. */
  dbPoolSize: number;
  /**
   * Connections for GraphQL (queries, mutations, subscriptions' replay): a pool of their own, so no
   * number of slow queries can hold the connections ingest needs. `DB_API_POOL_SIZE`, default 8.
   */
  dbApiPoolSize: number;
  /** Postgres cancels one GraphQL statement running longer than this. `GRAPHQL_STATEMENT_TIMEOUT_MS`, default 10,000. */
  graphqlStatementTimeoutMs: number;
  /** Largest accepted ingest body. `INGEST_MAX_BODY_BYTES`, default 1 MiB. */
  ingestMaxBodyBytes: number;
  /** Most devices in one report. `INGEST_MAX_DEVICES`, default 4096. */
  ingestMaxDevices: number;
  /** How long the first report of an idle batch waits for company. `INGEST_BATCH_WINDOW_MS`, default 2. */
  ingestBatchWindowMs: number;
  /** Most reports in one group-commit transaction. `INGEST_MAX_BATCH`, default 500. */
  ingestMaxBatch: number;
  /**
   * Batches committing at once; the next starts when the previous holds its row locks. `INGEST_PIPELINE`,
   * default 2: Postgres then spent 31 µs a report instead of 35.5 with 4, and the gateway sustained 6%
   * more (bench:ingest --only gateway, four alternated runs each): fewer, larger batches, less often
   * waiting on each other for the history lock.
   */
  ingestPipeline: number;
  /** Take the box address from the left-most `X-Forwarded-For` entry. `TRUST_PROXY`, default false. */
  trustProxy: boolean;
  /** pino level. `LOG_LEVEL`, default `info`. */
  logLevel: string;
  /** A box is offline after this many report periods without a report. `OFFLINE_PERIODS`, default 3. */
  offlinePeriods: number;
  /** ... but never sooner than this. `OFFLINE_MIN_SECONDS`, default 30. */
  offlineMinSeconds: number;
  /** Period assumed for a box that reported once and has none configured. `DEFAULT_REPORT_PERIOD_SECONDS`, default 60 (the vendor's). */
  defaultReportPeriodSeconds: number;
  /** How often the offline sweep runs (on one replica). `SWEEP_INTERVAL_MS`, default 2000. */
  sweepIntervalMs: number;
  /** Safety poll of the event table when no NOTIFY arrives. `EVENT_POLL_INTERVAL_MS`, default 2000. */
  eventPollIntervalMs: number;
  /** Events a subscription may have waiting before it is closed as too slow. `SUBSCRIPTION_BUFFER`, default 1000. */
  subscriptionBuffer: number;
  /**
   * The gateway's root URL as boxes reach it, e.g. `https://fleet.example.com` (no trailing slash kept).
   * pointBoxAtGateway sets a box's MEDIA_DEVICE_MONITOR_URL to it + `/DeviceStatus`. `PUBLIC_URL`; unset:
   * `http://HOST:PORT` as the gateway listens, where HOST 0.0.0.0 (or ::) means the interface the GraphQL
   * request came in on, which is not what a box on another network reaches: production sets PUBLIC_URL.
   */
  publicUrl: string | undefined;
  /** Deadline of one call to a box's REST API (connect, request, whole answer). `BOX_API_TIMEOUT_MS`, default 5000. */
  boxApiTimeoutMs: number;
  /** Largest /graphql request body (and websocket message), in bytes. `GRAPHQL_MAX_BODY_BYTES`, default 256 KiB. */
  graphqlMaxBodyBytes: number;
  /** Largest GraphQL document (the `query` text, comments included), in bytes. `GRAPHQL_MAX_DOCUMENT_BYTES`, default 64 KiB. */
  graphqlMaxDocumentBytes: number;
  /**
   * Checks that repeated fields merge: each pair of same-named fields in one selection set (fragments counted
   * where spread, and the pairs under them) and each pair of fragments spread together costs one.
   * `GRAPHQL_MAX_REPEATED_FIELDS`, default 2000.
   */
  graphqlMaxRepeatedFields: number;
  /**
   * Networks (CIDRs, or single addresses) the gateway may call as boxes, checked on the address
   * connected to. `BOX_NETWORKS`, comma- or space-separated; default loopback and the private ranges
   * (`127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7`), so the simulator and the
   * quick start work: production sets the boxes' own networks. Link-local, unspecified, multicast and
   * broadcast addresses and this gateway's own ports are refused whatever it says.
   */
  boxNetworks: string[];
  /** Deepest field nesting of a GraphQL operation (fragments add no level). `GRAPHQL_MAX_DEPTH`, default 12. */
  graphqlMaxDepth: number;
  /** Aliased fields in one GraphQL operation. `GRAPHQL_MAX_ALIASES`, default 15. */
  graphqlMaxAliases: number;
  /** Directives in one GraphQL operation. `GRAPHQL_MAX_DIRECTIVES`, default 50. */
  graphqlMaxDirectives: number;
  /** Lexical tokens in one GraphQL document. `GRAPHQL_MAX_TOKENS`, default 2000. */
  graphqlMaxTokens: number;
  /** Most results one GraphQL operation may ask for (each field 1, times `first`/`last` under lists). `GRAPHQL_MAX_COST`, default 10,000. */
  graphqlMaxCost: number;
  /** Answer introspection (`__schema`, `__type`; GraphiQL needs it). `GRAPHQL_INTROSPECTION`, default true. */
  graphqlIntrospection: boolean;
  /**
   * An admin API token the gateway makes sure exists (for automated deployments; at least 32 characters,
   * e.g. from `npm run token -- generate`). `ADMIN_TOKEN`; unset: on first start with no token at all, the
   * gateway creates one admin token and prints it once.
   */
  adminToken: string | undefined;
  /** How often each process asks which of the tokens it holds were revoked. `TOKEN_CHECK_MS`, default 2000. */
  tokenCheckMs: number;
  /**
   * Which reports are accepted. `INGEST_POLICY`, default `open`:
   * `open` any licence key (a new box is registered by its first report); `registered` only boxes an
   * operator registered (others get 403); `token` only reports over `/DeviceStatus/<secret>` with the
   * secret pointBoxAtGateway gave that very box.
   */
  ingestPolicy: IngestPolicy;
  /** Reports per second from one address (0: no limit). `RATE_LIMIT_INGEST_PER_ADDRESS`, default 1000. */
  rateLimitIngestPerAddress: number;
  /** Reports per second over one box's ingest secret (0: no limit). `RATE_LIMIT_INGEST_PER_TOKEN`, default 10. */
  rateLimitIngestPerToken: number;
  /** GraphQL requests per second per API token (0: no limit). `RATE_LIMIT_GRAPHQL_PER_TOKEN`, default 100. */
  rateLimitGraphqlPerToken: number;
  /** GraphQL requests per second per address, with or without a token (0: no limit). `RATE_LIMIT_GRAPHQL_PER_ADDRESS`, default 200. */
  rateLimitGraphqlPerAddress: number;
  /** Open websockets per API token (0: no cap). `WS_MAX_CONNECTIONS_PER_TOKEN`, default 100. */
  wsMaxConnectionsPerToken: number;
  /** Open websockets per address, before and after authentication (0: no cap). `WS_MAX_CONNECTIONS_PER_ADDRESS`, default 200. */
  wsMaxConnectionsPerAddress: number;
  /** Running subscriptions per API token, websocket and SSE together (0: no cap). `MAX_SUBSCRIPTIONS_PER_TOKEN`, default 1000. */
  maxSubscriptionsPerToken: number;
}

/**
 * Every rate limit and cap turned off, as environment variables: for benchmarks and tests, whose load
 * comes from one address with one token at rates the limits exist to stop.
 */
export const NO_LIMITS_ENV: Readonly<Record<string, string>> = {
  RATE_LIMIT_INGEST_PER_ADDRESS: '0',
  RATE_LIMIT_INGEST_PER_TOKEN: '0',
  RATE_LIMIT_GRAPHQL_PER_TOKEN: '0',
  RATE_LIMIT_GRAPHQL_PER_ADDRESS: '0',
  WS_MAX_CONNECTIONS_PER_TOKEN: '0',
  WS_MAX_CONNECTIONS_PER_ADDRESS: '0',
  MAX_SUBSCRIPTIONS_PER_TOKEN: '0',
};

export const INGEST_POLICIES = ['open', 'registered', 'token'] as const;
export type IngestPolicy = (typeof INGEST_POLICIES)[number];

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name}=${raw} is not a whole number from ${min} to ${max}; fix or unset it.`);
  }
  return value;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name}=${env[name]} is not a boolean; use true or false.`);
}

function ingestPolicy(env: Env): IngestPolicy {
  const raw = (env.INGEST_POLICY || 'open').toLowerCase();
  if (!(INGEST_POLICIES as readonly string[]).includes(raw)) {
    throw new ConfigError(`INGEST_POLICY=${env.INGEST_POLICY} is not one of ${INGEST_POLICIES.join(', ')}.`);
  }
  return raw as IngestPolicy;
}

function adminToken(env: Env): string | undefined {
  const raw = env.ADMIN_TOKEN;
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 32 || raw.length > 256 || /\s/.test(raw)) {
    throw new ConfigError('ADMIN_TOKEN must be 32 to 256 characters without spaces; make one with `npm run token -- generate`.');
  }
  return raw;
}

function boxNetworks(env: Env): string[] {
  const raw = env.BOX_NETWORKS?.trim();
  if (raw === undefined || raw === '') return [...DEFAULT_BOX_NETWORKS];
  const networks = raw.split(/[\s,]+/).filter((part) => part !== '');
  for (const network of networks) {
    try {
      parseNetwork(network);
    } catch (error) {
      throw new ConfigError(`BOX_NETWORKS: ${(error as Error).message}`);
    }
  }
  return networks;
}

function publicUrl(env: Env): string | undefined {
  const raw = env.PUBLIC_URL;
  if (raw === undefined || raw === '') return undefined;
  const parsed = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.username || parsed.password || parsed.search || parsed.hash) {
    throw new ConfigError(`PUBLIC_URL=${raw} is not an http:// or https:// URL without credentials, query or fragment, e.g. https://fleet.example.com.`);
  }
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://; unset it to use the embedded Postgres.');
  }
  return {
    port: integer(env, 'PORT', 4000, 0, 65535),
    host: env.HOST || '0.0.0.0',
    databaseUrl,
    dataDir: path.resolve(env.FLEETGATE_DATA_DIR || '.fleetgate/postgres'),
    embeddedPostgresPort: integer(env, 'EMBEDDED_PG_PORT', 54320, 1, 65535),
    dbPoolSize: integer(env, 'DB_POOL_SIZE', 10, 2, 1000),
    dbApiPoolSize: integer(env, 'DB_API_POOL_SIZE', 8, 1, 1000),
    graphqlStatementTimeoutMs: integer(env, 'GRAPHQL_STATEMENT_TIMEOUT_MS', 10_000, 100, 3_600_000),
    ingestMaxBodyBytes: integer(env, 'INGEST_MAX_BODY_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    ingestMaxDevices: integer(env, 'INGEST_MAX_DEVICES', 4096, 1, 100_000),
    ingestBatchWindowMs: integer(env, 'INGEST_BATCH_WINDOW_MS', 2, 0, 1000),
    ingestMaxBatch: integer(env, 'INGEST_MAX_BATCH', 500, 1, 10_000),
    ingestPipeline: integer(env, 'INGEST_PIPELINE', 2, 1, 64),
    trustProxy: flag(env, 'TRUST_PROXY', false),
    logLevel: env.LOG_LEVEL || 'info',
    offlinePeriods: integer(env, 'OFFLINE_PERIODS', 3, 1, 1000),
    offlineMinSeconds: integer(env, 'OFFLINE_MIN_SECONDS', 30, 1, 86_400),
    defaultReportPeriodSeconds: integer(env, 'DEFAULT_REPORT_PERIOD_SECONDS', 60, 1, 86_400),
    sweepIntervalMs: integer(env, 'SWEEP_INTERVAL_MS', 2000, 10, 600_000),
    eventPollIntervalMs: integer(env, 'EVENT_POLL_INTERVAL_MS', 2000, 10, 600_000),
    subscriptionBuffer: integer(env, 'SUBSCRIPTION_BUFFER', 1000, 1, 1_000_000),
    publicUrl: publicUrl(env),
    boxApiTimeoutMs: integer(env, 'BOX_API_TIMEOUT_MS', 5000, 1, 600_000),
    graphqlMaxBodyBytes: integer(env, 'GRAPHQL_MAX_BODY_BYTES', 256 * 1024, 1024, 64 * 1024 * 1024),
    graphqlMaxDocumentBytes: integer(env, 'GRAPHQL_MAX_DOCUMENT_BYTES', 64 * 1024, 100, 16 * 1024 * 1024),
    graphqlMaxRepeatedFields: integer(env, 'GRAPHQL_MAX_REPEATED_FIELDS', 2000, 0, 10_000_000),
    boxNetworks: boxNetworks(env),
    graphqlMaxDepth: integer(env, 'GRAPHQL_MAX_DEPTH', 12, 1, 1000),
    graphqlMaxAliases: integer(env, 'GRAPHQL_MAX_ALIASES', 15, 0, 100_000),
    graphqlMaxDirectives: integer(env, 'GRAPHQL_MAX_DIRECTIVES', 50, 0, 100_000),
    graphqlMaxTokens: integer(env, 'GRAPHQL_MAX_TOKENS', 2000, 100, 10_000_000),
    graphqlMaxCost: integer(env, 'GRAPHQL_MAX_COST', 10_000, 1, 1_000_000_000),
    graphqlIntrospection: flag(env, 'GRAPHQL_INTROSPECTION', true),
    adminToken: adminToken(env),
    tokenCheckMs: integer(env, 'TOKEN_CHECK_MS', 2000, 10, 600_000),
    ingestPolicy: ingestPolicy(env),
    rateLimitIngestPerAddress: integer(env, 'RATE_LIMIT_INGEST_PER_ADDRESS', 1000, 0, 10_000_000),
    rateLimitIngestPerToken: integer(env, 'RATE_LIMIT_INGEST_PER_TOKEN', 10, 0, 10_000_000),
    rateLimitGraphqlPerToken: integer(env, 'RATE_LIMIT_GRAPHQL_PER_TOKEN', 100, 0, 10_000_000),
    rateLimitGraphqlPerAddress: integer(env, 'RATE_LIMIT_GRAPHQL_PER_ADDRESS', 200, 0, 10_000_000),
    wsMaxConnectionsPerToken: integer(env, 'WS_MAX_CONNECTIONS_PER_TOKEN', 100, 0, 10_000_000),
    wsMaxConnectionsPerAddress: integer(env, 'WS_MAX_CONNECTIONS_PER_ADDRESS', 200, 0, 10_000_000),
    maxSubscriptionsPerToken: integer(env, 'MAX_SUBSCRIPTIONS_PER_TOKEN', 1000, 0, 10_000_000),
    ...overrides,
  };
}
