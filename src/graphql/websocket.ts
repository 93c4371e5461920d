import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import { CloseCode, type ServerOptions } from 'graphql-ws';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authentication, Authenticator } from '../auth/authenticator';
import { clientAddress } from '../auth/client-address';
import type { Cap, RateLimit } from '../auth/rate-limits';
import type { Principal } from '../auth/roles';
import type { WorkSlices } from '../live/work-slices';
import type { Logger } from '../log';
import { MAX_VARIABLES_DEPTH, variablesTooDeep } from './request-checks';
import { serializedResultBytes } from './shared-execution';
import { endingFirst } from './subscription-stream';

type OperationResult = ReturnType<NonNullable<ServerOptions['execute']>>;
type EnvelopedArgs = ExecutionArgs & {
  envelopedExecute: (args: ExecutionArgs) => unknown;
  envelopedSubscribe: (args: ExecutionArgs) => unknown;
  /** The socket and the operation's id, for writing its `next` messages (see sendResults). */
  socket: WebSocket;
  operationId: string;
};

/**
 * A socket holding more than this many bytes not yet taken by the kernel is not written to: its
 * subscriptions stop reading their feeds, which fill up to SUBSCRIPTION_BUFFER and then close it (4009).
 */
const SOCKET_HIGH_WATER_BYTES = 64 * 1024;

/** The payload of a `next` message as graphql-ws writes it: a shared result's UTF-8, encoded once. */
function payloadBytes(result: ExecutionResult): Buffer {
  if (!result.errors) return serializedResultBytes(result);
  // As graphql-ws writes it: the rest of the result, then its errors.
  const { errors, ...rest } = result;
  return Buffer.from(JSON.stringify({ ...rest, errors: errors.map((error) => error.toJSON()) }));
}

const MESSAGE_END = Buffer.from('}');

/**
 * A subscription's results written to its socket here, each `next` message being the operation's id
 * around the result's JSON (encoded once for every subscriber sharing it), instead of by graphql-ws,
 * which serializes every message whole for every socket and waits for each write to complete before
 * reading the next. While the socket is over its high-water mark, the next result waits for the kernel
 * to take what is written. To graphql-ws the returned stream yields nothing and ends when the results
 * end (it then sends `complete`), and its `return` (the client's `complete`, a closed socket) ends them.
 */
function sendResults(socket: WebSocket, operationId: string, results: AsyncGenerator<ExecutionResult>): AsyncIterableIterator<never> {
  const prefix = Buffer.from(`{"id":${JSON.stringify(operationId)},"type":"next","payload":`);
  const message = (result: ExecutionResult) => {
    const payload = payloadBytes(result);
    return Buffer.concat([prefix, payload, MESSAGE_END], prefix.length + payload.length + 1);
  };
  async function* written(): AsyncGenerator<never, undefined> {
    for (;;) {
      const next = await results.next();
      if (next.done || socket.readyState !== socket.OPEN) return undefined;
      if (socket.bufferedAmount <= SOCKET_HIGH_WATER_BYTES) socket.send(message(next.value), { binary: false });
      // Wait for the kernel to take this message (and what was queued before it).
      else await new Promise<void>((resolve) => socket.send(message(next.value), { binary: false }, () => resolve()));
    }
  }
  return endingFirst(written(), () => results.return(undefined));
}

export interface WebSocketTransport {
  /** Open websocket connections. */
  readonly connections: number;
  /** Closes every connection with 1001 (going away) and stops accepting new ones. */
  close(): Promise<void>;
}

/** A peer that stopped reading cannot answer the close handshake: drop it after this long. */
const CLOSE_GRACE_MS = 5_000;

function closeWithReason(socket: WebSocket, code: number, reason: string): void {
  socket.close(code, reason);
  setTimeout(() => {
    if (socket.readyState !== socket.CLOSED) socket.terminate();
  }, CLOSE_GRACE_MS).unref();
}

/**
 * GraphQL over websockets (graphql-transport-ws) on the gateway's own port and path. Every operation
 * goes through `yoga.getEnveloped`, so it gets the same context and plugins as an HTTP request.
 */
export interface WebSocketAuthOptions {
  authenticator: Authenticator;
  /** Open sockets per token (after connection_init). */
  perToken: Cap;
  /** Open sockets per address (from the upgrade on). */
  perAddress: Cap;
  /** Operations (subscribe messages) per token. */
  operationsPerToken: RateLimit;
  trustProxy: boolean;
  /** Largest message a client may send (GRAPHQL_MAX_BODY_BYTES); a larger one closes the socket with 1009. */
  maxMessageBytes: number;
  /**
   * Turns of the event loop shared with delivery (the event hub's): a connection's upgrade waits for
   * one, so a thousand dashboards reconnecting at once are taken a slice at a time, with ingest between.
   */
  slices?: WorkSlices;
}

/** Close codes this transport uses besides graphql-ws's own (4400 bad request, 4408 init timeout, ...). */
export const WS_CLOSE = {
  /** No token, a bad one, or one revoked while the socket was open (graphql-ws's Forbidden). */
  forbidden: CloseCode.Forbidden,
  /** Too many sockets for this token. */
  tooMany: 4429,
  /** Tokens cannot be checked: the database is down. Reconnect later. */
  unavailable: 1013,
} as const;

type SocketExtra = Extra & { principal?: Principal; untrack?: () => void; address: string };

