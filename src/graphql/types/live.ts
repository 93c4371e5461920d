import { GraphQLError } from 'graphql';
import { SlowConsumerError, type LiveEvent } from '../../live/event-hub';
import type { StatusEventFilter as StatusEventFilterShape, StatusEventRow } from '../../models/status-events';
import { builder } from '../builder';
import { assertCursorKept } from '../history-horizon';
import { endingFirst, itemOrEnd, StreamEnd } from '../subscription-stream';
import type { GraphQLContext } from '../context';
import { decodeStatusEventCursor } from '../cursors';
import { BoxRef } from './box';
import { DeviceRef, DeviceType } from './device';
import { EventStatus, StatusEventFilter, StatusEventRef } from './status-event';

/** Websocket close code for a subscriber that fell too far behind (application range 4000-4999). */
export const SLOW_CONSUMER_CLOSE_CODE = 4009;

/** What a live event must match; every set condition must hold, a list matches any of its values. */
interface LiveFilter {
  boxIds?: ReadonlySet<number>;
  deviceIds?: ReadonlySet<number>;
  subject?: 'box' | 'device';
  toStatus?: ReadonlySet<string>;
  deviceTypes?: ReadonlySet<string>;
  since?: Date;
  until?: Date;
}

function matches(event: LiveEvent, filter: LiveFilter): boolean {
  if (event.box.removedAt !== null) return false; // removed boxes are hidden, with their history
  if (filter.subject === 'box' && event.deviceId !== null) return false;
  if (filter.subject === 'device' && event.deviceId === null) return false;
  if (filter.boxIds && !filter.boxIds.has(event.boxId)) return false;
  if (filter.deviceIds && (event.deviceId === null || !filter.deviceIds.has(event.deviceId))) return false;
  if (filter.toStatus && !filter.toStatus.has(event.toStatus)) return false;
  if (filter.deviceTypes && (!event.device || !filter.deviceTypes.has(event.device.type))) return false;
  if (filter.since && event.at < filter.since) return false;
  if (filter.until && event.at >= filter.until) return false;
  return true;
}

const setOf = <T>(values: readonly T[] | null | undefined): ReadonlySet<T> | undefined => (values ? new Set(values) : undefined);

/** The filter's identity: subscribers with equal keys share one filter group in the hub. */
function filterKey(filter: LiveFilter): string {
  const list = <T>(values: ReadonlySet<T> | undefined) => (values ? [...values].sort() : null);
  return JSON.stringify([
    filter.subject ?? null,
    list(filter.boxIds),
    list(filter.deviceIds),
    list(filter.toStatus),
    list(filter.deviceTypes),
    filter.since?.toISOString() ?? null,
    filter.until?.toISOString() ?? null,
  ]);
}

/** Each live event's GraphQL object, made once: every subscriber gets the same object, so their executions are shared. */
const statusEvents = new WeakMap<LiveEvent, StatusEventRow>();

function toStatusEvent(event: LiveEvent): StatusEventRow {
  let row = statusEvents.get(event);
  if (!row) statusEvents.set(event, (row = statusEventOf(event)));
  return row;
}

/** The GraphQL object of a live event: the StatusEvent row with its box and device already loaded. */
function statusEventOf(event: LiveEvent): StatusEventRow {
  const box = event.box;
  const device = event.device && {
    ...event.device,
    lastSeenAt: event.device.removedAt ?? box.lastReportAt,
    stale: box.status === 'offline',
    box,
  };
  return { id: event.id, boxId: event.boxId, deviceId: event.deviceId, fromStatus: event.fromStatus, toStatus: event.toStatus, at: event.at, box, device: device ?? undefined };
}

const resolveEvent = (event: StatusEventRow | StreamEnd): StatusEventRow => itemOrEnd(event);

