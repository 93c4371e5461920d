import type pg from 'pg';
import { toQuery, type SQL } from '../../db/sql';

/**
 * pg's pipeline mode on a pooled client for the span of one batch: each statement is written at once,
 * without waiting for the answer to the one before; Postgres still runs them one after another, in
 * order. A batch then waits for Postgres two or three times instead of once per statement, and a
 * transaction's last statement and its COMMIT go together, so the events lock taken by the first is
 * held only as long as Postgres needs (see events-table.ts).
 *
 * `end()` waits for every statement sent, then leaves the mode: the client returns to its pool idle,
 * as every other user of the pool expects it.
 */
export class Pipeline {
  private readonly sent: Array<Promise<unknown>> = [];

  constructor(readonly client: pg.ClientBase) {
    setPipelineMode(client, true);
  }

  /** Sends one statement (see src/db/sql.ts `run`); a fixed `name` keeps it prepared on the connection. */
  run<R extends pg.QueryResultRow = pg.QueryResultRow>(query: SQL, name?: string): Promise<pg.QueryResult<R>> {
    const { text, values } = toQuery(query);
    return this.track(this.client.query<R>(name ? { name, text, values } : { text, values }));
  }

  /** A statement sent by other code on this client (e.g. insertStatusEvents), so `end()` waits for it too. */
  track<T>(promise: Promise<T>): Promise<T> {
    this.sent.push(promise);
    // The caller awaits it; a statement after a failed one may be left unawaited and must not be an unhandled rejection.
    promise.catch(() => {});
    return promise;
  }

  async end(): Promise<void> {
    await Promise.allSettled(this.sent);
    this.sent.length = 0;
    setPipelineMode(this.client, false);
  }
}

function setPipelineMode(client: pg.ClientBase, on: boolean): void {
  // A constructor option in pg; it is read on every query, so a client with nothing in flight can switch.
  (client as unknown as { pipeline: boolean }).pipeline = on;
}
