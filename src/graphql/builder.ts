import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin, { AuthScopeFailureType, type AuthFailure, type AuthScopeMap } from '@pothos/plugin-scope-auth';
import { GraphQLError, type GraphQLResolveInfo, type GraphQLSchema } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { roleAllows, type ApiRole } from '../auth/roles';
import type { GraphQLContext } from './context';
import { badUserInput, clientError } from './errors';
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

/** How scope-auth words the failure of a type's own scopes (see its steps.ts). */
const TYPE_SCOPES_MESSAGE = /^Not authorized to read fields for (\w+)$/;

/** FORBIDDEN (or UNAUTHENTICATED) for `subject`, a field (`Box.lastReport`) or a type (`BoxConfigChange`). */
function refusal(context: GraphQLContext, subject: string, failure: AuthFailure, at?: GraphQLResolveInfo): GraphQLError {
  if (!context.principal) return clientError(`${subject} needs an API token.`, { code: 'UNAUTHENTICATED' }, at);
  const needed = neededRole(failure);
  const message = needed
    ? `${subject} needs the ${needed} role; token "${context.principal.name}" has ${context.principal.role}.`
    : `Token "${context.principal.name}" may not read ${subject}.`;
  return clientError(message, { code: 'FORBIDDEN', requiredRole: needed ?? null }, at);
}

/**
 * `node(id:)` and `nodes(ids:)` check the scopes of the type an id names before loading anything:
 * scope-auth checks a type's scopes on each of its fields, but `__typename` has no resolver, and an
 * id's mere existence must not be testable. Scopes that depend on the object itself are left to the fields.
 */
async function authorizeNodeType(typename: string, context: GraphQLContext, schema: GraphQLSchema): Promise<void> {
  const scopes = (schema.getType(typename)?.extensions as { pothosOptions?: { authScopes?: unknown } } | undefined)?.pothosOptions?.authScopes;
  if (!scopes || typeof scopes === 'function') return;
  await builder.runAuthScopes(context, scopes as AuthScopeMap<PothosSchemaTypes.ExtendDefaultTypes<SchemaTypes>>, (result) => refusal(context, typename, result.failure));
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
      // A type's own scopes are checked on each of its fields, whatever field led to the object: name the type.
      const subject = TYPE_SCOPES_MESSAGE.exec(result.message)?.[1] ?? `${info.parentType.name}.${info.fieldName}`;
      return refusal(context, subject, result.failure, info);
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
      resolve: async (_root, { id }, context, info, resolveNode) => {
        assertNodeTypename(id.typename, info.schema);
        await authorizeNodeType(id.typename, context, info.schema);
        return resolveNode(id);
      },
    },
    nodesQueryOptions: {
      description: `The objects with these IDs (at most ${MAX_PAGE_SIZE}), each null where none is found. Each counts toward the query cost like a page item.`,
      resolve: async (_root, { ids }, context, info, resolveNodes) => {
        if (ids.length > MAX_PAGE_SIZE) {
          throw badUserInput(`\`ids\` may hold at most ${MAX_PAGE_SIZE} IDs; it held ${ids.length}. Ask in several requests.`, { argument: 'ids', max: MAX_PAGE_SIZE });
        }
        for (const id of ids) assertNodeTypename(id.typename, info.schema);
        // A refused id is null with its own error; the others load as usual.
        const refused = await Promise.all(ids.map((id) => authorizeNodeType(id.typename, context, info.schema).then(() => null, (error: Error) => error)));
        const nodes = await resolveNodes(ids.filter((_, i) => !refused[i]));
        let next = 0;
        return ids.map((_, i) => refused[i] ?? nodes[next++]);
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
