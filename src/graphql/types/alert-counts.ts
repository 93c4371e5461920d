import { alertCounts, type AlertCounts as AlertCountsShape } from '../../models/alerts';
import { builder } from '../builder';
import { AlertSeverity } from './alert-rule';
import { FleetSummary } from './fleet-summary';

const AlertSeverityCounts = builder.objectRef<AlertCountsShape['bySeverity'][number]>('AlertSeverityCounts').implement({
  description: 'Open alerts of one severity.',
  fields: (t) => ({
    severity: t.expose('severity', { type: AlertSeverity }),
    firing: t.exposeInt('firing'),
    acknowledged: t.exposeInt('acknowledged'),
  }),
});

const AlertCounts = builder.objectRef<AlertCountsShape>('AlertCounts').implement({
  description: 'Open alerts (of rules not deleted), overall and by severity (every severity listed, zeros included).',
  fields: (t) => ({
    open: t.exposeInt('open', { description: 'firing + acknowledged.' }),
    firing: t.exposeInt('firing'),
    acknowledged: t.exposeInt('acknowledged'),
    bySeverity: t.field({ type: [AlertSeverityCounts], resolve: (counts) => counts.bySeverity }),
  }),
});

builder.objectField(FleetSummary, 'alerts', (t) =>
  t.field({
    type: AlertCounts,
    description: 'Open alerts by state and severity; 5,000 or more are counted at most about once a second.',
    resolve: (_summary, _args, context) =>
      context.counts.get('fleetSummary.alerts', () => alertCounts(context.pool), (counts) => counts.open, {
        snapshot: context.snapshot,
        lagging: () => (context.countsLag = true),
      }),
  }),
);
