import { queryKey, selectRows, type SQL } from '../../db/sql';
import DataLoader from 'dataloader';
import type { CursorValue, PageWindow } from '../../models/query-parts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { decodeCursor, type CursorSlot } from '../cursors';
import { badUserInput } from '../errors';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../page-size';

export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../page-size';

export const OrderDirection = builder.enumType('OrderDirection', {
  values: {
    ASC: { value: 'ASC', description: 'Smallest first (oldest, A to Z).' },
    DESC: { value: 'DESC', description: 'Largest first (newest, Z to A).' },
  },
});

builder.globalConnectionField('totalCount', (t) =>
  t.int({
    nullable: false,
    description: 'Rows matching the filter, all pages together. Counted only when asked for; counts of 5,000 or more may be up to a second old.',
    resolve: (connection) => connection.totalCount(),
  }),
);

/** Relay connection arguments with their limits spelled out. */
export const connectionArgs = builder.args((t) => ({
  first: t.int({ description: `Rows from the start of the ordering (0 to ${MAX_PAGE_SIZE}). Default ${DEFAULT_PAGE_SIZE} when neither first nor last is given.` }),
  after: t.string({ description: 'Start after this cursor (an edge cursor or pageInfo.endCursor of this list and ordering).' }),
  last: t.int({ description: `Rows from the end of the ordering (0 to ${MAX_PAGE_SIZE}).` }),
  before: t.string({ description: 'End before this cursor (an edge cursor or pageInfo.startCursor of this list and ordering).' }),
}));

export interface PageArgs {
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

// ---------------------------------------------------------------------------------------------
// Pages

/** How a list reads positions: the cursor's scope and value types, and the SQL for "after/before it". */
export interface CursorSpec {
  scope: string;
  types: readonly CursorSlot[];
  keyset: (values: CursorValue[], side: 'after' | 'before') => SQL;
}

function pageSize(value: number | null | undefined, argument: 'first' | 'last'): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (value < 0 || value > MAX_PAGE_SIZE) {
    throw badUserInput(`\`${argument}\` must be between 0 and ${MAX_PAGE_SIZE}; it was ${value}. Page through longer lists with after/before.`, {
      argument,
      max: MAX_PAGE_SIZE,
    });
  }
  return value;
}

/** The page that relay arguments ask for, or `BAD_USER_INPUT` saying what is wrong with them. */
export function pageWindow(args: PageArgs, spec: CursorSpec): PageWindow {
  const first = pageSize(args.first, 'first');
  const last = pageSize(args.last, 'last');
  if (first !== undefined && last !== undefined) {
    throw badUserInput('Pass either `first` or `last`, not both.', { argument: 'last' });
  }
  const window: PageWindow = { size: first ?? last ?? DEFAULT_PAGE_SIZE, fromEnd: last !== undefined };
  if (args.after != null) window.after = spec.keyset(decodeCursor(args.after, spec.scope, spec.types, 'after'), 'after');
  if (args.before != null) window.before = spec.keyset(decodeCursor(args.before, spec.scope, spec.types, 'before'), 'before');
  return window;
}

/** An edge whose cursor is encoded only if a client asks for it. */
class Edge<T> {
  constructor(
    readonly node: T,
    private readonly encode: (node: T) => string,
  ) {}

  get cursor(): string {
    return this.encode(this.node);
  }
}

export interface Connection<T> {
  edges: Edge<T>[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: () => Promise<number> | number;
}

/**
 * A relay connection from the rows a page query returned (up to `window.size + 1`; the extra row
 * means more exist in the direction read). With `after`, an earlier page exists (the row at the
 * cursor, at least); likewise a later one with `before`.
 */
export function connectionFromRows<T>(
  rows: readonly T[],
  window: PageWindow,
  cursorOf: (node: T) => string,
  totalCount: () => Promise<number> | number,
): Connection<T> {
  const more = rows.length > window.size;
  const page = more ? rows.slice(0, window.size) : [...rows];
  if (window.fromEnd) page.reverse();
  const edges = page.map((node) => new Edge(node, cursorOf));
  return {
    edges,
    pageInfo: {
      hasNextPage: window.fromEnd ? window.before !== undefined : more,
      hasPreviousPage: window.fromEnd ? more : window.after !== undefined,
      startCursor: edges.length > 0 ? edges[0]!.cursor : null,
      endCursor: edges.length > 0 ? edges[edges.length - 1]!.cursor : null,
    },
    totalCount,
  };
}

/**
 * This operation's DataLoader for `key` (a field and its arguments): the children of every parent
 * that asks in the same tick are read by one `batch` call, i.e. one statement.
 */
export function batchLoader<T>(
  context: GraphQLContext,
  key: string,
  batch: (parentIds: readonly number[]) => Promise<Map<number, T>>,
  missing: T,
): DataLoader<number, T> {
  let loader = context.loaders.get(key) as DataLoader<number, T> | undefined;
  if (!loader) {
    loader = new DataLoader<number, T>(async (ids) => {
      const found = await batch(ids);
      return ids.map((id) => found.get(id) ?? missing);
    });
    context.loaders.set(key, loader as DataLoader<number, unknown>);
  }
  return loader;
}

/** Groups rows by a parent id, keeping their order. */
export function groupBy<T>(rows: readonly T[], parentOf: (row: T) => number | null): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const row of rows) {
    const parent = parentOf(row);
    if (parent === null) continue;
    const list = groups.get(parent);
    if (list) list.push(row);
    else groups.set(parent, [row]);
  }
  return groups;
}

/** A count for `totalCount`: exact when small, from the shared CountCache when large. */
export function countRows(context: GraphQLContext, query: SQL): Promise<number> {
  return context.counts.get(
    queryKey(query),
    async () => (await selectRows<{ count: number }>(context.pool, query))[0]?.count ?? 0,
    (count) => count,
    { snapshot: context.snapshot, lagging: () => (context.countsLag = true) },
  );
}

/** Trims a search string; empty means no search. Long ones are refused rather than scanned for. */
export function searchText(value: string | null | undefined): string | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (text.length > MAX_SEARCH_LENGTH) {
    throw badUserInput(`\`search\` is longer than ${MAX_SEARCH_LENGTH} characters.`, { argument: 'search' });
  }
  return text;
}

const MAX_SEARCH_LENGTH = 200;
