import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { authorization } from './auth';
import { metric, waitForMetric } from './metrics';

export interface Subscription<T = any> {
  /** The next result, or an error after `timeoutMs`. */
  next(timeoutMs?: number): Promise<T>;
  /** Results received so far and not yet taken. */
  readonly pending: T[];
  /** Resolves when the server ends the subscription (complete or error); the error, if any. */
  readonly ended: Promise<unknown>;
  close(): void;
}

type Sink = { next(value: unknown): void; error(error: unknown): void; complete(): void };
type Subscribe = (payload: { query: string; variables?: Record<string, unknown> }, sink: Sink) => () => void;

function track<T>(subscribe: Subscribe, query: string, variables?: Record<string, unknown>): Subscription<T> {
  const pending: T[] = [];
  const waiters: Array<(value: T) => void> = [];
  let end!: (error: unknown) => void;
  const ended = new Promise<unknown>((resolve) => (end = resolve));
  const dispose = subscribe(
    { query, variables },
    {
      next: (value) => {
        const waiter = waiters.shift();
        if (waiter) waiter(value as T);
        else pending.push(value as T);
      },
      error: (error) => end(error),
      complete: () => end(undefined),
    },
  );
  return {
    pending,
    ended,
    close: dispose,
    next(timeoutMs = 5000) {
      const ready = pending.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no result within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (value: T) => {
          clearTimeout(timer);
          resolve(value);
        };
        waiters.push(waiter);
        void ended.then((error) => {
          if (waiters.includes(waiter)) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(waiter), 1);
            reject(error ?? new Error('subscription completed'));
          }
        });
      });
    },
  };
}

/** A graphql-ws client (graphql-transport-ws over the `ws` package) on the gateway's /graphql. */
export function wsClient(
  baseUrl: string,
  options: { connectionParams?: Record<string, unknown>; token?: string | null } = {},
): Client & { closed: Promise<{ code: number; reason: string }> } {
  let onClosed!: (event: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClosed = resolve));
  const client = createWsClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams: options.connectionParams ?? authorization(baseUrl, options.token),
    // A refused connection is what some tests expect; `closed` reports it instead of console.error.
    onNonLazyError: () => {},
    on: { closed: (event) => onClosed(event as { code: number; reason: string }) },
  });
  return Object.assign(client, { closed });
}

export function wsSubscribe<T = any>(client: Client, query: string, variables?: Record<string, unknown>): Subscription<T> {
  return track<T>((payload, sink) => client.subscribe(payload, sink as never), query, variables);
}

/** A graphql-sse client in distinct connections mode (one SSE response per subscription), as yoga serves it. */
export function sseSubscribe<T = any>(
  baseUrl: string,
  query: string,
  variables?: Record<string, unknown>,
  { token }: { token?: string | null } = {},
): Subscription<T> & { client: ReturnType<typeof createSseClient> } {
  const client = createSseClient({ url: `${baseUrl}/graphql`, retryAttempts: 0, headers: authorization(baseUrl, token) });
  const subscription = track<T>((payload, sink) => client.subscribe(payload, sink as never), query, variables);
  return Object.assign(subscription, { client });
}

/** Subscriptions a gateway has set up or refused since it started: a counter that an end never lowers. */
const SUBSCRIPTIONS_SET_UP = 'fleetgate_graphql_operation_duration_seconds_count{operation_type="subscription"}';

/**
 * Counts the subscriptions the gateway at `baseUrl` sets up from now on; `reach(n)` resolves once n
 * more are set up. By then each is registered with the live feed, so a change committed afterwards
 * reaches it. (Neither graphql-ws nor graphql-sse acknowledges a subscription: this is the gateway's word.)
 */
export async function subscriptionSetUps(baseUrl: string): Promise<{ reach(count: number, timeoutMs?: number): Promise<void> }> {
  const start = await metric(baseUrl, SUBSCRIPTIONS_SET_UP);
  return {
    async reach(count, timeoutMs) {
      await waitForMetric(baseUrl, SUBSCRIPTIONS_SET_UP, (setUp) => setUp >= start + count, timeoutMs);
    },
  };
}

/** wsSubscribe with the whole graphql-ws payload: a document of several operations and the name of the one to run. */
export function wsSubscribeOperation<T = any>(
  client: Client,
  payload: { query: string; variables?: Record<string, unknown>; operationName?: string },
): Subscription<T> {
  return track<T>((p, sink) => client.subscribe({ ...p, operationName: payload.operationName }, sink as never), payload.query, payload.variables);
}
