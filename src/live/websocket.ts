import type { Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import { CloseCode, type ServerOptions } from 'graphql-ws';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../log';

type OperationResult = ReturnType<NonNullable<ServerOptions['execute']>>;
type EnvelopedArgs = ExecutionArgs & {
  envelopedExecute: (args: ExecutionArgs) => unknown;
  envelopedSubscribe: (args: ExecutionArgs) => unknown;
};

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
export function attachWebSocketTransport(
  server: Server,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  yoga: YogaServerInstance<any, any>,
  log: Logger,
): WebSocketTransport {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: 1024 * 1024 });
  const disposable = useServer<Record<string, unknown> | undefined, Extra & Record<PropertyKey, unknown>>(
    {
      // onSubscribe returns yoga's enveloped execute/subscribe beside the arguments; use those.
      execute: (args) => (args as EnvelopedArgs).envelopedExecute(args) as OperationResult,
      subscribe: (args) => (args as EnvelopedArgs).envelopedSubscribe(args) as OperationResult,
      onSubscribe: async (ctx, _id, payload) => {
        const socket = ctx.extra.socket;
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket,
          connectionParams: ctx.connectionParams,
          params: payload,
          closeTransport: (code: number, reason: string) => closeWithReason(socket, code, reason),
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as import('graphql').GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          envelopedExecute: execute,
          envelopedSubscribe: subscribe,
        } as EnvelopedArgs;
      },
      onError: (_ctx, _id, _payload, errors) => {
        log.debug({ errors: errors.map((e) => e.message) }, 'websocket operation failed');
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
