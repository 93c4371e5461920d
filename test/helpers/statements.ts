import type pg from 'pg';

type Query = pg.ClientBase['query'];

/**
 * Records every statement sent on `pool`'s connections until `stop()`: through `pool.query` and on
 * clients checked out for a transaction alike, named (prepared) or not. Each checkout is wrapped as
 * the pool hands the client out, so nothing reaches Postgres past it; a client already checked out
 * when watching began is not seen.
 */
export function watchStatements(pool: pg.Pool, statements: string[] = []): { statements: string[]; stop(): void } {
  const wrapped = new Map<pg.PoolClient, Query>();
  const onAcquire = (client: pg.PoolClient) => {
    if (wrapped.has(client)) return;
    const original = client.query;
    wrapped.set(client, original);
    client.query = function (this: pg.PoolClient, ...args: unknown[]) {
      const config = args[0] as { text?: string } | string;
      statements.push(typeof config === 'string' ? config : (config.text ?? String(config)));
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as Query;
  };
  pool.on('acquire', onAcquire);
  return {
    statements,
    stop() {
      pool.off('acquire', onAcquire);
      for (const [client, original] of wrapped) client.query = original;
      wrapped.clear();
    },
  };
}

/** Every statement sent on `pools` while `run` runs, in the order sent (see watchStatements). */
export async function recordStatements(pools: pg.Pool | pg.Pool[], run: () => Promise<unknown>): Promise<string[]> {
  const statements: string[] = [];
  const watches = [pools].flat().map((pool) => watchStatements(pool, statements));
  try {
    await run();
  } finally {
    for (const watch of watches) watch.stop();
  }
  return statements;
}

/** Whether no client of `pool` is checked out or awaited: work that took one has given it back. */
export function poolIsIdle(pool: pg.Pool): boolean {
  return pool.waitingCount === 0 && pool.idleCount === pool.totalCount;
}