/** Ends a subscription that fell behind: a websocket is closed with a reason, SSE gets an error. */
function slowConsumer(context: GraphQLContext, error: SlowConsumerError): StreamEnd | undefined {
  if (context.closeTransport) {
    context.closeTransport(SLOW_CONSUMER_CLOSE_CODE, `Slow consumer: ${error.message}`.slice(0, 123));
    return undefined;
  }
  return new StreamEnd(new GraphQLError(error.message, { extensions: { code: 'SLOW_CONSUMER' } }));
}

/**
 * Live events matching `filter`, from those committed after the subscription on; with `afterId`,
 * first the stored events after it, then live ones, with no gap and no duplicate: the hub says which
 * id its live feed starts after, and the replay reads the table up to exactly that id.
 */
function follow(context: GraphQLContext, filter: LiveFilter, afterId?: number): AsyncIterableIterator<StatusEventRow | StreamEnd> {
  const principal = context.principal;
  if (!principal) throw new GraphQLError('Subscriptions need an API token.', { extensions: { code: 'UNAUTHENTICATED' } });
  const slotKey = String(principal.tokenId);
  if (!context.subscriptionCap.acquire(slotKey)) {
    throw new GraphQLError(
      `Token "${principal.name}" has ${context.subscriptionCap.max} subscriptions running, its limit (MAX_SUBSCRIPTIONS_PER_TOKEN); end one first.`,
      { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } },
    );
  }
  let untrack: (() => void) | undefined;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    context.subscriptionCap.release(slotKey);
    untrack?.();
  };
  let feed;
  try {
    // The moment a subscription overflows its reader may be stuck and never ask again: a websocket
    // is closed there and then; an SSE subscription gives its slot back at once, and its reader gets
    // the error as the stream's last item if it ever reads on.
    const onOverflow = (error: SlowConsumerError) => {
      if (context.closeTransport) slowConsumer(context, error);
      release();
    };
    feed = context.events.subscribeFrom(
      { key: filterKey(filter), accepts: (event) => matches(event, filter), boxIds: filter.boxIds },
      context.config.subscriptionBuffer,
      { onOverflow, replaying: afterId !== undefined },
    );
  } catch (error) {
    release();
    throw error;
  }
  const { events: live, startsAfter, replayed } = feed;
  const ended = { revoked: false };
  // A revoked token ends its subscriptions: a websocket is closed (4403) by the transport; an SSE
  // subscription ends with a TOKEN_REVOKED error.
  untrack = context.authenticator.track(principal, () => {
    ended.revoked = true;
    void live.return?.();
  });
  const stream = replayThenLive(context, filter, { live, startsAfter, replayed }, afterId, ended, release);
  return endingFirst(stream, async () => {
    release();
    await live.return?.();
  });
}

async function* replayThenLive(
  context: GraphQLContext,
  filter: LiveFilter,
  { live, startsAfter, replayed }: { live: AsyncIterableIterator<LiveEvent>; startsAfter: number; replayed: () => number | undefined },
  afterId: number | undefined,
  ended: { revoked: boolean },
  release: () => void,
): AsyncGenerator<StatusEventRow | StreamEnd, undefined> {
  try {
    let last = startsAfter;
    if (afterId !== undefined) {
      const sqlFilter: StatusEventFilterShape = {
        boxIds: filter.boxIds && [...filter.boxIds],
        deviceIds: filter.deviceIds && [...filter.deviceIds],
        subject: filter.subject,
        toStatus: filter.toStatus && [...filter.toStatus],
        since: filter.since,
        until: filter.until,
      };
      // Pages shared with other clients replaying the same range; each event waits for its slice of
      // the event loop, so a thousand replays at once leave ingest its turns. A replay longer than the
      // live buffer laps: it goes on from the table to the newest event (see EventHub.subscribeFrom).
      let boundary: number | undefined = startsAfter;
      let from = afterId;
      for (; boundary !== undefined; boundary = replayed()) {
        last = boundary;
        while (from < boundary) {
          const page = await context.replay.next(sqlFilter, from, boundary);
          for (const event of page.events) {
            if (!matches(event, filter)) continue;
            const wait = context.events.slices.turn();
            if (wait) await wait;
            yield toStatusEvent(event);
          }
          from = page.to;
        }
      }
      // A cursor ahead of this process (another replica delivered more already) skips what it has seen.
      last = Math.max(afterId, last);
    }
    for await (const event of live) if (event.id > last) yield toStatusEvent(event);
    if (ended.revoked) {
      yield new StreamEnd(new GraphQLError('The API token of this subscription was revoked.', { extensions: { code: 'TOKEN_REVOKED' } }));
    }
  } catch (error) {
    if (!(error instanceof SlowConsumerError)) throw error;
    const end = slowConsumer(context, error);
    if (end) yield end;
  } finally {
    release();
    await live.return?.();
  }
  return undefined;
}