/** The authorization in a connection_init payload, in any of the shapes clients send (key case ignored). */
function tokenIn(params: Record<string, unknown> | undefined): string | undefined {
  if (!params || typeof params !== 'object') return undefined;
  for (const [key, value] of Object.entries(params)) {
    const name = key.toLowerCase();
    // `{ authorization: "Bearer …" }`, `{ token: "…" }`
    if (typeof value === 'string' && (name === 'authorization' || name === 'token')) return value;
    // `{ headers: { Authorization: "Bearer …" } }`: Apollo's examples
    if (name === 'headers' && value && typeof value === 'object' && !Array.isArray(value)) {
      const inner = tokenIn(value as Record<string, unknown>);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

/** The shapes tokenIn reads (T: the token), for a close reason: a reason holds at most 123 bytes. */
const ACCEPTED_SHAPES = 'connection_init takes {authorization:"Bearer T"}, {token:"T"} or {headers:{Authorization:"Bearer T"}}';

/** Why a socket is refused (4403), saying what connection_init must hold. */
export function refusalReason(reason: Extract<Authentication, { ok: false }>['reason']): string {
  return reason === 'missing' ? `No API token. ${ACCEPTED_SHAPES}` : `Bad API token. ${ACCEPTED_SHAPES}`;
}

export function attachWebSocketTransport(
  server: Server,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  yoga: YogaServerInstance<any, any>,
  log: Logger,
  auth: WebSocketAuthOptions,
): WebSocketTransport {
  const wss = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    // The same bound as an HTTP request's body: no message holds more than one request may.
    maxPayload: auth.maxMessageBytes,
    // A flood of sockets from one address is refused at the upgrade, before any GraphQL work.
    verifyClient: ({ req }, done) => {
      const address = clientAddress(req, auth.trustProxy) ?? 'unknown';
      if (!auth.perAddress.acquire(address)) return done(false, 429, 'Too many websocket connections from this address', { 'retry-after': '10' });
      // The slot is the TCP connection's: it is given back however the upgrade or the socket ends.
      req.socket.once('close', () => auth.perAddress.release(address));
      const wait = auth.slices?.turn();
      if (wait) void wait.then(() => done(true));
      else done(true);
    },
  });
  const disposable = useServer<Record<string, unknown> | undefined, SocketExtra & Record<PropertyKey, unknown>>(
    {
      // The token comes in connection_init; without a good one the socket is closed with 4403 and a
      // reason that says which payload shapes are read.
      onConnect: async (ctx) => {
        const socket = ctx.extra.socket;
        let authentication;
        try {
          authentication = await auth.authenticator.authenticate(tokenIn(ctx.connectionParams), { bare: true });
        } catch (error) {
          log.warn({ err: error }, 'websocket token check failed');
          closeWithReason(socket, WS_CLOSE.unavailable, 'The database is unreachable, so the token cannot be checked; reconnect later');
          return false;
        }
        if (!authentication.ok) {
          closeWithReason(socket, WS_CLOSE.forbidden, refusalReason(authentication.reason));
          return false;
        }
        const principal = authentication.principal;
        const key = String(principal.tokenId);
        if (!auth.perToken.acquire(key)) {
          closeWithReason(socket, WS_CLOSE.tooMany, `Token has ${auth.perToken.max} websockets open, its limit`);
          return false;
        }
        ctx.extra.principal = principal;
        ctx.extra.untrack = auth.authenticator.track(principal, () => closeWithReason(socket, WS_CLOSE.forbidden, 'The API token was revoked'));
        socket.once('close', () => {
          auth.perToken.release(key);
          ctx.extra.untrack?.();
        });
        return true;
      },
      // onSubscribe returns yoga's enveloped execute/subscribe beside the arguments; use those.
      execute: (args) => (args as EnvelopedArgs).envelopedExecute(args) as OperationResult,
      subscribe: async (args) => {
        const { envelopedSubscribe, socket, operationId } = args as EnvelopedArgs;
        const results = (await envelopedSubscribe(args)) as Awaited<OperationResult>;
        if (!(Symbol.asyncIterator in results)) return results;
        return sendResults(socket, operationId, results as AsyncGenerator<ExecutionResult>) as unknown as Awaited<OperationResult>;
      },
      onSubscribe: async (ctx, id, payload) => {
        const socket = ctx.extra.socket;
        // The same budget per token as HTTP requests have (a budget of its own), per operation started.
        const limited = await auth.operationsPerToken.take(String(ctx.extra.principal?.tokenId));
        if (!limited.ok) {
          return [new GraphQLError(`Too many operations for this token; retry in ${limited.retryAfterSeconds} s.`, { extensions: { code: 'RATE_LIMITED' } })];
        }
        if (payload.variables && variablesTooDeep(payload.variables)) {
          return [new GraphQLError(`Variables are nested deeper than ${MAX_VARIABLES_DEPTH} levels.`, { extensions: { code: 'BAD_USER_INPUT' } })];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket,
          connectionParams: ctx.connectionParams,
          principal: ctx.extra.principal,
          params: payload,
          closeTransport: (code: number, reason: string) => closeWithReason(socket, code, reason),
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as GraphQLError];
        }
        // The limits throw their refusal before graphql-js validates (see src/graphql/limits.ts).
        let errors;
        try {
          errors = validate(schema, document);
        } catch (error) {
          if (error instanceof AggregateError) return error.errors as GraphQLError[];
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        if (errors.length > 0) return errors;
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          envelopedExecute: execute,
          envelopedSubscribe: subscribe,
          socket,
          operationId: id,
        } as EnvelopedArgs;
      },
      onError: (_ctx, _id, _payload, errors) => {
        // Codes only: messages can quote a client's variables (licence keys).
        log.debug({ codes: errors.map((e) => e.extensions?.code ?? null) }, 'websocket operation failed');
      },
    },
    wss,
  );
  return {
    get connections() {
      return wss.clients.size;
    },
    async close() {
      await disposable.dispose();
    },
  };
}

export { CloseCode };
