import type { IncomingMessage, ServerResponse } from 'node:http';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { PothosValidationError } from '@pothos/core';
import { getOperationAST, getVariableValues, GraphQLError, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { createYoga, maskError as yogaMaskError, type Plugin, type YogaLogger, type YogaServerInstance } from 'graphql-yoga';
import { RateLimit } from '../auth/rate-limits';
import { isDatabaseUnavailable } from '../db/connection';
import type { Logger } from '../log';
import { useAuthentication } from './auth';
import { useRequestChecks } from './request-checks';
import { useSingleConnectionSSE } from './sse-single-connection';
import { GRAPHIQL_OPTIONS } from './graphiql/options';
import { renderGraphiQLPage } from './graphiql/page';
import { createGraphQLContext, createGraphQLShared, type GraphQLContext, type GraphQLDeps } from './context';
import { useGraphQLLimits } from './limits';
import { useSnapshotResponseCache } from './response-cache';
import { schema } from './schema';
import { useSharedSubscriptionExecution } from './shared-execution';

export interface GraphQLServerOptions {
  /**
   * Compile each operation to JavaScript with graphql-jit (faster execution of big pages). Default true.
   * graphql-jit does not apply the default of a non-null input field, so input fields with defaults are
   * nullable in this schema (e.g. `orderBy.direction`) and resolvers treat null as the default.
   */
  jit?: boolean;
  /** How long large counts are kept (ms); see CountCache. Default 1,000. */
  countCacheTtlMs?: number;
  /** Counts below this are always read fresh. Default 5,000. */
  countCacheMinValue?: number;
  /** Keep query responses while the database snapshot is unchanged (see useSnapshotResponseCache). Default true. */
  responseCache?: boolean;
  /** More envelop plugins, after the gateway's own (metrics). Default none. */
  plugins?: Plugin[];
}

export type GraphQLServer = YogaServerInstance<{ req: IncomingMessage; res: ServerResponse }, GraphQLContext>;

/** Postgres errors that mean an argument held a value it cannot take, and what to tell the client. */
const UNUSABLE_VALUE: Record<string, string> = {
  '22021': 'A text argument holds a character that cannot be stored or searched (NUL); leave it out.',
  '22P05': 'A text argument holds a character that cannot be stored or searched (NUL); leave it out.',
  '22003': 'A number in the arguments (an ID or a cursor) is out of range; use values this API returned.',
  '22007': 'A time in the arguments (or in a cursor) is not a valid date and time; use values this API returned.',
  '22008': 'A time in the arguments (or in a cursor) is out of range; use values this API returned.',
};

function isOriginalGraphQLError(error: unknown): error is GraphQLError {
  if (!(error instanceof GraphQLError)) return false;
  return error.originalError == null || isOriginalGraphQLError(error.originalError);
}

/**
 * A field's error as the client sees it, without its stack and cause: yoga copies every error of a
 * result (and its cause) once more while serializing, each copy capturing a stack, and a page with a
 * forbidden field on each of 500 rows spent ~0.1 ms an error on that alone.
 */
function withoutStack(error: GraphQLError): GraphQLError {
  // A refusal made where it was raised (clientError with its path) is already that error: the
  // wrapper around it is dropped, nothing new is built.
  const cause = error.originalError;
  if (cause instanceof GraphQLError && cause.path && !cause.originalError && cause.message === error.message) return cause;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions: error.extensions });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Errors a client caused keep their message and get a code; anything else (a database fault, a bug)
 * is logged with its cause and answered as "Unexpected error." with code INTERNAL_SERVER_ERROR.
 */
function createMaskError(log: Logger, bodyLimit: number, timeoutMs: number) {
  return (error: unknown, message: string): Error => {
    if (isOriginalGraphQLError(error)) {
      // yoga's own answer names no limit.
      if (error.extensions.code === 'REQUEST_ENTITY_TOO_LARGE') {
        error.message = `Request body limit of ${bodyLimit} bytes exceeded (GRAPHQL_MAX_BODY_BYTES). Send a shorter query; page through large id lists.`;
        return error;
      }
      // Pothos's own argument checks (an ID of another type, ...) carry no code; they are input errors.
      const cause = error.originalError ?? error;
      if (cause instanceof PothosValidationError && error.extensions.code === undefined) {
        return new GraphQLError(error.message, {
          nodes: error.nodes,
          source: error.source,
          positions: error.positions,
          path: error.path,
          extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
        });
      }
      return error;
    }
    const cause = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    if (isDatabaseUnavailable(cause)) {
      return new GraphQLError('The database is unreachable; nothing could be read or changed. Retry later.', {
        path: error instanceof GraphQLError ? error.path : undefined,
        extensions: { code: 'DATABASE_UNAVAILABLE', http: { status: 503, headers: { 'retry-after': '5' } } },
      });
    }
    // GRAPHQL_STATEMENT_TIMEOUT_MS: the query asked for more than the database does in that time.
    if ((cause as { code?: string }).code === '57014') {
      return new GraphQLError(
        `The database took longer than ${timeoutMs} ms over this query and stopped it; ask for a smaller page, fewer nested lists or a narrower filter.`,
        { path: error instanceof GraphQLError ? error.path : undefined, extensions: { code: 'QUERY_TIMEOUT' } },
      );
    }
    // Values Postgres cannot take (a NUL in text, an id or time out of range) come only from a client's arguments.
    const refused = UNUSABLE_VALUE[(cause as { code?: string }).code ?? ''];
    if (refused) {
      return new GraphQLError(refused, {
        path: error instanceof GraphQLError ? error.path : undefined,
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    log.error({ err: cause, path: error instanceof GraphQLError ? error.path?.join('.') : undefined }, 'GraphQL resolver failed');
    return yogaMaskError(error, message, false);
  };
}

/**
 * A query's client errors (a forbidden field on each row, bad arguments) are answered without their
 * stacks and causes: see withoutStack. Anything else is left for maskError to log and mask.
 */
function useStacklessClientErrors(): Plugin {
  return {
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (!('errors' in result) || !result.errors?.some(isOriginalGraphQLError)) return;
          setResult({ ...result, errors: result.errors.map((error) => (isOriginalGraphQLError(error) && error.path && error.extensions.code ? withoutStack(error) : error)) });
        },
      };
    },
  };
}

