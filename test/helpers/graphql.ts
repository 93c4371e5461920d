import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import { authorization } from './auth';

export interface GraphQLErrorBody {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; [key: string]: unknown };
}

export interface GraphQLResponse<TData> {
  status: number;
  headers: Headers;
  body: { data?: TData | null; errors?: GraphQLErrorBody[] };
}

const printed = new WeakMap<DocumentNode, string>();

function text(document: DocumentNode | string): string {
  if (typeof document === 'string') return document;
  let query = printed.get(document);
  if (query === undefined) {
    query = print(document);
    printed.set(document, query);
  }
  return query;
}

/**
 * POSTs an operation to `/graphql` as a browser client would (`application/graphql-response+json`
 * accepted), typed by a generated document; a string is sent as it is (for invalid operations).
 */
export async function graphql<TData, TVariables>(
  baseUrl: string,
  document: TypedDocumentNode<TData, TVariables> | string,
  variables?: TVariables,
  {
    accept = 'application/graphql-response+json, application/json;q=0.9',
    signal,
    token,
  }: { accept?: string; signal?: AbortSignal; /** Default: the gateway's admin token; null sends none. */ token?: string | null } = {},
): Promise<GraphQLResponse<TData>> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: requestHeaders(baseUrl, { 'content-type': 'application/json', accept }, token),
    body: JSON.stringify({ query: text(document), variables }),
    signal,
  });
  const body = (await response.json()) as GraphQLResponse<TData>['body'];
  return { status: response.status, headers: response.headers, body };
}

/**
 * The headers of every request to `/graphql` made by these helpers: `extra` plus the gateway's admin
 * token (see ./auth.ts), unless `token` names another (null: none, or `extra` has an Authorization).
 */
function requestHeaders(baseUrl: string, extra: Record<string, string>, token?: string | null): Record<string, string> {
  const own = Object.keys(extra).some((name) => name.toLowerCase() === 'authorization');
  return { ...(own ? {} : authorization(baseUrl, token)), ...extra };
}

export interface RawGraphQLResponse {
  status: number;
  headers: Headers;
  /** The body as text; for a stream (`text/event-stream`, `multipart/mixed`) what arrived within `streamMs`. */
  text: string;
  /** True when a stream was cut off after `streamMs`. */
  streamCut: boolean;
}

/**
 * Sends anything to `/graphql` (a body that is not JSON, GET with a query string, a batch, odd headers),
 * for tests of malformed requests; `graphql()` is for operations. `search` is the query string without `?`.
 * A streamed answer is read for at most `streamMs` (default 1000) and then cancelled, so a subscription
 * answered over SSE does not keep the caller waiting.
 */
export async function graphqlRaw(
  baseUrl: string,
  body: string | Uint8Array | undefined,
  {
    method = 'POST',
    headers = {},
    search = '',
    signal,
    streamMs = 1000,
    token,
  }: { method?: string; headers?: Record<string, string>; search?: string; signal?: AbortSignal; streamMs?: number; token?: string | null } = {},
): Promise<RawGraphQLResponse> {
  const response = await fetch(`${baseUrl}/graphql${search ? `?${search}` : ''}`, {
    method,
    headers: requestHeaders(baseUrl, headers, token),
    // A byte body keeps fetch from adding its own text/plain Content-Type.
    body: body === undefined ? undefined : Buffer.from(body),
    signal,
  });
  const type = response.headers.get('content-type') ?? '';
  if (!/text\/event-stream|multipart\/mixed/i.test(type) || !response.body) {
    return { status: response.status, headers: response.headers, text: await response.text(), streamCut: false };
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + streamMs;
  for (;;) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const chunk = left > 0 ? await Promise.race([reader.read(), new Promise<null>((r) => (timer = setTimeout(() => r(null), left)))]) : null;
    clearTimeout(timer);
    if (chunk === null) {
      await reader.cancel();
      return { status: response.status, headers: response.headers, text, streamCut: true };
    }
    if (chunk.done) return { status: response.status, headers: response.headers, text, streamCut: false };
    text += decoder.decode(chunk.value, { stream: true });
  }
}

/** The data of a response that must have no errors. */
export async function query<TData, TVariables>(
  baseUrl: string,
  document: TypedDocumentNode<TData, TVariables>,
  variables?: TVariables,
  { token }: { token?: string | null } = {},
): Promise<TData> {
  const response = await graphql(baseUrl, document, variables, { token });
  if (response.status !== 200 || response.body.errors || !response.body.data) {
    throw new Error(`GraphQL request failed (${response.status}): ${JSON.stringify(response.body.errors ?? response.body)}`);
  }
  return response.body.data;
}
