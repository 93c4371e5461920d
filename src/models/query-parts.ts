import { sql, type SQL } from '../db/sql';

// Filters and keyset pages, as drizzle `sql` fragments that src/db/sql.ts runs.

export function and(conditions: readonly SQL[]): SQL {
  return conditions.length === 0 ? sql`true` : sql.join(conditions as SQL[], sql` and `);
}

/**
 * `expr` is one of `values`. One value is written as `=` so the planner can walk an index in order
 * (`status = $1 order by id`); `= any(array)` would make it sort instead. An empty list matches nothing.
 */
export function oneOf(expr: SQL, values: readonly (string | number)[], type: 'text' | 'int4' | 'int8'): SQL {
  if (values.length === 0) return sql`false`;
  if (values.length === 1) return sql`${expr} = ${values[0]}`;
  return sql`${expr} = any(${sql.param(values)}::${sql.raw(type)}[])`;
}

/** Case-insensitive substring match of `text` in any of `exprs` (`%` and `_` in `text` match themselves). */
export function containsText(exprs: readonly SQL[], text: string): SQL {
  const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return sql`(${sql.join(
    exprs.map((expr) => sql`${expr} ilike ${pattern}`),
    sql` or `,
  )})`;
}

// ---------------------------------------------------------------------------------------------
// Keyset pagination: a page is "rows after/before a position in an ordering", found through an index
// on (sort key, id) instead of OFFSET, so page 1,000 costs what page 1 does.

export type CursorValue = string | number;

/** A sort key before the id tie-breaker. Its cursor value is kept as text, exact to the microsecond. */
export interface SortKey {
  expr: SQL;
  /** The value as text for the cursor (`to_json(ts) #>> '{}'` for timestamps: ISO 8601 with microseconds). */
  cursorText: SQL;
  /** SQL type the cursor text is cast back to. */
  type: 'text' | 'timestamptz';
}

export interface Ordering {
  /** Null orders by the id alone. */
  key: SortKey | null;
  /** The unique id column, the last key of every ordering. */
  id: SQL;
  idType: 'int4' | 'int8';
  descending: boolean;
}

/** Which slice of an ordering to read: up to `size` rows, from the start (`first`) or the end (`last`). */
export interface PageWindow {
  size: number;
  fromEnd: boolean;
  /** Conditions built by `keysetCondition` (or a model's own, e.g. a cursor resolved by subquery). */
  after?: SQL;
  before?: SQL;
}

/** Rows strictly after (or before) the position `values` = [key value?, id] in `ordering`. */
export function keysetCondition(ordering: Ordering, values: readonly CursorValue[], side: 'after' | 'before'): SQL {
  const op = sql.raw((side === 'after') !== ordering.descending ? '>' : '<');
  const id = sql`${values[values.length - 1]}::${sql.raw(ordering.idType)}`;
  if (!ordering.key) return sql`${ordering.id} ${op} ${id}`;
  const key = sql`${values[0]}::${sql.raw(ordering.key.type)}`;
  return sql`(${ordering.key.expr}, ${ordering.id}) ${op} (${key}, ${id})`;
}

/** Keyset condition against the position of the row `id` itself, looked up by `positionOf(id)`. */
export function keysetConditionAt(ordering: Ordering, positionOf: SQL, side: 'after' | 'before'): SQL {
  const op = sql.raw((side === 'after') !== ordering.descending ? '>' : '<');
  if (!ordering.key) return sql`${ordering.id} ${op} (${positionOf})`;
  return sql`(${ordering.key.expr}, ${ordering.id}) ${op} (${positionOf})`;
}

/**
 * `select <columns>[, <sort key text> as "sortValue"] from <from> where <conditions and window>
 * order by <key>, <id> limit size + 1`: the extra row tells whether more exist. Reading from the end
 * (`last`) runs the ordering backwards; the caller flips the rows back.
 */
export function pageQuery(options: { columns: SQL; from: SQL; where: readonly SQL[]; ordering: Ordering; window: PageWindow }): SQL {
  const { columns, from, where, ordering, window } = options;
  const conditions = [...where];
  if (window.after) conditions.push(window.after);
  if (window.before) conditions.push(window.before);
  const direction = sql.raw(ordering.descending !== window.fromEnd ? 'desc' : 'asc');
  const order = ordering.key
    ? sql`${ordering.key.expr} ${direction}, ${ordering.id} ${direction}`
    : sql`${ordering.id} ${direction}`;
  const sortValue = ordering.key ? sql`, ${ordering.key.cursorText} as "sortValue"` : sql``;
  return sql`select ${columns}${sortValue} from ${from} where ${and(conditions)} order by ${order} limit ${window.size + 1}`;
}

/** `pageQuery` once per parent id, in one statement: `unnest(ids) cross join lateral (<page>)`. */
export function pagePerParentQuery(options: {
  parentIds: readonly number[];
  /** The child's column holding the parent id, e.g. `d.box_id`. */
  parentColumn: SQL;
  /** The parents' id type; default int4. */
  parentIdType?: 'int4' | 'int8';
  columns: SQL;
  from: SQL;
  where: readonly SQL[];
  ordering: Ordering;
  window: PageWindow;
}): SQL {
  const { parentIds, parentColumn, parentIdType = 'int4', ...page } = options;
  const inner = pageQuery({ ...page, where: [sql`${parentColumn} = parent.id`, ...page.where] });
  return sql`select page.* from unnest(${sql.param(parentIds)}::${sql.raw(parentIdType)}[]) as parent(id) cross join lateral (${inner}) as page`;
}

export const timestampKey = (expr: SQL): SortKey => ({ expr, cursorText: sql`to_json(${expr}) #>> '{}'`, type: 'timestamptz' });
export const textKey = (expr: SQL): SortKey => ({ expr, cursorText: expr, type: 'text' });
