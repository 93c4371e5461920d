import {
  countStatusEventsPerParent,
  countStatusEventsQuery,
  statusEventKeyset,
  statusEventOrdering,
  statusEventsByIds,
  statusEventsPage,
  statusEventsPagePerParent,
  type StatusEventFilter as StatusEventFilterShape,
  type StatusEventOrderField,
  type StatusEventRow,
} from '../../models/status-events';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { decodeStatusEventCursor, encodeStatusEventCursor, STATUS_EVENT_CURSOR_SCOPE, STATUS_EVENT_CURSOR_SLOTS } from '../cursors';
import { assertCursorKept } from '../history-horizon';
import { parseDatabaseId } from '../global-id';
import { BoxRef } from './box';
import { DeviceRef } from './device';
import {
  batchLoader,
  connectionArgs,
  connectionFromRows,
  countRows,
  groupBy,
  OrderDirection,
  pageWindow,
  type CursorSpec,
  type PageArgs,
} from './pagination';

export const EventStatus = builder.enumType('EventStatus', {
  description: 'A status in the history: a device or box status, or REMOVED for a device gone from its box’s list.',
  values: {
    ONLINE: { value: 'online' },
    OFFLINE: { value: 'offline' },
    UNKNOWN: { value: 'unknown' },
    REMOVED: { value: 'removed' },
  } as const,
});

export const StatusEventSubject = builder.enumType('StatusEventSubject', {
  values: {
    BOX: { value: 'box', description: 'The box itself went online or offline.' },
    DEVICE: { value: 'device', description: 'One of its devices changed.' },
  } as const,
});

export const StatusEventRef = builder.loadableNode('StatusEvent', {
  description:
    'One change of status. `fromStatus` null: first seen. `toStatus` REMOVED: the device left its box’s list; `fromStatus` REMOVED: it came back.',
  id: { resolve: (event: StatusEventRow) => event.id, parse: (id) => parseDatabaseId(id, 'StatusEvent') },
  load: (ids: number[], context: GraphQLContext) => statusEventsByIds(context.pool, ids),
  toKey: (event) => event.id,
  sort: true,
  fields: (t) => ({
    subject: t.field({ type: StatusEventSubject, resolve: (event) => (event.deviceId === null ? 'box' : 'device') }),
    // Live events arrive with their box and device, read once per process for every subscriber.
    box: t.field({ type: BoxRef, resolve: (event) => event.box ?? event.boxId }),
    device: t.field({
      type: DeviceRef,
      nullable: true,
      description: 'Null for box events.',
      resolve: (event) => event.device ?? event.deviceId,
    }),
    fromStatus: t.field({
      type: EventStatus,
      nullable: true,
      description: 'Null when the device (or box) was first seen.',
      resolve: (event) => event.fromStatus as 'online' | null,
    }),
    toStatus: t.field({ type: EventStatus, resolve: (event) => event.toStatus as 'online' }),
    at: t.expose('at', { type: 'DateTime', description: 'When the report that showed the change arrived.' }),
    cursor: t.string({
      description: 'This event’s position for `after`/`before` (the same as its edge cursor, in any ordering).',
      resolve: (event) => encodeStatusEventCursor(event.id, event.atText),
    }),
  }),
});

// ---------------------------------------------------------------------------------------------
// Lists

const StatusEventOrderFieldEnum = builder.enumType('StatusEventOrderField', {
  description: 'Orderings of status events. Ties are broken by id, in the same direction.',
  values: {
    AT: { value: 'AT', description: 'By time.' },
    ID: { value: 'ID', description: 'By the order they were recorded.' },
  } satisfies Record<StatusEventOrderField, { value: StatusEventOrderField; description?: string }>,
});

const StatusEventOrder = builder.inputType('StatusEventOrder', {
  fields: (t) => ({
    field: t.field({ type: StatusEventOrderFieldEnum, required: true }),
    direction: t.field({ type: OrderDirection, defaultValue: 'DESC', description: 'Default DESC (also when null).' }),
  }),
});

export const StatusEventFilter = builder.inputType('StatusEventFilter', {
  description: 'Conditions an event must all meet. A list matches any of its values.',
  fields: (t) => ({
    box: t.globalIDList({ for: BoxRef, description: 'Events of these boxes (their own and their devices’).' }),
    device: t.globalIDList({ for: DeviceRef, description: 'Events of these devices.' }),
    subject: t.field({ type: StatusEventSubject }),
    toStatus: t.field({ type: [EventStatus] }),
    since: t.field({ type: 'DateTime', description: 'At or after this time.' }),
    until: t.field({ type: 'DateTime', description: 'Before this time.' }),
  }),
});

