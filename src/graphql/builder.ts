import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { GraphQLContext } from './context';
import { assertNodeTypename, decodeGlobalId } from './global-id';

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
}

/**
 * Plugins, scalars and the context type only; the types live in ./types, one file per domain type.
 * Later plugins slot into `plugins`: ScopeAuthPlugin goes first (it must wrap every resolver before
 * the others do), ErrorsPlugin after RelayPlugin (so relay payload types can carry error unions).
 */
export const builder = new SchemaBuilder<SchemaTypes>({
  // Errors before Dataloader: a field with an error union may return a loadable object.
  plugins: [RelayPlugin, ErrorsPlugin, DataloaderPlugin],
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
      resolve: (_root, { ids }, _context, info, resolveNodes) => {
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

builder.queryType({ description: 'Reads over the fleet: boxes, their devices, and the history of their statuses.' });
builder.mutationType({
  description: 'Changes: box settings through the box’s own REST API, and the boxes the gateway knows. Failures a client can act on are members of each field’s result union.',
});
