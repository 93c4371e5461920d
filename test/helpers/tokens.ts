import { graphql } from './graphql';

/** Makes an API token through the admin mutation (as the gateway's admin token); returns its secret and id. */
export async function createToken(baseUrl: string, role: 'viewer' | 'operator' | 'admin', name = `${role} token`): Promise<{ token: string; id: string }> {
  const response = await graphql<any, unknown>(
    baseUrl,
    `mutation ($name: String!, $role: ApiRole!) {
      createApiToken(name: $name, role: $role) { __typename ... on CreateApiTokenSuccess { token apiToken { id } } ... on Error { message } }
    }`,
    { name, role: role.toUpperCase() },
  );
  const result = response.body.data?.createApiToken;
  if (result?.__typename !== 'CreateApiTokenSuccess') throw new Error(`createApiToken failed: ${JSON.stringify(response.body)}`);
  return { token: result.token, id: result.apiToken.id };
}

/** Revokes a token through the admin mutation. */
export async function revokeToken(baseUrl: string, id: string): Promise<void> {
  const response = await graphql<any, unknown>(baseUrl, `mutation ($id: ID!) { revokeApiToken(id: $id) { __typename } }`, { id });
  if (response.body.data?.revokeApiToken?.__typename !== 'RevokeApiTokenSuccess') throw new Error(`revokeApiToken failed: ${JSON.stringify(response.body)}`);
}
