import { healthByBoxIds, type HealthBucket, type HealthFigureSummary } from '../../models/box-health';
import { builder } from '../builder';
import { BUCKET_SECONDS, HistoryBucket, MAX_BUCKETS, parseHistoryRange } from '../history-range';
import { BoxRef } from './box';
import { batchLoader } from './pagination';

// Box.health: an older box's health figures (gateway_ext_data) over time, from its own file as the
// field crosses two domains (boxes, history).

const HealthFigureSummaryRef = builder.objectRef<HealthFigureSummary>('HealthFigureSummary').implement({
  description: 'One health figure over a bucket, from the reports that carried it.',
  fields: (t) => ({
    min: t.exposeFloat('min', { description: 'Lowest value reported.' }),
    avg: t.exposeFloat('avg', { description: 'Mean of the values reported (each report counts once).' }),
    max: t.exposeFloat('max', { description: 'Highest value reported.' }),
    samples: t.exposeInt('samples', { description: 'Reports of the bucket that carried this figure.' }),
  }),
});

const BoxHealthBucketRef = builder.objectRef<HealthBucket>('BoxHealthBucket').implement({
  description:
    'A box’s health over one UTC hour or day. A figure is null when no report of the bucket carried a readable value of it: a gap, never a zero.',
  fields: (t) => {
    const figure = (name: keyof HealthBucket['figures'], description: string) =>
      t.field({ type: HealthFigureSummaryRef, nullable: true, description, resolve: (bucket) => bucket.figures[name] });
    return {
      start: t.expose('start', { type: 'DateTime', description: 'First instant of the bucket (UTC hour or day).' }),
      end: t.expose('end', { type: 'DateTime', description: 'First instant after the bucket.' }),
      reports: t.exposeInt('reports', { description: 'Reports with `gateway_ext_data` in the bucket; 0 when the box sent none.' }),
      cpu: figure('cpu', '`gateway_ext_data.cpu_usage`, percent (0 to 100).'),
      memory: figure('memory', '`gateway_ext_data.memory_usage`, percent (0 to 100).'),
      disk: figure('disk', '`gateway_ext_data.disk_usage`, percent (0 to 100).'),
      temperature: figure('temperature', '`gateway_ext_data.temperature`, °C (-50 to 150).'),
    };
  },
});

builder.objectField(BoxRef, 'health', (t) =>
  t.field({
    type: [BoxHealthBucketRef],
    description:
      `The health figures an older box sends (\`gateway_ext_data\`) over a range, in every UTC hour or day that overlaps it, gaps included, oldest first (at most ${MAX_BUCKETS}). ` +
      'Kept per box per hour, as long as the status history; values out of range or unreadable are left out. Empty buckets for a box that sends no health.',
    args: {
      since: t.arg({ type: 'DateTime', required: true, description: 'Start of the range.' }),
      until: t.arg({ type: 'DateTime', description: 'End of the range (exclusive). Default: now.' }),
      bucket: t.arg({ type: HistoryBucket, required: true, description: 'HOUR or DAY. An hour is the finest health is kept at.' }),
    },
    resolve: (box, args, context) => {
      const range = parseHistoryRange(args, context, { bucket: args.bucket });
      // One loader per range and bucket: every box of the operation asking the same is read in one statement.
      const key = `Box.health:${range.since.toISOString()}:${range.until.toISOString()}:${args.bucket}`;
      return batchLoader(context, key, (ids) => healthByBoxIds(context.pool, ids, range, BUCKET_SECONDS[args.bucket]), []).load(box.id);
    },
  }),
);