/**
 * Variables are checked against their types before execution, so a wrong one (an unknown enum value,
 * a malformed DateTime, a missing required one) is a `BAD_USER_INPUT` request error: status 400 for
 * `application/graphql-response+json`, 200 for `application/json` (GraphQL over HTTP). graphql-jit
 * coerces variables itself, with messages but without codes or statuses.
 */
function useVariableCheck(): Plugin {
  const operations = new WeakMap<DocumentNode, OperationDefinitionNode | null>();
  return {
    onExecute({ args, setResultAndStopExecution }) {
      let operation = operations.get(args.document);
      if (operation === undefined) {
        operation = getOperationAST(args.document, args.operationName) ?? null;
        if (!args.operationName) operations.set(args.document, operation);
      }
      if (!operation?.variableDefinitions?.length) return;
      const { errors } = getVariableValues(args.schema, operation.variableDefinitions, args.variableValues ?? {}, { maxErrors: 20 });
      if (errors) {
        setResultAndStopExecution({
          errors: errors.map(
            (error) =>
              new GraphQLError(error.message, {
                nodes: error.nodes,
                extensions: { code: 'BAD_USER_INPUT', http: { status: 400, spec: true } },
              }),
          ),
        });
      }
    },
  };
}

function yogaLogger(log: Logger): YogaLogger {
  const write =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      if (first instanceof Error) log[level]({ err: first }, first.message);
      // yoga's debug lines carry whole requests (variables with licence keys, headers): message only.
      else log[level](rest.length > 0 && level !== 'debug' ? { details: rest } : {}, String(first));
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/**
 * The GraphQL read API: POST/GET `/graphql` per GraphQL over HTTP, GraphiQL for browsers at the same
 * path. It is a Node request listener; src/app.ts routes `/graphql` to it. The websocket server (later)
 * runs operations through `yoga.getEnveloped(...)`, which builds the same context per operation.
 */
export function createGraphQLServer(deps: GraphQLDeps, options: GraphQLServerOptions = {}): GraphQLServer {
  const log = deps.log.child({ part: 'graphql' });
  const contextDeps = { ...deps, ...createGraphQLShared(deps, options) };
  const responseCache = useSnapshotResponseCache({
    pool: deps.pool,
    maxEntries: 2_000,
    maxBytes: 64 * 1024 * 1024,
    maxAgeMs: 60_000,
    countTtlMs: contextDeps.counts.options.ttlMs,
  });
  return createYoga<{ req: IncomingMessage; res: ServerResponse }, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // No upload type in the schema; yoga's multipart parser answers malformed parts with a 500.
    multipart: false,
    // Counted while the body is read (and refused from Content-Length alone when it says more).
    maxRequestBodySize: deps.config.graphqlMaxBodyBytes,
    // GraphiQL from the npm package (no CDN), with the example query and the token's place in Headers.
    graphiql: GRAPHIQL_OPTIONS,
    renderGraphiQL: renderGraphiQLPage,
    maskedErrors: { maskError: createMaskError(log, deps.config.graphqlMaxBodyBytes, deps.config.graphqlStatementTimeoutMs) },
    logging: yogaLogger(log),
    context: (initial) => createGraphQLContext(contextDeps, initial as Parameters<typeof createGraphQLContext>[1]),
    plugins: [
      // Before anything is parsed: no token, a bad one, or too many requests end here.
      useAuthentication({
        authenticator: deps.authenticator,
        perToken: new RateLimit(deps.config.rateLimitGraphqlPerToken),
        perAddress: new RateLimit(deps.config.rateLimitGraphqlPerAddress),
        trustProxy: deps.config.trustProxy,
        log,
      }),
      useRequestChecks(),
      // graphql-sse's single connection mode (yoga itself serves the distinct connections mode).
      useSingleConnectionSSE({ streamsPerToken: deps.config.wsMaxConnectionsPerToken, maxBodyBytes: deps.config.graphqlMaxBodyBytes }),
      // Then, so an operation over a limit is answered before anything else runs (or a cache is consulted).
      ...useGraphQLLimits({
        maxDocumentBytes: deps.config.graphqlMaxDocumentBytes,
        maxRepeatedFields: deps.config.graphqlMaxRepeatedFields,
        maxDepth: deps.config.graphqlMaxDepth,
        maxAliases: deps.config.graphqlMaxAliases,
        maxDirectives: deps.config.graphqlMaxDirectives,
        maxTokens: deps.config.graphqlMaxTokens,
        maxCost: deps.config.graphqlMaxCost,
        introspection: deps.config.graphqlIntrospection,
      }),
      useVariableCheck(),
      useStacklessClientErrors(),
      ...(options.responseCache === false ? [] : [responseCache]),
      // Subscribers whose result for an event is the same share its execution and its JSON.
      useSharedSubscriptionExecution(),
      // Queries only: graphql-jit's compiled subscribe does not pass a subscription field its arguments.
      ...(options.jit === false ? [] : [useGraphQlJit({}, { enableIf: (args) => getOperationAST(args.document, args.operationName)?.operation === 'query' })]),
      ...(options.plugins ?? []),
    ],
  });
}
