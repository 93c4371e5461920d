import type { GraphQLResolveInfo } from 'graphql';
import { readsCredentials } from '../../auth/roles';
import { redactUrlCredentials } from '../../redaction/url-credentials';
import type { DeviceStatus as DeviceStatusValue, DeviceType as DeviceTypeValue } from '../../db/schema';
import type { BoxRow } from '../../models/boxes';
import {
  countDevicesPerBox,
  countDevicesQuery,
  deviceOrdering,
  devicesByIds,
  devicesPage,
  devicesPagePerBox,
  type DeviceColumn,
  type DeviceFilter as DeviceFilterShape,
  type DeviceOrderField,
  type DeviceRow,
  type DeviceSelection,
} from '../../models/devices';
import { keysetCondition } from '../../models/query-parts';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { encodeCursor } from '../cursors';
import { parseDatabaseId } from '../global-id';
import { columnsFor, connectionNodeFields, fieldNames, fieldNodesAt } from '../lookahead';
import { BOX_FIELD_COLUMNS, BoxRef } from './box';
import {
  batchLoader,
  connectionArgs,
  connectionFromRows,
  countRows,
  groupBy,
  OrderDirection,
  pageWindow,
  searchText,
  type CursorSpec,
  type PageArgs,
} from './pagination';

/** A device row; `box` is set when the page query read its box in the same statement. */
export type DeviceNode = DeviceRow & { box?: BoxRow };

export const DeviceStatus = builder.enumType('DeviceStatus', {
  values: {
    ONLINE: { value: 'online' },
    OFFLINE: { value: 'offline' },
    UNKNOWN: { value: 'unknown', description: 'The box reported a value outside online/offline; see `reportedStatus`.' },
  } as const,
});

export const DeviceType = builder.enumType('DeviceType', {
  values: {
    PHOTO: { value: 'photo', description: 'Snapshot camera.' },
    RTSP: { value: 'rtsp', description: 'RTSP video stream.' },
    FILE: { value: 'file', description: 'Video file.' },
    GB28181: { value: 'gb28181', description: 'GB/T 28181 (national standard) camera.' },
    UNKNOWN: { value: 'unknown', description: 'The box reported another type; see `reportedType`.' },
  } as const,
});

/**
 * A text the box reported, as the reader may see it: a role that may not read URLs gets any URL in it
 * with its credentials masked (a device reported without an id has its URL as `externalId`).
 */
function shown(context: GraphQLContext, text: string | null): string | null {
  return readsCredentials(context.principal) ? text : redactUrlCredentials(text);
}

export const DeviceRef = builder.loadableNode('Device', {
  description: 'A capture device as its box reports it. Devices gone from their box’s list stay, with `removed` true.',
  id: { resolve: (device: DeviceNode) => device.id, parse: (id) => parseDatabaseId(id, 'Device') },
  load: (ids: number[], context: GraphQLContext): Promise<DeviceNode[]> => devicesByIds(context.pool, ids),
  toKey: (device) => device.id,
  sort: true,
  fields: (t) => ({
    box: t.field({ type: BoxRef, resolve: (device) => device.box ?? device.boxId }),
    externalId: t.string({
      description:
        "The box's id for it: `media_device_id` (or its URL when omitted), or `ep_id` for older boxes. Credentials in a URL here are masked (`***`) for roles that may not read `url`.",
      resolve: (device, _args, context) => shown(context, device.externalId)!,
    }),
    name: t.string({ nullable: true, resolve: (device, _args, context) => shown(context, device.name) }),
    ip: t.string({ nullable: true, resolve: (device, _args, context) => shown(context, device.ip) }),
    type: t.expose('type', { type: DeviceType }),
    reportedType: t.string({
      nullable: true,
      description: 'The raw type when `type` is UNKNOWN.',
      resolve: (device, _args, context) => shown(context, device.reportedType),
    }),
    url: t.exposeString('url', {
      nullable: true,
      // Camera URLs often carry credentials (rtsp://user:password@...): not for dashboards' viewer tokens.
      authScopes: { operator: true },
      description: 'The stream or file URL as the box reports it. Needs the operator role: camera URLs often hold credentials.',
    }),
    permissionId: t.string({
      nullable: true,
      description: '`permission_id` (newer boxes) or `ep_location` (older ones): the group the device is bound to.',
      resolve: (device, _args, context) => shown(context, device.permissionId),
    }),
    status: t.expose('status', { type: DeviceStatus, description: 'Its last reported status (kept when it was removed).' }),
    reportedStatus: t.string({
      nullable: true,
      description: 'The raw status when `status` is UNKNOWN.',
      resolve: (device, _args, context) => shown(context, device.reportedStatus),
    }),
    statusSince: t.expose('statusSince', {
      type: 'DateTime',
      description: 'When `status` took its value (or the device was removed or came back).',
    }),
    lastSeenAt: t.expose('lastSeenAt', {
      type: 'DateTime',
      nullable: true,
      description: "Its box's last report while listed; when it was removed otherwise.",
    }),
    firstSeenAt: t.expose('firstSeenAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When any of its fields last changed.' }),
    stale: t.exposeBoolean('stale', {
      description: 'Its box is offline (no report for several periods): `status` is the last one it reported, which may no longer hold.',
    }),
    removed: t.boolean({ description: "Gone from its box's list.", resolve: (device) => device.removedAt !== null }),
    removedAt: t.expose('removedAt', { type: 'DateTime', nullable: true }),
  }),
});

