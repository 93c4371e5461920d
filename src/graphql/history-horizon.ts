import type pg from 'pg';
import { readHorizon, type Horizon } from '../history/retention';
import type { GraphQLContext } from './context';
import { clientError } from './errors';

/**
 * The status history's horizon, read once for every caller that asks while a read is under way: a
 * thousand dashboards resuming at once after a restart make one read, not a thousand on GraphQL's pool.
 * (A caller joining a read that started just before a drop commits sees the horizon before it, as it
 * would had it asked a moment earlier.)
 */
const horizonReads = new WeakMap<pg.Pool, Promise<Horizon | null>>();

function currentHorizon(pool: pg.Pool): Promise<Horizon | null> {
  let reading = horizonReads.get(pool);
  if (!reading) {
    reading = readHorizon(pool, 'status_events').finally(() => horizonReads.delete(pool));
    horizonReads.set(pool, reading);
  }
  return reading;
}

/**
 * A status event cursor from before what retention dropped would page (or replay) over a gap it cannot
 * see: it is refused with HISTORY_EXPIRED, which tells the client to start again from current state.
 * The horizon is read at each use (one primary-key row): a cached one could be a drop behind.
 */
export async function assertCursorKept(context: GraphQLContext, eventId: number, argument: 'after' | 'before'): Promise<void> {
  const horizon = await currentHorizon(context.pool);
  if (horizon?.droppedThroughId == null || eventId > horizon.droppedThroughId) return;
  const days = context.config.historyRetentionDays;
  throw clientError(
    `The history at this \`${argument}\` cursor is no longer kept: events before ${horizon.droppedBefore.toISOString()} were dropped ` +
      `(HISTORY_RETENTION_DAYS=${days}). Read the current state (boxes, devices), then page or subscribe again without \`${argument}\`.`,
    { code: 'HISTORY_EXPIRED', argument, retainedSince: horizon.droppedBefore.toISOString() },
  );
}
