import type { GraphiQLOptions } from 'graphql-yoga';

/** What the Headers tab starts with: the token step, written where the token goes. */
export const TOKEN_PLACEHOLDER = 'Bearer <paste a token: npm run token -- create --role viewer --name "my browser">';

export const EXAMPLE_QUERY = `# fleetgate's GraphQL API. Every request carries an API token:
#   1. make one where the gateway runs:
#        npm run token -- create --role viewer --name "my browser"
#   2. paste it in the Headers tab below, in place of <paste a token: …>
#   3. run this query (the ▶ button or Ctrl-Enter).
# Docs (the book icon on the left) shows the schema once the token is in.

# Offline devices, longest offline first, with their boxes.
query OfflineDevices {
  devices(first: 20, filter: { status: OFFLINE }, orderBy: { field: STATUS_SINCE, direction: ASC }) {
    totalCount
    edges {
      node { name ip type statusSince box { licenseKey name lastReportAt } }
    }
    pageInfo { hasNextPage endCursor }
  }
  fleetSummary { boxes { total online offline } devices { total online offline unknown removed } }
}
`;

/**
 * GraphiQL at GET /graphql: the example query in the editor, the Headers tab open with the token's
 * place marked. Headers are not kept in the browser's storage: an API token is a lasting credential.
 */
export const GRAPHIQL_OPTIONS = {
  title: 'fleetgate',
  defaultQuery: EXAMPLE_QUERY,
  headers: JSON.stringify({ Authorization: TOKEN_PLACEHOLDER }, null, 2),
  defaultEditorToolsVisibility: 'headers',
  shouldPersistHeaders: false,
} satisfies GraphiQLOptions;