/** The columns each Device field reads (see columnsFor); keep in step with the fields above. */
const DEVICE_FIELD_COLUMNS: Record<string, readonly DeviceColumn[]> = {
  __typename: [],
  id: [],
  box: [],
  statusEvents: [],
  availability: [],
  externalId: ['externalId'],
  name: ['name'],
  ip: ['ip'],
  type: ['type'],
  reportedType: ['reportedType'],
  url: ['url'],
  permissionId: ['permissionId'],
  status: ['status'],
  reportedStatus: ['reportedStatus'],
  statusSince: ['statusSince'],
  lastSeenAt: ['lastSeenAt'],
  stale: ['stale'],
  firstSeenAt: ['firstSeenAt'],
  updatedAt: ['updatedAt'],
  removed: ['removedAt'],
  removedAt: ['removedAt'],
  // Added by media-device.ts.
  pendingDeletion: [],
};

/**
 * What a device list must read for this operation: the columns of the fields asked for under
 * `edges.node`/`nodes`, and of `box` (false when no box field is asked for). Rows read this way lack
 * other columns, so they are never put in the Device loader's cache.
 */
function deviceSelection(info: GraphQLResolveInfo): DeviceSelection {
  const nodes = connectionNodeFields(info);
  const boxNodes = fieldNodesAt(info, nodes, ['box']);
  return {
    device: columnsFor(fieldNames(info, nodes), DEVICE_FIELD_COLUMNS),
    box: boxNodes.length === 0 ? false : columnsFor(fieldNames(info, boxNodes), BOX_FIELD_COLUMNS),
  };
}

// ---------------------------------------------------------------------------------------------
// Lists

const DeviceOrderFieldEnum = builder.enumType('DeviceOrderField', {
  description: 'Orderings of devices. Ties are broken by id, in the same direction.',
  values: {
    ID: { value: 'ID', description: 'Order of first sight.' },
    NAME: { value: 'NAME', description: 'Devices without a name sort as the empty string.' },
    STATUS_SINCE: { value: 'STATUS_SINCE', description: 'ASC with a status filter: longest in that status first.' },
    FIRST_SEEN_AT: { value: 'FIRST_SEEN_AT' },
  } satisfies Record<DeviceOrderField, { value: DeviceOrderField; description?: string }>,
});

const DeviceOrder = builder.inputType('DeviceOrder', {
  fields: (t) => ({
    field: t.field({ type: DeviceOrderFieldEnum, required: true }),
    direction: t.field({ type: OrderDirection, defaultValue: 'ASC', description: 'Default ASC (also when null).' }),
  }),
});

const DeviceFilter = builder.inputType('DeviceFilter', {
  description: 'Conditions a device must all meet. A list matches any of its values.',
  fields: (t) => ({
    box: t.globalIDList({ for: BoxRef, description: 'Devices of these boxes.' }),
    licenseKey: t.stringList({ description: 'Devices of the boxes with these licence keys.' }),
    status: t.field({ type: [DeviceStatus] }),
    type: t.field({ type: [DeviceType] }),
    permissionId: t.string({ description: 'Devices bound to this permission group (`ep_location` for older boxes).' }),
    search: t.string({
      description:
        'Substring of the name, ip or url, any letter case. For roles that may not read `url`: of the name or ip as they are shown (credentials masked), never of the url.',
    }),
    removed: t.boolean({
      defaultValue: false,
      description: "false (default): devices in their box's current list; true: removed ones only; null: both.",
    }),
  }),
});

