import { readHorizon } from '../history/retention';
import type { GraphQLContext } from './context';
import { clientError } from './errors';

/**
 * A status event cursor from before what retention dropped would page (or replay) over a gap it cannot
 * see: it is refused with HISTORY_EXPIRED, which tells the client to start again from current state.
 * The horizon is read at each use (one primary-key row): a cached one could be a drop behind.
 */
export async function assertCursorKept(context: GraphQLContext, eventId: number, argument: 'after' | 'before'): Promise<void> {
  const horizon = await readHorizon(context.pool, 'status_events');
  if (horizon?.droppedThroughId == null || eventId > horizon.droppedThroughId) return;
  const days = context.config.historyRetentionDays;
  throw clientError(
    `The history at this \`${argument}\` cursor is no longer kept: events before ${horizon.droppedBefore.toISOString()} were dropped ` +
      `(HISTORY_RETENTION_DAYS=${days}). Read the current state (boxes, devices), then page or subscribe again without \`${argument}\`.`,
    { code: 'HISTORY_EXPIRED', argument, retainedSince: horizon.droppedBefore.toISOString() },
  );
}
