import { API_TOKEN_PREFIX, generateSecret } from '../../src/auth/tokens';

// Every test gateway starts with an admin token of its own (ADMIN_TOKEN); requests the helpers make
// to it (graphql(), wsClient(), sseSubscribe()) carry that token unless a test passes another one
// (`token: null` sends none).

const tokens = new Map<string, string>();

export function newAdminToken(): string {
  return generateSecret(API_TOKEN_PREFIX);
}

/** Remembers the admin token of the gateway at `baseUrl`. */
export function rememberToken(baseUrl: string, token: string): void {
  tokens.set(baseUrl, token);
}

/** The admin token of the gateway at `baseUrl`; undefined for a gateway the helpers did not start. */
export function adminTokenFor(baseUrl: string): string | undefined {
  return tokens.get(baseUrl);
}

/** `token` as given (null: none), else the gateway's admin token. */
export function tokenFor(baseUrl: string, token: string | null | undefined): string | undefined {
  return token === null ? undefined : (token ?? tokens.get(baseUrl));
}

export function authorization(baseUrl: string, token?: string | null): Record<string, string> {
  const value = tokenFor(baseUrl, token);
  return value ? { authorization: `Bearer ${value}` } : {};
}

