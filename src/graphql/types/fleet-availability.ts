import { measuredRange, NOTHING_OBSERVED, type MeasuredRange } from '../../models/availability';
import {
  countDevicesWithTimeOfflineQuery,
  devicesByTimeOffline,
  fleetAvailabilityBuckets,
  offlineRankAfter,
  type FleetBucket,
  type OfflineRank,
} from '../../models/fleet-availability';
import { builder } from '../builder';
import { encodeCursor } from '../cursors';
import { BUCKET_SECONDS, HistoryBucket, operationNow, parseHistoryRange, type HistoryBucketValue } from '../history-range';
import {
  DeviceAvailability,
  fraction,
  deviceAvailabilityOver,
  measuredRangeOf,
  RANGE_DESCRIPTION,
  rangeArgs,
  type MeasuredAvailability,
} from './availability';
import { DeviceRef } from './device';
import { batchLoader, connectionFromRows, countRows, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, pageWindow } from './pagination';

// The fleet over a range: device-time online per hour or day, and the devices offline longest.

type Fields<T> = PothosSchemaTypes.ObjectFieldBuilder<PothosSchemaTypes.ExtendDefaultTypes<import('../builder').SchemaTypes>, T>;

function deviceTimeFields<T extends Omit<FleetBucket, 'start' | 'end'>>(t: Fields<T>) {
  return {
    observedSeconds: t.float({
      description: 'Device-seconds of listed devices (online, offline or unknown): each device counts for the time it was listed.',
      resolve: (b) => b.observedSeconds,
    }),
    onlineSeconds: t.float({ description: 'Device-seconds online.', resolve: (b) => b.onlineSeconds }),
    offlineSeconds: t.float({ description: 'Device-seconds offline.', resolve: (b) => b.offlineSeconds }),
    unknownSeconds: t.float({ description: 'Device-seconds in a status outside online/offline.', resolve: (b) => b.unknownSeconds }),
    availability: t.float({
      nullable: true,
      description: 'Device-time online / device-time observed, from 0 to 1; null when no device was observed.',
      resolve: (b) => fraction(b.onlineSeconds, b.observedSeconds),
    }),
  };
}

const FleetAvailabilityBucket = builder.objectRef<FleetBucket>('FleetAvailabilityBucket').implement({
  description: 'Device-time of the fleet in one UTC hour or day, clipped to the range asked for.',
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime', description: 'Inclusive: the bucket’s start, or `since` for the first.' }),
    end: t.expose('end', { type: 'DateTime', description: 'Exclusive: the bucket’s end, or the range’s `until` for the last.' }),
    ...deviceTimeFields(t),
  }),
});

type FleetAvailabilityShape = MeasuredRange & Omit<FleetBucket, 'start' | 'end'> & { bucket: HistoryBucketValue; buckets: FleetBucket[] };

const FleetAvailability = builder.objectRef<FleetAvailabilityShape>('FleetAvailability').implement({
  description:
    'Device-time of the whole fleet over a range (devices of removed boxes left out), overall and per bucket. Computed without ' +
    'following any device’s history: the count of devices online at `since` is the count now less the net changes of the events ' +
    'since, and each bucket’s device-time is the integral of those counts. So its cost grows with the time from `since` to now ' +
    `(the events since then), never with the history before it. ${RANGE_DESCRIPTION}`,
  fields: (t) => ({
    since: t.expose('since', { type: 'DateTime', description: 'Start of the range measured.' }),
    until: t.expose('until', { type: 'DateTime', description: 'End measured: the `until` asked for, or now when it was omitted or is later.' }),
    bucket: t.expose('bucket', { type: HistoryBucket }),
    ...deviceTimeFields(t),
    buckets: t.field({ type: [FleetAvailabilityBucket], description: 'One per UTC hour or day overlapping the range, oldest first.', resolve: (f) => f.buckets }),
  }),
});

builder.queryField('fleetAvailability', (t) =>
  t.field({
    type: FleetAvailability,
    description:
      'The fleet’s device-time online per UTC hour or day over a range, in one statement. Errors as for every history range, and ' +
      'TOO_MANY_BUCKETS (argument `bucket`) for a range of more than 1,000 buckets. An unknown bucket is refused by validation.',
    args: { ...rangeArgs, bucket: t.arg({ type: HistoryBucket, required: true }) },
    resolve: async (_root, args, context) => {
      const range = measuredRange(parseHistoryRange(args, context, { bucket: args.bucket }), operationNow(context));
      const buckets = await fleetAvailabilityBuckets(context.pool, range, BUCKET_SECONDS[args.bucket]);
      const total = (key: 'observedSeconds' | 'onlineSeconds' | 'offlineSeconds' | 'unknownSeconds') => buckets.reduce((sum, b) => sum + b[key], 0);
      return {
        ...range,
        bucket: args.bucket,
        buckets,
        observedSeconds: total('observedSeconds'),
        onlineSeconds: total('onlineSeconds'),
        offlineSeconds: total('offlineSeconds'),
        unknownSeconds: total('unknownSeconds'),
      };
    },
  }),
);

