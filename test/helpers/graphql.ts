import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import type pg from 'pg';

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
  { accept = 'application/graphql-response+json, application/json;q=0.9' } = {},
): Promise<GraphQLResponse<TData>> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept },
    body: JSON.stringify({ query: text(document), variables }),
  });
  const body = (await response.json()) as GraphQLResponse<TData>['body'];
  return { status: response.status, headers: response.headers, body };
}

/** The data of a response that must have no errors. */
export async function query<TData, TVariables>(
  baseUrl: string,
  document: TypedDocumentNode<TData, TVariables>,
  variables?: TVariables,
): Promise<TData> {
  const response = await graphql(baseUrl, document, variables);
  if (response.status !== 200 || response.body.errors || !response.body.data) {
    throw new Error(`GraphQL request failed (${response.status}): ${JSON.stringify(response.body.errors ?? response.body)}`);
  }
  return response.body.data;
}

/**
 * Records the statements the GraphQL layer runs on `pool` (its reads are named `fleetgate_read_*`;
 * ingest, the sweeper and the event hub are left out) while `run` runs.
 */
export async function countStatements(pool: pg.Pool, run: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const original = pool.query;
  pool.query = function (this: pg.Pool, ...args: unknown[]) {
    const config = args[0] as { name?: string; text?: string } | string;
    if (typeof config === 'object' && config.name?.startsWith('fleetgate_read_')) statements.push(config.text ?? '');
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pool.query;
  try {
    await run();
  } finally {
    pool.query = original;
  }
  return statements;
}
