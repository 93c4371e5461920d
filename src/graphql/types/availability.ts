import {
  boxAvailability,
  deviceAvailability,
  measuredRange,
  NOTHING_OBSERVED,
  type Availability,
  type MeasuredRange,
} from '../../models/availability';
import { builder } from '../builder';
import type { GraphQLContext } from '../context';
import { operationNow, parseHistoryRange } from '../history-range';
import { BoxRef } from './box';
import { DeviceRef } from './device';

// Device.availability and Box.availability: how a device or box spent a time range, from its status
// history. Added from this file so box.ts and device.ts need not know about history reads.

/** An availability as the API shows it: the numbers and the range they were measured over. */
export type MeasuredAvailability = Availability & MeasuredRange;

export const RANGE_DESCRIPTION =
  'Measured over [since, until): `until` omitted means now, and a later `until` is cut at now (time to come is not observed). ' +
  '`since` may go back as far as the history kept (HISTORY_RETENTION_DAYS). Errors: `until` not after `since` is INVALID_RANGE ' +
  '(argument `until`); `since` older than the history kept is BEYOND_RETENTION (argument `since`).';

/** The `since`/`until` arguments of every availability field. */
export const rangeArgs = builder.args((t) => ({
  since: t.field({ type: 'DateTime', required: true, description: 'Start of the range (inclusive).' }),
  until: t.field({ type: 'DateTime', description: 'End of the range (exclusive). Default: now.' }),
}));

export interface RangeArgs {
  since: Date;
  until?: Date | null;
}

/** The range `args` ask for, checked, as the models measure it (cut at this operation's now). */
export function measuredRangeOf(args: RangeArgs, context: GraphQLContext): MeasuredRange {
  return measuredRange(parseHistoryRange(args, context), operationNow(context));
}

/** Online time over observed time; null when nothing was observed. */
export function fraction(online: number, observed: number): number | null {
  return observed > 0 ? online / observed : null;
}

type Fields<T> = PothosSchemaTypes.ObjectFieldBuilder<PothosSchemaTypes.ExtendDefaultTypes<import('../builder').SchemaTypes>, T>;

function availabilityFields(t: Fields<MeasuredAvailability>, subject: 'device' | 'box') {
  const states = subject === 'device' ? 'online, offline or unknown' : 'online or offline';
  return {
    since: t.expose('since', { type: 'DateTime', description: 'Start of the range measured.' }),
    until: t.expose('until', {
      type: 'DateTime',
      description: 'End of the range measured: the `until` asked for, or now when it was omitted or is later.',
    }),
    observedSeconds: t.exposeFloat('observedSeconds', {
      description: `Time in the range the ${subject} existed and was listed (${states}): not before it was first seen, not while removed.`,
    }),
    onlineSeconds: t.exposeFloat('onlineSeconds'),
    offlineSeconds: t.exposeFloat('offlineSeconds'),
    availability: t.float({
      nullable: true,
      description: 'onlineSeconds / observedSeconds, from 0 to 1; null when nothing was observed.',
      resolve: (a) => fraction(a.onlineSeconds, a.observedSeconds),
    }),
    outages: t.exposeInt('outages', {
      description: 'Offline periods overlapping the range, one already under way at `since` and one still going at `until` included.',
    }),
    longestOutageSeconds: t.exposeFloat('longestOutageSeconds', {
      description: 'The longest outage, counted within the range only; 0 when there was none.',
    }),
  };
}

export const DeviceAvailability = builder.objectRef<MeasuredAvailability>('DeviceAvailability').implement({
  description:
    'How a device spent a time range, from its status history: its status is the one its box last reported, kept while the box is ' +
    `silent (see Box.availability for the box's own). ${RANGE_DESCRIPTION}`,
  fields: (t) => ({
    ...availabilityFields(t, 'device'),
    unknownSeconds: t.exposeFloat('unknownSeconds', { description: 'Time its box reported a status outside online/offline.' }),
  }),
});

export const BoxAvailability = builder.objectRef<MeasuredAvailability>('BoxAvailability').implement({
  description: `How a box spent a time range by its own status (reporting or silent; not its devices'), from its history. ${RANGE_DESCRIPTION}`,
  fields: (t) => availabilityFields(t, 'box'),
});

/** The availability of each id over `range`, in one statement, in the order of `ids`. */
async function availabilityOver(read: typeof deviceAvailability, ids: readonly number[], context: GraphQLContext, range: MeasuredRange): Promise<MeasuredAvailability[]> {
  const found = await read(context.pool, ids, range);
  return ids.map((id) => ({ ...(found.get(id) ?? NOTHING_OBSERVED), ...range }));
}

/** Devices' availability over a range already measured: an edge of devicesByTimeOffline uses it too. */
export function deviceAvailabilityOver(ids: readonly number[], context: GraphQLContext, range: MeasuredRange): Promise<MeasuredAvailability[]> {
  return availabilityOver(deviceAvailability, ids, context, range);
}

const stateAtSince = (subjects: string) =>
  'The state at `since` is taken from the first event at or after it (its `fromStatus`), or the current status when there is none, ' +
  `so the answer is right however much older history retention has dropped. The ${subjects} of a response are read in one statement.`;

builder.objectField(DeviceRef, 'availability', (t) =>
  t.loadable({
    type: DeviceAvailability,
    description: `Time online, offline and unknown in a range, outages and the longest one. ${stateAtSince('devices')}`,
    args: rangeArgs,
    byPath: true,
    load: async (ids: number[], context: GraphQLContext, args: RangeArgs) => deviceAvailabilityOver(ids, context, measuredRangeOf(args, context)),
    resolve: (device) => device.id,
  }),
);

builder.objectField(BoxRef, 'availability', (t) =>
  t.loadable({
    type: BoxAvailability,
    description: `Time the box was online (reporting) and offline (silent) in a range, outages and the longest one. ${stateAtSince('boxes')}`,
    args: rangeArgs,
    byPath: true,
    load: async (ids: number[], context: GraphQLContext, args: RangeArgs) => availabilityOver(boxAvailability, ids, context, measuredRangeOf(args, context)),
    resolve: (box) => box.id,
  }),
);
