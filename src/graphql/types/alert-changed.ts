import { GraphQLError } from 'graphql';
import { AlertSubscriberTooSlow, type AlertChangeRecord } from '../../alerts/change-hub';
import type { AlertChangeKind as AlertChangeKindValue, AlertState } from '../../db/schema';
import type { AlertFilter as AlertFilterShape } from '../../models/alerts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { decodeCursor, encodeCursor } from '../cursors';
import { AlertFilter, alertFilterOf, AlertRef } from './alert';
import { endingFirst, itemOrEnd, StreamEnd } from '../subscription-stream';
import { SLOW_CONSUMER_CLOSE_CODE } from './live';

// alertChanged: every committed change of an alert, live, or replayed from a cursor and then live
// with no gap and no duplicate (as statusEvents): change ids commit in order, the hub says the id its
// live feed starts after, and the replay reads the change log up to exactly that id.

const CURSOR_SCOPE = 'AlertChange';
/** Changes read per catch-up query while replaying from a cursor. */
const REPLAY_PAGE = 500;

const AlertChangeKind = builder.enumType('AlertChangeKind', {
  values: {
    FIRED: { value: 'fired', description: 'The alert fired.' },
    ACKNOWLEDGED: { value: 'acknowledged', description: 'An operator acknowledged it.' },
    RESOLVED: { value: 'resolved', description: 'It was resolved (see `Alert.resolution`).' },
  } satisfies Record<Uppercase<AlertChangeKindValue>, { value: AlertChangeKindValue; description: string }>,
});

const AlertChangeRef = builder.objectRef<AlertChangeRecord>('AlertChange').implement({
  description: 'One change of an alert’s state, in the order changes were committed.',
  fields: (t) => ({
    cursor: t.string({ description: 'Its position: resubscribe with `after:` it to continue after it.', resolve: (change) => encodeCursor(CURSOR_SCOPE, [change.id]) }),
    kind: t.field({ type: AlertChangeKind, resolve: (change) => change.kind }),
    at: t.expose('at', { type: 'DateTime', description: 'When the change was committed.' }),
    alert: t.field({
      type: AlertRef,
      description: 'The alert as it is now (read when the change was delivered), not as it was at the change: a replayed FIRED change may show a resolved alert.',
      resolve: (change) => change.alert,
    }),
  }),
});

/** The state a change moved its alert to: what `filter.states` matches in this subscription. */
const STATE_AFTER: Record<AlertChangeKindValue, AlertState> = { fired: 'firing', acknowledged: 'acknowledged', resolved: 'resolved' };

function matches(change: AlertChangeRecord, filter: AlertFilterShape): boolean {
  const alert = change.alert;
  if (filter.states && !filter.states.includes(STATE_AFTER[change.kind])) return false;
  if (filter.severities && !filter.severities.includes(alert.severity)) return false;
  if (filter.ruleIds && !filter.ruleIds.includes(alert.ruleId)) return false;
  if (filter.boxIds && !filter.boxIds.includes(alert.boxId)) return false;
  if (filter.deviceIds && (alert.deviceId === null || !filter.deviceIds.includes(alert.deviceId))) return false;
  if (filter.firedSince && alert.firedAt < filter.firedSince) return false;
  if (filter.firedUntil && alert.firedAt >= filter.firedUntil) return false;
  return true;
}

async function follow(context: GraphQLContext, filter: AlertFilterShape, afterId: number | undefined): Promise<AsyncIterableIterator<AlertChangeRecord | StreamEnd>> {
  const principal = context.principal;
  if (!principal) throw new GraphQLError('Subscriptions need an API token.', { extensions: { code: 'UNAUTHENTICATED' } });
  const slotKey = String(principal.tokenId);
  if (!context.subscriptionCap.acquire(slotKey)) {
    throw new GraphQLError(
      `Token "${principal.name}" has ${context.subscriptionCap.max} subscriptions running, its limit (MAX_SUBSCRIPTIONS_PER_TOKEN); end one first.`,
      { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } },
    );
  }
  const { changes: live, startsAfter } = context.alertChanges.subscribe((change) => matches(change, filter), context.config.subscriptionBuffer);
  let revoked = false;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    context.subscriptionCap.release(slotKey);
    untrack();
  };
  const untrack = context.authenticator.track(principal, () => {
    revoked = true;
    void live.return?.();
  });
  // "From now on" means after what is committed now, read before the subscription counts as set up:
  // the hub may not have heard of the latest changes yet (their NOTIFY is on its way).
  let committedAtStart: number | undefined;
  if (afterId === undefined) {
    try {
      committedAtStart = await context.alertChanges.lastCommittedId();
    } catch (error) {
      release();
      await live.return?.();
      throw error;
    }
  }

  async function* replayThenLive(): AsyncGenerator<AlertChangeRecord | StreamEnd, undefined> {
    try {
      // Read after subscribing to the hub, so nothing committed later is missed.
      let last = Math.max(startsAfter, committedAtStart ?? 0);
      if (afterId !== undefined) {
        for (let from = afterId; from < startsAfter; ) {
          const rows = await context.alertChanges.changesBetween(from, startsAfter, REPLAY_PAGE);
          for (const change of rows) if (matches(change, filter)) yield change;
          if (rows.length < REPLAY_PAGE) break;
          from = rows[rows.length - 1]!.id;
        }
        // A cursor ahead of this process (another replica delivered more already) skips what it has seen.
        last = Math.max(afterId, startsAfter);
      }
      for await (const change of live) if (change.id > last) yield change;
      if (revoked) yield new StreamEnd(new GraphQLError('The API token of this subscription was revoked.', { extensions: { code: 'TOKEN_REVOKED' } }));
    } catch (error) {
      if (!(error instanceof AlertSubscriberTooSlow)) throw error;
      if (context.closeTransport) context.closeTransport(SLOW_CONSUMER_CLOSE_CODE, `Slow consumer: ${error.message}`.slice(0, 123));
      else yield new StreamEnd(new GraphQLError(error.message, { extensions: { code: 'SLOW_CONSUMER' } }));
    } finally {
      release();
      await live.return?.();
    }
    return undefined;
  }

  return endingFirst(replayThenLive(), async () => {
    release();
    await live.return?.();
  });
}

builder.subscriptionField('alertChanged', (t) =>
  t.field({
    type: AlertChangeRef,
    description:
      'Every alert change matching `filter` (`states` matches the state a change moved its alert to): with `after`, first the changes committed after that cursor, then live ones, with no gap and no duplicate. Resubscribe with the last cursor you received after a disconnect.',
    args: {
      filter: t.arg({ type: AlertFilter }),
      after: t.arg.string({ description: 'Replay from after this AlertChange cursor; omit to start with the next change.' }),
    },
    subscribe: (_root, { filter, after }, context) => {
      const afterId = after ? (decodeCursor(after, CURSOR_SCOPE, ['int'], 'after')[0] as number) : undefined;
      return follow(context, alertFilterOf(filter), afterId);
    },
    resolve: (change: AlertChangeRecord | StreamEnd) => itemOrEnd(change),
  }),
);
