import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

// Which fields an operation asks for below the field being resolved, so list reads select only the
// columns they need. Fragments and inline fragments are followed; @skip/@include are ignored (the
// answer is then a superset, which is safe).

function collect(info: GraphQLResolveInfo, selectionSet: SelectionSetNode, name: string, out: FieldNode[], seen: Set<string>): void {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value === name) out.push(selection);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      collect(info, selection.selectionSet, name, out, seen);
    } else {
      const fragment = info.fragments[selection.name.value];
      if (fragment && !seen.has(fragment.name.value)) {
        seen.add(fragment.name.value);
        collect(info, fragment.selectionSet, name, out, seen);
        seen.delete(fragment.name.value);
      }
    }
  }
}

/** The field nodes at `path` below `nodes` (e.g. `['edges', 'node']` below a connection field). */
export function fieldNodesAt(info: GraphQLResolveInfo, nodes: readonly FieldNode[], path: readonly string[]): FieldNode[] {
  let current: FieldNode[] = [...nodes];
  for (const name of path) {
    const next: FieldNode[] = [];
    for (const node of current) if (node.selectionSet) collect(info, node.selectionSet, name, next, new Set());
    current = next;
  }
  return current;
}

/** Names of the fields selected directly below `nodes`. */
export function fieldNames(info: GraphQLResolveInfo, nodes: readonly FieldNode[]): Set<string> {
  const names = new Set<string>();
  const visit = (selectionSet: SelectionSetNode, seen: Set<string>) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) names.add(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet, seen);
      else {
        const fragment = info.fragments[selection.name.value];
        if (fragment && !seen.has(fragment.name.value)) {
          seen.add(fragment.name.value);
          visit(fragment.selectionSet, seen);
          seen.delete(fragment.name.value);
        }
      }
    }
  };
  for (const node of nodes) if (node.selectionSet) visit(node.selectionSet, new Set());
  return names;
}

/** The node field nodes of a connection field: under `edges { node }` and `nodes`. */
export function connectionNodeFields(info: GraphQLResolveInfo): FieldNode[] {
  return [...fieldNodesAt(info, info.fieldNodes, ['edges', 'node']), ...fieldNodesAt(info, info.fieldNodes, ['nodes'])];
}

/**
 * The columns `fields` read, from a map of field name to columns; undefined (read every column) when
 * a field is not in the map, e.g. one added later without updating it.
 */
export function columnsFor<C>(fields: ReadonlySet<string>, map: Readonly<Record<string, readonly C[]>>): Set<C> | undefined {
  const columns = new Set<C>();
  for (const field of fields) {
    const needed = map[field];
    if (!needed) return undefined;
    for (const column of needed) columns.add(column);
  }
  return columns;
}