// ---------------------------------------------------------------------------------------------
// devicesByTimeOffline

const OFFLINE_RANK_SCOPE = 'DeviceByTimeOffline';

interface OfflineEdgeShape {
  cursor: string;
  rank: OfflineRank;
  /** The range the list was ranked over: each edge's availability is measured over exactly it. */
  range: MeasuredRange;
}

const DeviceOfflineEdge = builder.objectRef<OfflineEdgeShape>('DeviceOfflineEdge').implement({
  description: 'A device and how it spent the range.',
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: DeviceRef, resolve: (edge) => edge.rank.deviceId }),
    offlineSeconds: t.float({
      description: 'Its time offline in the range: what the list is ordered by.',
      resolve: (edge) => edge.rank.offlineMicroseconds / 1e6,
    }),
    availability: t.field({
      type: DeviceAvailability,
      description: 'All its numbers over the same range, read for the whole page in one statement.',
      resolve: (edge, _args, context) => {
        const key = `devicesByTimeOffline.availability:${edge.range.since.toISOString()}/${edge.range.until.toISOString()}`;
        const loader = batchLoader<MeasuredAvailability>(
          context,
          key,
          async (ids) => {
            const rows = await deviceAvailabilityOver(ids, context, edge.range);
            return new Map(ids.map((id, i) => [id, rows[i]!]));
          },
          { ...NOTHING_OBSERVED, ...edge.range },
        );
        return loader.load(edge.rank.deviceId);
      },
    }),
  }),
});

interface OfflineConnectionShape {
  edges: OfflineEdgeShape[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: () => Promise<number> | number;
}

const DeviceOfflineConnection = builder.objectRef<OfflineConnectionShape>('DeviceOfflineConnection').implement({
  description: 'Devices with any time offline in a range, most first (ties by device id).',
  fields: (t) => ({
    edges: t.field({ type: [DeviceOfflineEdge], resolve: (c) => c.edges }),
    nodes: t.field({
      type: [DeviceRef],
      description: 'The nodes of `edges`, for clients that need no cursors.',
      resolve: (c) => c.edges.map((e) => e.rank.deviceId),
    }),
    pageInfo: t.field({ type: builder.pageInfoRef(), resolve: (c) => c.pageInfo }),
    totalCount: t.int({ description: 'Devices with any time offline in the range, all pages together.', resolve: (c) => c.totalCount() }),
  }),
});

builder.queryField('devicesByTimeOffline', (t) =>
  t.field({
    type: DeviceOfflineConnection,
    description:
      'The devices with the most time offline in a range, a page at a time (devices of removed boxes left out; devices never offline ' +
      'in it are not listed). Pages are stable when `until` is given; with `until` omitted, the time of devices still offline grows ' +
      `between pages. The ranking is one aggregate over the events since \`since\`, like fleetAvailability. ${RANGE_DESCRIPTION}`,
    args: {
      ...rangeArgs,
      first: t.arg.int({ description: `Devices from the top (0 to ${MAX_PAGE_SIZE}). Default ${DEFAULT_PAGE_SIZE}.` }),
      after: t.arg.string({ description: 'Start after this cursor (an edge cursor or pageInfo.endCursor of this list).' }),
    },
    resolve: async (_root, args, context): Promise<OfflineConnectionShape> => {
      const range = measuredRangeOf(args, context);
      const window = pageWindow(
        { first: args.first, after: args.after },
        {
          scope: OFFLINE_RANK_SCOPE,
          types: ['int', 'int'],
          keyset: ([microseconds, deviceId]) => offlineRankAfter(microseconds as number, deviceId as number),
        },
      );
      const rows = await devicesByTimeOffline(context.pool, range, window);
      const cursorOf = (rank: OfflineRank) => encodeCursor(OFFLINE_RANK_SCOPE, [rank.offlineMicroseconds, rank.deviceId]);
      const connection = connectionFromRows(rows, window, cursorOf, () => countRows(context, countDevicesWithTimeOfflineQuery(range)));
      return { ...connection, edges: connection.edges.map((edge) => ({ cursor: edge.cursor, rank: edge.node, range })) };
    },
  }),
);