export const StatusEventConnection = builder.connectionObject(
  { type: StatusEventRef, name: 'StatusEventConnection' },
  { name: 'StatusEventEdge' },
);

const statusEventListArgs = builder.args((t) => ({
  ...connectionArgs,
  filter: t.field({ type: StatusEventFilter }),
  orderBy: t.field({
    type: StatusEventOrder,
    defaultValue: { field: 'AT', direction: 'DESC' },
    description: 'Default: by time, newest first.',
  }),
}));

interface StatusEventListArgs extends PageArgs {
  filter?: {
    box?: { id: number }[] | null;
    device?: { id: number }[] | null;
    subject?: 'box' | 'device' | null;
    toStatus?: string[] | null;
    since?: Date | null;
    until?: Date | null;
  } | null;
  orderBy?: { field: StatusEventOrderField; direction?: 'ASC' | 'DESC' | null } | null;
}

function statusEventList(args: StatusEventListArgs) {
  const input = args.filter;
  const filter: StatusEventFilterShape = {
    boxIds: input?.box?.map((id) => id.id),
    deviceIds: input?.device?.map((id) => id.id),
    subject: input?.subject ?? undefined,
    toStatus: input?.toStatus ?? undefined,
    since: input?.since ?? undefined,
    until: input?.until ?? undefined,
  };
  const ordering = statusEventOrdering(args.orderBy?.field ?? 'AT', (args.orderBy?.direction ?? 'DESC') === 'DESC');
  const spec: CursorSpec = {
    scope: STATUS_EVENT_CURSOR_SCOPE,
    types: STATUS_EVENT_CURSOR_SLOTS,
    keyset: (values, side) => statusEventKeyset(ordering, values[0] as number, side, values[1] as string | undefined),
  };
  return { filter, ordering, window: pageWindow(args, spec) };
}

const cursorOf = (event: StatusEventRow) => encodeStatusEventCursor(event.id, event.atText);

/** Refuses a cursor from before what retention dropped (HISTORY_EXPIRED) rather than page over the gap. */
async function assertCursorsKept(context: GraphQLContext, args: StatusEventListArgs): Promise<void> {
  if (args.after != null) await assertCursorKept(context, decodeStatusEventCursor(args.after, 'after'), 'after');
  if (args.before != null) await assertCursorKept(context, decodeStatusEventCursor(args.before, 'before'), 'before');
}

builder.queryField('statusEvents', (t) =>
  t.field({
    type: StatusEventConnection,
    description: 'The history of box and device statuses, newest first unless ordered otherwise.',
    args: statusEventListArgs,
    resolve: async (_root, args, context) => {
      const { filter, ordering, window } = statusEventList(args);
      await assertCursorsKept(context, args);
      const rows = await statusEventsPage(context.pool, filter, ordering, window);
      return connectionFromRows(rows, window, cursorOf, () => countRows(context, countStatusEventsQuery(filter)));
    },
  }),
);

function historyField(parent: 'box' | 'device', description: string) {
  return {
    type: StatusEventConnection,
    description,
    args: statusEventListArgs,
    byPath: true as const,
    load: async (parentIds: number[], context: GraphQLContext, args: StatusEventListArgs) => {
      const { filter, ordering, window } = statusEventList(args);
      await assertCursorsKept(context, args);
      const rows = await statusEventsPagePerParent(context.pool, parent, parentIds, filter, ordering, window);
      const byParent = groupBy(rows, (event) => (parent === 'box' ? event.boxId : event.deviceId));
      const counts = batchLoader(context, `${parent}.statusEvents.totalCount:${JSON.stringify(filter)}`, (ids) =>
        countStatusEventsPerParent(context.pool, parent, ids, filter),
      0);
      return parentIds.map((id) => connectionFromRows(byParent.get(id) ?? [], window, cursorOf, () => counts.load(id)));
    },
  };
}

builder.objectField(BoxRef, 'statusEvents', (t) =>
  t.loadable({
    ...historyField('box', "The box's history: its own events and its devices'."),
    resolve: (box) => box.id,
  }),
);

builder.objectField(DeviceRef, 'statusEvents', (t) =>
  t.loadable({
    ...historyField('device', "The device's history."),
    resolve: (device) => device.id,
  }),
);
