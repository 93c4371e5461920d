import { getTableColumns, sql, type SQL } from 'drizzle-orm';
import { PgDialect, type PgTable } from 'drizzle-orm/pg-core';
import type pg from 'pg';

// The one way fleetgate writes SQL: drizzle's `sql` template (values become bound parameters,
// fragments compose), turned into text by this one dialect and run on a pg pool or client here.
// See ARCHITECTURE.md, "SQL".

const dialect = new PgDialect();
const statementNames = new Map<string, string>();
/** Shapes beyond this run unnamed; filters combine into far fewer in practice. */
const MAX_NAMED_STATEMENTS = 2_000;

export type Queryable = pg.Pool | pg.ClientBase;

/** The text and parameters pg is given for `query`. */
export function toQuery(query: SQL): { text: string; values: unknown[] } {
  const { sql: text, params } = dialect.sqlToQuery(query);
  return { text, values: params };
}

/**
 * Runs one statement. A statement run often is prepared once per connection under a name: give
 * `name` for a fixed statement; reads (`selectRows`) are named by their text.
 */
export async function run<T extends pg.QueryResultRow = pg.QueryResultRow>(db: Queryable, query: SQL, name?: string): Promise<pg.QueryResult<T>> {
  const { text, values } = toQuery(query);
  return db.query<T>(name ? { name, text, values } : { text, values });
}

/** Runs one read and returns its rows, as a statement prepared once per connection per shape. */
export async function selectRows<T>(db: Queryable, query: SQL): Promise<T[]> {
  const { text, values } = toQuery(query);
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `fleetgate_read_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  const result = await db.query<T & pg.QueryResultRow>(name ? { name, text, values } : { text, values });
  return result.rows;
}

/** The SQL text and parameters of a query, e.g. as a cache key. */
export function queryKey(query: SQL): string {
  const { text, values } = toQuery(query);
  return `${text}\u0000${JSON.stringify(values)}`;
}

/** Runs `work` in one transaction on a client of its own: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Every column of `table` under its drizzle field name (`license_key as "licenseKey"`): a row as drizzle types it. */
export function fieldsOf(table: PgTable): SQL {
  return sql.join(
    Object.entries(getTableColumns(table)).map(([field, column]) => sql`${sql.identifier(column.name)} as ${sql.identifier(field)}`),
    sql`, `,
  );
}

export { sql, type SQL };