const DeviceStatusChangedFilter = builder.inputType('DeviceStatusChangedFilter', {
  description: 'Conditions a device event must all meet. A list matches any of its values; omit a field to match all.',
  fields: (t) => ({
    boxes: t.globalIDList({ for: BoxRef, description: 'Devices of these boxes.' }),
    devices: t.globalIDList({ for: DeviceRef, description: 'These devices.' }),
    types: t.field({ type: [DeviceType], description: 'Devices of these types.' }),
    statuses: t.field({ type: [EventStatus], description: 'Changes to these statuses (`toStatus`).' }),
  }),
});

builder.subscriptionType({
  authScopes: { viewer: true },
  description:
    'Live status changes, over websockets (graphql-transport-ws) or SSE on /graphql. Each event is the StatusEvent the history query returns, with its cursor.',
});

builder.subscriptionField('deviceStatusChanged', (t) =>
  t.field({
    type: StatusEventRef,
    description: 'Device events from now on: first seen, online/offline, removed from and back in its box’s list.',
    args: { filter: t.arg({ type: DeviceStatusChangedFilter }) },
    subscribe: (_root, { filter }, context) =>
      follow(context, {
        subject: 'device',
        boxIds: setOf(filter?.boxes?.map((id) => Number(id.id))),
        deviceIds: setOf(filter?.devices?.map((id) => Number(id.id))),
        deviceTypes: setOf(filter?.types),
        toStatus: setOf(filter?.statuses),
      }),
    resolve: resolveEvent,
  }),
);

builder.subscriptionField('boxStatusChanged', (t) =>
  t.field({
    type: StatusEventRef,
    description: 'Box events from now on: first report, offline (fell silent), back online.',
    args: { boxes: t.arg.globalIDList({ for: BoxRef, description: 'Only these boxes; omit for all.' }) },
    subscribe: (_root, { boxes }, context) => follow(context, { subject: 'box', boxIds: setOf(boxes?.map((id) => Number(id.id))) }),
    resolve: resolveEvent,
  }),
);

builder.subscriptionField('statusEvents', (t) =>
  t.field({
    type: StatusEventRef,
    description:
      'Every event matching `filter`: first those stored after `after` (a StatusEvent cursor from a query or an earlier event), then live ones, with no gap and no duplicate. Resubscribe with the last cursor you received after a disconnect.',
    args: {
      after: t.arg.string({ description: 'Replay from after this cursor; omit to start with the next event.' }),
      filter: t.arg({ type: StatusEventFilter }),
    },
    subscribe: async (_root, { after, filter }, context) => {
      const afterId = after ? decodeStatusEventCursor(after) : undefined;
      if (afterId !== undefined) await assertCursorKept(context, afterId, 'after');
      return follow(
        context,
        {
          boxIds: setOf(filter?.box?.map((id) => Number(id.id))),
          deviceIds: setOf(filter?.device?.map((id) => Number(id.id))),
          subject: filter?.subject ?? undefined,
          toStatus: setOf(filter?.toStatus),
          since: filter?.since ?? undefined,
          until: filter?.until ?? undefined,
        },
        afterId,
      );
    },
    resolve: resolveEvent,
  }),
);