export const DeviceConnection = builder.connectionObject({ type: DeviceRef, name: 'DeviceConnection' }, { name: 'DeviceEdge' });

const deviceListArgs = builder.args((t) => ({
  ...connectionArgs,
  filter: t.field({ type: DeviceFilter }),
  orderBy: t.field({ type: DeviceOrder, defaultValue: { field: 'ID', direction: 'ASC' }, description: 'Default: by id, ascending.' }),
}));

interface DeviceListArgs extends PageArgs {
  filter?: {
    box?: { id: number }[] | null;
    licenseKey?: string[] | null;
    status?: DeviceStatusValue[] | null;
    type?: DeviceTypeValue[] | null;
    permissionId?: string | null;
    search?: string | null;
    removed?: boolean | null;
  } | null;
  orderBy?: { field: DeviceOrderField; direction?: 'ASC' | 'DESC' | null } | null;
}

function deviceFilter(input: DeviceListArgs['filter'], context: GraphQLContext): DeviceFilterShape {
  return {
    masked: !readsCredentials(context.principal),
    boxIds: input?.box?.map((id) => id.id),
    licenseKeys: input?.licenseKey ?? undefined,
    status: input?.status ?? undefined,
    type: input?.type ?? undefined,
    permissionId: input?.permissionId ?? undefined,
    search: searchText(input?.search),
    // An absent filter means listed devices, as the field's default does; an explicit null means both.
    removed: input == null || input.removed === undefined ? false : (input.removed ?? undefined),
  };
}

function deviceList(args: DeviceListArgs, context: GraphQLContext) {
  const field = args.orderBy?.field ?? 'ID';
  const filter = deviceFilter(args.filter, context);
  const ordering = deviceOrdering(field, args.orderBy?.direction === 'DESC', filter.masked);
  const scope = `Device:${field}`;
  const spec: CursorSpec = {
    scope,
    types: ordering.key ? [ordering.key.type, 'int'] : ['int'],
    keyset: (values, side) => keysetCondition(ordering, values, side),
  };
  const cursorOf = (device: DeviceRow) => encodeCursor(scope, ordering.key ? [device.sortValue ?? '', device.id] : [device.id]);
  return { filter, ordering, window: pageWindow(args, spec), cursorOf };
}

builder.queryFields((t) => ({
  devices: t.field({
    type: DeviceConnection,
    description: 'Devices of the fleet, a page at a time; each page reads its devices and their boxes in one statement.',
    args: deviceListArgs,
    resolve: async (_root, args, context, info) => {
      const { filter, ordering, window, cursorOf } = deviceList(args, context);
      const rows = await devicesPage(context.pool, filter, ordering, window, deviceSelection(info));
      const devices: DeviceNode[] = rows.map(({ device, box }) => (box ? Object.assign(device, { box }) : device));
      return connectionFromRows(devices, window, cursorOf, () => countRows(context, countDevicesQuery(filter)));
    },
  }),
  device: t.field({
    type: DeviceRef,
    nullable: true,
    description: 'One device, removed or not. Null when there is no such device (or its box was removed).',
    args: { id: t.arg.globalID({ for: DeviceRef, required: true }) },
    resolve: (_root, args) => args.id.id,
  }),
}));

builder.objectField(BoxRef, 'devices', (t) =>
  t.loadable({
    type: DeviceConnection,
    description: "The box's devices, a page per box; the pages of all boxes in a response are read in one statement.",
    args: deviceListArgs,
    byPath: true,
    load: async (boxIds: number[], context, args, info) => {
      const { filter, ordering, window, cursorOf } = deviceList(args, context);
      const rows = await devicesPagePerBox(context.pool, boxIds, filter, ordering, window, deviceSelection(info).device);
      const byBox = groupBy(rows, (device) => device.boxId);
      const counts = batchLoader(context, `Box.devices.totalCount:${JSON.stringify(filter)}`, (ids) => countDevicesPerBox(context.pool, ids, filter), 0);
      return boxIds.map((boxId) => connectionFromRows(byBox.get(boxId) ?? [], window, cursorOf, () => counts.load(boxId)));
    },
    resolve: (box) => box.id,
  }),
);
