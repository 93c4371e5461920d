import { deviceCountsPerBox, fleetCounts, type BoxCounts, type DeviceCounts as DeviceCountsShape, type DeviceStatusCounts, type FleetCounts } from '../../models/fleet-summary';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { BoxConnection, BoxRef, boxListArgs, ReportFormat, resolveBoxes } from './box';
import { DeviceType } from './device';

const statusFields = (t: PothosSchemaTypes.ObjectFieldBuilder<PothosSchemaTypes.ExtendDefaultTypes<import('../builder').SchemaTypes>, DeviceStatusCounts>) => ({
  total: t.exposeInt('total', { description: 'Devices in their box’s current list (online + offline + unknown).' }),
  online: t.exposeInt('online'),
  offline: t.exposeInt('offline'),
  unknown: t.exposeInt('unknown'),
  removed: t.exposeInt('removed', { description: 'Devices gone from their box’s list; not in the other counts.' }),
});

const DeviceTypeCounts = builder.objectRef<DeviceStatusCounts & { type: DeviceCountsShape['byType'][number]['type'] }>('DeviceTypeCounts').implement({
  description: 'Devices of one type by status.',
  fields: (t) => ({ type: t.expose('type', { type: DeviceType }), ...statusFields(t) }),
});

export const DeviceCounts = builder.objectRef<DeviceCountsShape>('DeviceCounts').implement({
  description: 'Devices by status, overall and for each type (every type listed, zeros included).',
  fields: (t) => ({ ...statusFields(t), byType: t.field({ type: [DeviceTypeCounts], resolve: (counts) => counts.byType }) }),
});

const BoxFormatCounts = builder.objectRef<BoxCounts['byFormat'][number]>('BoxFormatCounts').implement({
  description: 'Boxes sending one report format, by status.',
  fields: (t) => ({
    format: t.expose('format', { type: ReportFormat }),
    total: t.exposeInt('total'),
    online: t.exposeInt('online'),
    offline: t.exposeInt('offline'),
  }),
});

const BoxCountsRef = builder.objectRef<BoxCounts>('BoxCounts').implement({
  description: 'Boxes by status, overall and for each report format.',
  fields: (t) => ({
    total: t.exposeInt('total'),
    online: t.exposeInt('online'),
    offline: t.exposeInt('offline'),
    byFormat: t.field({ type: [BoxFormatCounts], resolve: (counts) => counts.byFormat }),
  }),
});

export const FleetSummary = builder.objectRef<FleetCounts>('FleetSummary').implement({
  description:
    'Counts over the whole fleet (removed boxes left out). For a large fleet they are kept about a second: see `countedAt`.',
  fields: (t) => ({
    boxes: t.field({ type: BoxCountsRef, resolve: (summary) => summary.boxes }),
    devices: t.field({ type: DeviceCounts, resolve: (summary) => summary.devices }),
    countedAt: t.expose('countedAt', { type: 'DateTime', description: 'When these counts were read from the database.' }),
    perBox: t.field({
      type: BoxConnection,
      description: 'The same counts for each box (`Box.deviceCounts`), a page of boxes at a time; like `boxes`.',
      args: boxListArgs,
      resolve: (_summary, args, context) => resolveBoxes(args, context),
    }),
  }),
});

/** The fleet's counts; a fleet of 5,000 devices or more is counted at most about once a second. */
function summarize(context: GraphQLContext): Promise<FleetCounts> {
  return context.counts.get(
    'fleetSummary',
    () => fleetCounts(context.pool),
    (counts) => counts.devices.total + counts.devices.removed,
    { snapshot: context.snapshot, lagging: () => (context.countsLag = true) },
  );
}

builder.queryField('fleetSummary', (t) =>
  t.field({
    type: FleetSummary,
    description: 'Boxes and devices by status and by type, overall; `perBox` breaks them down by box.',
    resolve: (_root, _args, context) => summarize(context),
  }),
);

builder.objectField(BoxRef, 'deviceCounts', (t) =>
  t.loadable({
    type: DeviceCounts,
    description: 'Its devices by status and by type; the counts of all boxes in a response are read in one statement.',
    load: async (boxIds: number[], context: GraphQLContext) => {
      const counts = await deviceCountsPerBox(context.pool, boxIds);
      return boxIds.map((id) => counts.get(id)!);
    },
    resolve: (box) => box.id,
  }),
);
