import type { IncomingMessage } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import type { Authentication, Authenticator } from '../auth/authenticator';
import { clientAddress } from '../auth/client-address';
import type { RateLimit } from '../auth/rate-limits';
import type { Principal } from '../auth/roles';
import { isDatabaseUnavailable } from '../db/connection';
import type { Logger } from '../log';

// Who may ask at all: every GraphQL request over HTTP (queries, mutations, SSE subscriptions) carries
// `Authorization: Bearer <token>`; what each role may then do is decided per field by scope-auth
// (./builder.ts). Websockets authenticate once, in connection_init (src/live/websocket.ts).

/** The principal of each authenticated HTTP request, for the context factory. */
const principals = new WeakMap<Request, Principal>();

export function principalOfRequest(request: Request): Principal | undefined {
  return principals.get(request);
}

const REALM = 'Bearer realm="fleetgate"';

export const AUTH_MESSAGES = {
  missing: 'An API token is required: send the header Authorization: Bearer <token>. `npm run token -- create` makes one.',
  malformed: 'The Authorization header is not "Bearer <token>".',
  invalid: 'The API token is not valid: it is unknown or was revoked.',
} as const;

function errorResponse(fetchAPI: { Response: typeof Response }, status: number, code: string, message: string, headers: Record<string, string> = {}) {
  return new fetchAPI.Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}

/** GraphiQL's page (a browser's GET for HTML) needs no token; the operations it sends do. */
function isGraphiQLPage(request: Request): boolean {
  if (request.method !== 'GET') return false;
  const url = new URL(request.url);
  return !url.searchParams.has('query') && (request.headers.get('accept') ?? '').includes('text/html');
}

export interface AuthenticationOptions {
  authenticator: Authenticator;
  perToken: RateLimit;
  perAddress: RateLimit;
  trustProxy: boolean;
  log: Logger;
}

/**
 * Answers 401 (no or bad token), 429 (over a rate, with Retry-After) or 503 (tokens cannot be read:
 * the database is down) before yoga parses anything, and records the principal for the context.
 */
export function useAuthentication(options: AuthenticationOptions): Plugin {
  return {
    async onRequest({ request, serverContext, endResponse, fetchAPI }) {
      if (isGraphiQLPage(request)) return;
      const req = (serverContext as { req?: IncomingMessage } | undefined)?.req;
      const address = (req && clientAddress(req, options.trustProxy)) ?? 'unknown';
      const byAddress = await options.perAddress.take(address);
      if (!byAddress.ok) {
        return endResponse(
          errorResponse(fetchAPI, 429, 'RATE_LIMITED', `Too many requests from ${address}; retry in ${byAddress.retryAfterSeconds} s.`, {
            'retry-after': String(byAddress.retryAfterSeconds),
          }),
        );
      }
      let authentication: Authentication;
      try {
        authentication = await options.authenticator.authenticate(request.headers.get('authorization'));
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        return endResponse(
          errorResponse(fetchAPI, 503, 'DATABASE_UNAVAILABLE', 'The database is unreachable, so the API token cannot be checked. Retry later.', { 'retry-after': '5' }),
        );
      }
      if (!authentication.ok) {
        options.log.debug({ reason: authentication.reason, address }, 'GraphQL request refused: no valid token');
        return endResponse(errorResponse(fetchAPI, 401, 'UNAUTHENTICATED', AUTH_MESSAGES[authentication.reason], { 'www-authenticate': REALM }));
      }
      const principal = authentication.principal;
      const byToken = await options.perToken.take(String(principal.tokenId));
      if (!byToken.ok) {
        return endResponse(
          errorResponse(fetchAPI, 429, 'RATE_LIMITED', `Too many requests for token ${principal.prefix}…; retry in ${byToken.retryAfterSeconds} s.`, {
            'retry-after': String(byToken.retryAfterSeconds),
          }),
        );
      }
      principals.set(request, principal);
    },
  };
}
