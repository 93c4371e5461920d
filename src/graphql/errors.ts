import { GraphQLError } from 'graphql';

/**
 * `extensions.code` values this API sets, beside yoga's own (`GRAPHQL_PARSE_FAILED`,
 * `GRAPHQL_VALIDATION_FAILED`, `BAD_REQUEST`, ...). Anything unexpected is answered as
 * `INTERNAL_SERVER_ERROR` with a generic message; the cause goes to the log only.
 */
export type ErrorCode = 'BAD_USER_INPUT' | 'INTERNAL_SERVER_ERROR';

/** An error in the request's arguments: the client can fix it; the message says how. */
export function badUserInput(message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', ...extensions } });
}
