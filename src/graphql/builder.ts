import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin, { AuthScopeFailureType, type AuthFailure } from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { roleAllows, type ApiRole } from '../auth/roles';
import type { GraphQLContext } from './context';
import { badUserInput } from './errors';
import { assertNodeTypename, decodeGlobalId } from './global-id';
import { MAX_PAGE_SIZE } from './page-size';

export interface SchemaTypes {
  Context: GraphQLContext;
  Scalars: {
    ID: { Input: string; Output: number | string };
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
  /** Every connection counts its rows lazily: the count query runs only when `totalCount` is asked for. */
  Connection: { totalCount: () => Promise<number> | number };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: { list: false; items: false };
  DefaultNodeNullability: false;
  /** Roles nest (see src/auth/roles.ts): `operator` holds for operator and admin tokens. */
  AuthScopes: { viewer: boolean; operator: boolean; admin: boolean };
}

/** The role a failed scope check asked for (the first one named). */
function neededRole(failure: AuthFailure): ApiRole | undefined {
  if (failure.kind === AuthScopeFailureType.AuthScope) return failure.scope as ApiRole;
  if (failure.kind === AuthScopeFailureType.AnyAuthScopes || failure.kind === AuthScopeFailureType.AllAuthScopes) {
    for (const inner of failure.failures) {
      const role = neededRole(inner);
      if (role) return role;
    }
  }
  return undefined;
}

/**
 * Plugins, scalars and the context type only; the types live in ./types, one file per domain type.
 * ScopeAuthPlugin goes first (it must wrap every resolver before the others do), ErrorsPlugin after
 * RelayPlugin (so relay payload types can carry error unions).
 */
export const builder = new SchemaBuilder<SchemaTypes>({
  // Errors before Dataloader: a field with an error union may return a loadable object.
  plugins: [ScopeAuthPlugin, RelayPlugin, ErrorsPlugin, DataloaderPlugin],
  scopeAuth: {
    // Every operation has a principal (src/graphql/auth.ts refuses requests without one); scopes are its role.
    authScopes: (context) => {
      const role = context.principal?.role;
      return {
        viewer: role !== undefined && roleAllows(role, 'viewer'),
        operator: role !== undefined && roleAllows(role, 'operator'),
        admin: role !== undefined && roleAllows(role, 'admin'),
      };
    },
    // A subscription is checked once, when it starts, not on every event.
    authorizeOnSubscribe: true,
    unauthorizedError: (_parent, context, info, result) => {
      const needed = neededRole(result.failure);
      const field = `${info.parentType.name}.${info.fieldName}`;
      if (!context.principal) return new GraphQLError(`${field} needs an API token.`, { extensions: { code: 'UNAUTHENTICATED' } });
      const message = needed
        ? `${field} needs the ${needed} role; token "${context.principal.name}" has ${context.principal.role}.`
        : `Token "${context.principal.name}" may not read ${field}.`;
      return new GraphQLError(message, { extensions: { code: 'FORBIDDEN', requiredRole: needed ?? null } });
    },
  },
  // Only the failures a field lists become union members; anything else stays a (masked) GraphQL error.
  errors: { defaultTypes: [] },
  // Fields are non-null unless they say `nullable: true`: clients need no null checks for what always exists.
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    decodeGlobalID: decodeGlobalId,
    nodeQueryOptions: {
      resolve: (_root, { id }, _context, info, resolveNode) => {
        assertNodeTypename(id.typename, info.schema);
        return resolveNode(id);
      },
    },
    nodesQueryOptions: {
      description: `The objects with these IDs (at most ${MAX_PAGE_SIZE}), each null where none is found. Each counts toward the query cost like a page item.`,
      resolve: (_root, { ids }, _context, info, resolveNodes) => {
        if (ids.length > MAX_PAGE_SIZE) {
          throw badUserInput(`\`ids\` may hold at most ${MAX_PAGE_SIZE} IDs; it held ${ids.length}. Ask in several requests.`, { argument: 'ids', max: MAX_PAGE_SIZE });
        }
        for (const id of ids) assertNodeTypename(id.typename, info.schema);
        return resolveNodes(ids);
      },
    },
    edgesFieldOptions: { nullable: { list: false, items: false } },
    nodeFieldOptions: { nullable: false },
    nodesOnConnection: { description: 'The nodes of `edges`, for clients that need no cursors.' },
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);

builder.queryType({ authScopes: { viewer: true }, description: 'Reads over the fleet: boxes, their devices, and the history of their statuses.' });
builder.mutationType({
  description: 'Changes: box settings through the box’s own REST API, and the boxes the gateway knows. Failures a client can act on are members of each field’s result union.',
});
