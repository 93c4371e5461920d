import type { RolloutState } from '../../db/schema';
import { progressByRolloutIds, rolloutsByIds } from '../../rollouts/rollouts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { clientError } from '../errors';
import { endingFirst, itemOrEnd, StreamEnd } from '../subscription-stream';
import { NO_TARGETS, rolloutIdFrom, RolloutNotFound, RolloutRef, type RolloutNode } from './rollout';

// rolloutProgress: a rollout as it is now, then again whenever any replica changes it (NOTIFY
// fleetgate_rollouts, heard by this replica's RolloutChangeHub), until nothing about it can change.

/** Least time between two events of one subscription: a burst of calls recorded is one event. */
const PROGRESS_COALESCE_MS = 100;
const FINAL_STATES: readonly RolloutState[] = ['cancelled', 'completed'];

async function followRollout(context: GraphQLContext, id: string): Promise<AsyncIterableIterator<RolloutNode | StreamEnd>> {
  const principal = context.principal;
  if (!principal) throw clientError('Subscriptions need an API token.', { code: 'UNAUTHENTICATED' });
  const rolloutId = rolloutIdFrom(id);
  const [first] = rolloutId === undefined ? [] : await rolloutsByIds(context.pool, [rolloutId]);
  if (!first) throw clientError(new RolloutNotFound(id).message, { code: 'NOT_FOUND' });
  const slotKey = String(principal.tokenId);
  if (!context.subscriptionCap.acquire(slotKey)) {
    throw clientError(`Token "${principal.name}" has ${context.subscriptionCap.max} subscriptions running, its limit (MAX_SUBSCRIPTIONS_PER_TOKEN); end one first.`, {
      code: 'TOO_MANY_SUBSCRIPTIONS',
    });
  }
  let changed = true;
  let ended = false;
  let wake: (() => void) | undefined;
  const unwatch = context.rolloutChanges.watch(first.id, () => {
    changed = true;
    wake?.();
  });
  let revoked = false;
  const untrack = context.authenticator.track(principal, () => {
    revoked = true;
    ended = true;
    wake?.();
  });
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    unwatch();
    untrack();
    context.subscriptionCap.release(slotKey);
  };
  const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  async function* progress(): AsyncGenerator<RolloutNode | StreamEnd, undefined> {
    try {
      while (!ended) {
        changed = false;
        const [rollout] = await rolloutsByIds(context.pool, [first!.id]);
        if (!rollout) return undefined;
        const counts = (await progressByRolloutIds(context.pool, [rollout.id])).get(rollout.id) ?? NO_TARGETS;
        // The context lives as long as the subscription: what its loaders kept is an event old.
        context.loaders.clear();
        yield { ...rollout, progress: counts };
        // Final, and the calls under way at a cancel recorded: nothing will change any more.
        if (FINAL_STATES.includes(rollout.state) && counts.running === 0) return undefined;
        const sent = performance.now();
        while (!changed && !ended) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        const wait = sent + PROGRESS_COALESCE_MS - performance.now();
        if (wait > 0 && !ended) await pause(wait);
      }
      if (revoked) yield new StreamEnd(clientError('The API token of this subscription was revoked.', { code: 'TOKEN_REVOKED' }));
    } finally {
      release();
    }
    return undefined;
  }

  return endingFirst(progress(), async () => {
    ended = true;
    wake?.();
    release();
  });
}

builder.subscriptionField('rolloutProgress', (t) =>
  t.field({
    type: RolloutRef,
    description:
      'The rollout as it is now, then again whenever it changes (at most every 100 ms: a burst of calls recorded comes as one), from whichever replica runs it; completes once the rollout is completed or cancelled and no call of it is under way.',
    args: { id: t.arg.id({ required: true }) },
    subscribe: (_root, args, context) => followRollout(context, String(args.id)),
    resolve: (rollout: RolloutNode | StreamEnd) => itemOrEnd(rollout),
  }),
);

