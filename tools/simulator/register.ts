import type { BoxApiServer } from './box-api';

// Tells a gateway where each simulated box's REST API listens, through its GraphQL API: registerBox,
// or updateBox when the gateway knows the box already. A gateway records the source address of
// reports (127.0.0.1 here) and assumes port 5555; simulated boxes each listen on a port of their own.

const REGISTER = `mutation SimulatorRegisterBox($licenseKey: String!, $name: String, $address: String, $apiPort: Int) {
  registerBox(licenseKey: $licenseKey, name: $name, address: $address, apiPort: $apiPort) {
    __typename
    ... on RegisterBoxSuccess { box { id } }
    ... on LicenseKeyTaken { box { id } }
    ... on Error { message }
  }
}`;

const UPDATE = `mutation SimulatorUpdateBox($boxId: ID!, $address: String, $apiPort: Int) {
  updateBox(boxId: $boxId, address: $address, apiPort: $apiPort) {
    __typename
    ... on Error { message }
  }
}`;

export interface RegisteredBox {
  licenseKey: string;
  boxId: string;
  apiPort: number;
  /** `registered`: new to the gateway; `updated`: it knew the box and now has its API address and port. */
  action: 'registered' | 'updated';
}

type Result = { __typename: string; box?: { id: string }; message?: string };

async function call(graphqlUrl: string, token: string | undefined, query: string, variables: Record<string, unknown>, field: string): Promise<Result> {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let body: { data?: Record<string, Result> | null; errors?: { message: string }[] } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // reported below
  }
  const result = body?.data?.[field];
  if (!result) {
    const why = body?.errors?.map((e) => e.message).join('; ') ?? `HTTP ${response.status}: ${text.slice(0, 200)}`;
    throw new Error(`${field} at ${graphqlUrl} failed: ${why}`);
  }
  return result;
}

/**
 * Registers every box with its API port (and `address`, when given; else the gateway calls the
 * address its reports come from). A few calls at a time; the first failure is thrown.
 */
export async function registerApiPorts(
  graphqlUrl: string,
  apis: readonly BoxApiServer[],
  /** `token`: an operator (or admin) API token. */
  options: { address?: string; concurrency?: number; token?: string } = {},
): Promise<RegisteredBox[]> {
  const address = options.address ?? null;
  const results: RegisteredBox[] = [];
  let next = 0;
  const worker = async () => {
    while (next < apis.length) {
      const { box, port } = apis[next++]!;
      const registered = await call(graphqlUrl, options.token, REGISTER, { licenseKey: box.licenseKey, name: box.name, address, apiPort: port }, 'registerBox');
      if (registered.__typename === 'RegisterBoxSuccess' && registered.box) {
        results.push({ licenseKey: box.licenseKey, boxId: registered.box.id, apiPort: port, action: 'registered' });
      } else if (registered.__typename === 'LicenseKeyTaken' && registered.box) {
        const updated = await call(graphqlUrl, options.token, UPDATE, { boxId: registered.box.id, address, apiPort: port }, 'updateBox');
        if (updated.__typename !== 'UpdateBoxSuccess') throw new Error(`updateBox for ${box.licenseKey}: ${updated.message ?? updated.__typename}`);
        results.push({ licenseKey: box.licenseKey, boxId: registered.box.id, apiPort: port, action: 'updated' });
      } else {
        throw new Error(`registerBox for ${box.licenseKey}: ${registered.message ?? registered.__typename}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 8, apis.length) }, worker));
  return results;
}
