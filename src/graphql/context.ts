import type DataLoader from 'dataloader';
import type { IncomingMessage } from 'node:http';
import type pg from 'pg';
import type { AlertChangeHub } from '../alerts/change-hub';
import type { WebhookNetworks } from '../alerts/webhooks/webhook-networks';
import type { Authenticator } from '../auth/authenticator';
import { Cap } from '../auth/rate-limits';
import { actorName, type Principal } from '../auth/roles';
import type { BoxNetworks } from '../box-api/box-networks';
import type { SerialQueue } from '../box-api/serial-queue';
import type { Config } from '../config';
import type { EventHub } from '../live/event-hub';
import type { Logger } from '../log';
import { CountCache } from '../models/count-cache';
import { ReplayPages } from '../models/replay-pages';
import type { RolloutChangeHub } from '../rollouts/change-hub';
import { principalOfRequest } from './auth';

/** What the GraphQL layer takes from the app. */
export interface GraphQLDeps {
  /** GraphQL's own connections (DB_API_POOL_SIZE): slow queries wait for these, never for ingest's. */
  pool: pg.Pool;
  log: Logger;
  config: Config;
  /** This process's feed of committed status events, for subscriptions. */
  events: EventHub;
  authenticator: Authenticator;
  /**
   * Box ingest secrets changed (pointBoxAtGateway rotated one, removeBox removed a box): ingest reads
   * their owners again instead of trusting what it read before. Other replicas re-read within seconds.
   */
  ingestSecretsChanged: () => void;
  /** Addresses a call to a box may connect to (BOX_NETWORKS, less this gateway's own ports). */
  boxNetworks: BoxNetworks;
  /** This process's feed of committed alert changes, for `alertChanged`. */
  alertChanges: AlertChangeHub;
  /** Addresses a webhook channel's URL may name (WEBHOOK_NETWORKS, less this gateway's own ports). */
  webhookNetworks: WebhookNetworks;
  /**
   * configureBox, the media device calls, updateBox and removeBox of one box run one at a time, in
   * arrival order (keyed by box id). The app's one queue: the rollout runner's calls go through it too.
   */
  boxCalls: SerialQueue<number>;
  /** This process's feed of rollout changes (any replica's), for `rolloutProgress`. */
  rolloutChanges: RolloutChangeHub;
}

/** State that outlives a request: one per server, shared by HTTP and (later) websocket operations. */
export interface GraphQLShared {
  /** Large counts (totalCount, fleetSummary), kept about a second; see CountCache. */
  counts: CountCache;
  subscriptionCap: Cap;
  /** Stored events for subscriptions resuming from a cursor, read once for every client replaying them. */
  replay: ReplayPages;
}

/** Time a large count is served before it is read again, and how stale it may get while refreshing. */
export const COUNT_CACHE_TTL_MS = 1_000;
const COUNT_CACHE_MAX_STALE_MS = 10_000;
/** Counts under this many rows take Postgres about a millisecond: always read fresh. */
export const COUNT_CACHE_MIN_VALUE = 5_000;

export function createGraphQLShared(deps: GraphQLDeps, options: { countCacheTtlMs?: number; countCacheMinValue?: number } = {}): GraphQLShared {
  const log = deps.log;
  return {
    counts: new CountCache(
      {
        ttlMs: options.countCacheTtlMs ?? COUNT_CACHE_TTL_MS,
        maxStaleMs: Math.max(COUNT_CACHE_MAX_STALE_MS, options.countCacheTtlMs ?? 0),
        minValue: options.countCacheMinValue ?? COUNT_CACHE_MIN_VALUE,
      },
      (error) => log.warn({ err: error }, 'background count refresh failed'),
    ),
    subscriptionCap: new Cap(deps.config.maxSubscriptionsPerToken),
    replay: new ReplayPages(deps.pool, (rows) => deps.events.withDetails(rows)),
  };
}

/** What every resolver gets. Made fresh for each operation, so loaders never leak data between requests. */
export interface GraphQLContext {
  /** The HTTP request (for a websocket operation: the upgrade request). */
  request: Request;
  pool: pg.Pool;
  log: Logger;
  config: Config;
  counts: CountCache;
  events: EventHub;
  /**
   * Ends the operation's transport with a reason the client can read: set for websocket operations
   * (closes the socket); SSE and HTTP operations end with a GraphQL error instead.
   */
  closeTransport?: (code: number, reason: string) => void;
  /**
   * This operation's DataLoaders for nested connections (`Box.devices`, `Device.statusEvents`, ...),
   * one per field and argument set; node loaders (Box, Device, StatusEvent) are kept by
   * @pothos/plugin-dataloader against this context object.
   */
  loaders: Map<string, DataLoader<number, unknown>>;
  /** The database snapshot read before executing (by the response cache), when there is one. */
  snapshot?: string;
  /** Set when a count may lag the data (see CountCache): the response may then be kept only as long. */
  countsLag: boolean;
  /** Set by a resolver whose answer does not come from the database (a box's own API): the response is not cached. */
  uncacheable: boolean;
  /** The Node request under `request`, when there is one: its socket says where the gateway was reached. */
  req?: IncomingMessage;
  /** The API token asking (HTTP: its Authorization header; websocket: its connection_init). */
  principal: Principal | undefined;
  /** Who is asking, for the audit trail: the token's name and id. Null without a token. */
  actor: string | null;
  authenticator: Authenticator;
  ingestSecretsChanged: () => void;
  /** Running subscriptions per token (websocket and SSE together). */
  subscriptionCap: Cap;
  replay: ReplayPages;
  boxCalls: SerialQueue<number>;
  boxNetworks: BoxNetworks;
  alertChanges: AlertChangeHub;
  webhookNetworks: WebhookNetworks;
  rolloutChanges: RolloutChangeHub;
}

/**
 * The context of one operation, from yoga's initial context (`{ request }`) and the app's parts.
 * `createGraphQLServer` passes it to yoga, so `yoga.getEnveloped(...)` (websockets) gets it too.
 */
export function createGraphQLContext(
  deps: GraphQLDeps & GraphQLShared,
  initial: { request: Request; req?: IncomingMessage; closeTransport?: (code: number, reason: string) => void; principal?: Principal },
): GraphQLContext {
  const principal = initial.principal ?? principalOfRequest(initial.request);
  return {
    request: initial.request,
    events: deps.events,
    closeTransport: initial.closeTransport,
    pool: deps.pool,
    log: deps.log,
    config: deps.config,
    counts: deps.counts,
    loaders: new Map(),
    countsLag: false,
    uncacheable: false,
    req: initial.req,
    principal,
    actor: principal ? actorName(principal) : null,
    authenticator: deps.authenticator,
    ingestSecretsChanged: deps.ingestSecretsChanged,
    subscriptionCap: deps.subscriptionCap,
    replay: deps.replay,
    boxCalls: deps.boxCalls,
    boxNetworks: deps.boxNetworks,
    alertChanges: deps.alertChanges,
    webhookNetworks: deps.webhookNetworks,
    rolloutChanges: deps.rolloutChanges,
  };
}
