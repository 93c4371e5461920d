import type pg from 'pg';
import { until } from './wait';

// The offline sweepers' sessions as Postgres shows them (pg_stat_activity, application_name
// fleetgate-sweeper), so a test can wait for sweep rounds of in-process and spawned gateways alike.
// A round of the replica holding the sweep ends on `commit`; a replica without it ends on its refused
// `pg_try_advisory_lock`, and asks again next round.

interface Round {
  pid: number;
  lastStatement: string;
  endedAt: string;
}

/** Watches the sweepers of `pool`'s database from now on; rounds are told apart by when they ended. */
async function watchRounds(pool: pg.Pool, kind: 'sweep' | 'lock refused') {
  const { rows } = await pool.query<{ now: string }>('select clock_timestamp()::text as now');
  const since = rows[0]!.now;
  const seen = new Map<number, Set<string>>();
  const statement = kind === 'sweep' ? 'commit' : '%pg_try_advisory_lock%';
  return async function rounds(): Promise<Map<number, Set<string>>> {
    const { rows: ended } = await pool.query<Round>(
      `select pid, query as "lastStatement", state_change::text as "endedAt" from pg_stat_activity
       where datname = current_database() and application_name = 'fleetgate-sweeper' and state = 'idle'
         and query ilike $1 and state_change > $2::timestamptz`,
      [statement, since],
    );
    for (const round of ended) {
      let ofSession = seen.get(round.pid);
      if (!ofSession) seen.set(round.pid, (ofSession = new Set()));
      ofSession.add(round.endedAt);
    }
    return seen;
  };
}

/** Waits until the replica holding the sweep has committed `count` sweep rounds after this call. */
export async function waitForSweeps(pool: pg.Pool, count: number, timeoutMs = 10_000): Promise<void> {
  const rounds = await watchRounds(pool, 'sweep');
  let total = 0;
  await until(
    async () => (total = [...(await rounds()).values()].reduce((n, ended) => n + ended.size, 0)) >= count,
    () => `${count} sweep rounds (saw ${total})`,
    { timeoutMs, intervalMs: 10 },
  );
}

/**
 * Waits until some replica has been refused the sweep: it asked for the lock in two rounds after this
 * call (a replica that gets the lock sweeps instead of asking again).
 */
export async function waitForRefusedSweep(pool: pg.Pool, timeoutMs = 10_000): Promise<void> {
  const rounds = await watchRounds(pool, 'lock refused');
  await until(async () => [...(await rounds()).values()].some((asked) => asked.size >= 2), 'a replica refused the sweep twice', { timeoutMs, intervalMs: 10 });
}
