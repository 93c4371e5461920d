import { randomUUID } from 'node:crypto';
import { useGraphQLSSE } from '@graphql-yoga/plugin-graphql-sse';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Cap } from '../auth/rate-limits';
import { principalOfRequest } from './auth';
import { MAX_VARIABLES_DEPTH, variablesTooDeep } from './request-checks';

// graphql-sse's single connection mode on /graphql: PUT reserves a stream, GET (with the stream's token)
// opens it, POSTs add operations to it, DELETE stops one. Yoga serves the distinct connections mode
// itself; these requests go to @graphql-yoga/plugin-graphql-sse instead. Each one is an HTTP request
// like any other: useAuthentication (token, rates) has run before, and operations go through yoga's
// envelop (document limits, cost, scopes). Here: a stream belongs to the API token that reserved it.

const STREAM_TOKEN_HEADER = 'x-graphql-event-stream-token';


export interface SingleConnectionOptions {
  /** Open or reserved streams per API token (WS_MAX_CONNECTIONS_PER_TOKEN: a stream is a connection). */
  streamsPerToken: number;
  /** Largest POST body (GRAPHQL_MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** A reservation (PUT) whose stream is not opened within this time is dropped. Default 30,000 ms. */
  reservationTtlMs?: number;
}

interface Stream {
  owner: string;
  opened: boolean;
}

function streamTokenOf(request: Request): string | null {
  return request.headers.get(STREAM_TOKEN_HEADER) ?? new URL(request.url).searchParams.get('token');
}

/** A request of the single connection mode: a reservation, or one naming its stream. */
function isSingleConnection(request: Request): boolean {
  return request.method === 'PUT' || streamTokenOf(request) !== null;
}

function refusal(status: number, code: string, message: string): [string, { status: number; statusText: string; headers: Record<string, string> }] {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  return [body, { status, statusText: code, headers: { 'content-type': 'application/json; charset=utf-8' } }];
}

export function useSingleConnectionSSE(options: SingleConnectionOptions): Plugin {
  const reservationTtlMs = options.reservationTtlMs ?? 30_000;
  const streams = new Map<string, Stream>();
  const perToken = new Cap(options.streamsPerToken);
  const forget = (token: string) => {
    const stream = streams.get(token);
    if (!stream) return;
    streams.delete(token);
    perToken.release(stream.owner);
  };
  // graphql-sse keeps a reservation until its stream is opened and closed: an unopened one is opened
  // and cancelled here, so it is not kept for ever.
  const discarding = new WeakSet<Request>();
  const discard = (token: string) => {
    const request = new Request('http://localhost/graphql', { headers: { accept: 'text/event-stream', [STREAM_TOKEN_HEADER]: token } });
    discarding.add(request);
    const endResponse = (response: Response) => void response.body?.cancel();
    void Promise.resolve(sse.onRequest!({ request, endResponse, serverContext: {} } as unknown as Parameters<NonNullable<Plugin['onRequest']>>[0])).finally(() => forget(token));
  };

  const sse = useGraphQLSSE({
    endpoint: '/graphql',
    // The stream token is ours, from crypto (graphql-sse's default uses Math.random), and tied to the
    // API token that reserved it: another token cannot read the stream or add operations to it.
    authenticate(req) {
      const owner = String(principalOfRequest(req.raw)?.tokenId);
      if (req.method === 'PUT') {
        if (!perToken.acquire(owner)) {
          return refusal(429, 'TOO_MANY_STREAMS', `This API token has ${perToken.max} event streams reserved or open, its limit; close one first.`);
        }
        const token = randomUUID();
        streams.set(token, { owner, opened: false });
        setTimeout(() => {
          if (streams.get(token)?.opened === false) discard(token);
        }, reservationTtlMs).unref();
        return token;
      }
      const token = streamTokenOf(req.raw)!;
      if (discarding.has(req.raw)) return token;
      const stream = streams.get(token);
      if (!stream || stream.owner !== owner) return refusal(404, 'STREAM_NOT_FOUND', 'No event stream with this token was reserved by this API token (or it was not opened in time); PUT /graphql reserves one.');
      if (req.method === 'GET' && req.headers.get('accept') === 'text/event-stream' && !stream.opened) {
        stream.opened = true;
        req.raw.signal.addEventListener('abort', () => forget(token), { once: true });
      }
      return token;
    },
  });

  return {
    ...sse,
    onRequest(payload) {
      const { request, endResponse, fetchAPI } = payload;
      if (!isSingleConnection(request)) return;
      const answer = (body: ReturnType<typeof refusal>) => endResponse(new fetchAPI.Response(...body));
      if (request.method !== 'POST') return sse.onRequest!(payload);
      // The plugin parses and validates with yoga's envelop but lets a refusal (a syntax error, a
      // document over a limit) escape as a 500: it is answered as graphql-sse answers invalid documents.
      const forward = async () => {
        try {
          return await sse.onRequest!(payload);
        } catch (error) {
          if (!(error instanceof GraphQLError)) throw error;
          return endResponse(new fetchAPI.Response(JSON.stringify({ errors: [error.toJSON()] }), { status: 400, headers: { 'content-type': 'application/json; charset=utf-8' } }));
        }
      };
      // graphql-sse reads the body itself, past yoga's limit and request checks: both are made here.
      const length = Number(request.headers.get('content-length') ?? NaN);
      if (!Number.isFinite(length)) return answer(refusal(411, 'LENGTH_REQUIRED', 'Send a Content-Length with an operation for an event stream.'));
      if (length > options.maxBodyBytes) {
        return answer(refusal(413, 'REQUEST_ENTITY_TOO_LARGE', `Request body limit of ${options.maxBodyBytes} bytes exceeded (GRAPHQL_MAX_BODY_BYTES). Send a shorter query.`));
      }
      return request
        .clone()
        .text()
        .then((text) => {
          let variables: unknown;
          try {
            variables = (JSON.parse(text) as { variables?: unknown } | null)?.variables;
          } catch {
            return answer(refusal(400, 'BAD_REQUEST', 'The body is not JSON: send {"query": …, "variables": …, "extensions": {"operationId": …}}.'));
          }
          if (variables && variablesTooDeep(variables)) return answer(refusal(400, 'BAD_USER_INPUT', `Variables are nested deeper than ${MAX_VARIABLES_DEPTH} levels.`));
          return forward();
        });
    },
  };
}
