// What the alerts benchmark prints: conditions, then delays, losses, duplicates, CPU and ingest, with the targets.
import os from 'node:os';
import type { AlertBenchOptions } from '../alerts';
import type { ExpectedAlert, Matched } from './alert-expectations';
import type { RuleSpec } from './alert-rules';
import type { WebhookReceiver } from './webhook-receivers';

export interface StormFigures {
  startedAt: Date;
  endedAt: Date;
  seconds: number;
  /** Devices that flapped (some picked may sit on boxes silenced meanwhile: those are skipped). */
  flapping: number;
  reportsPerSecond: number;
  gatewayCores: number | undefined;
  postgresCores: number | undefined;
  loadAverage: number;
}

export interface AlertResults {
  options: AlertBenchOptions;
  rules: Array<RuleSpec & { id: number }>;
  baseline: StormFigures;
  withRules: StormFigures;
  /** Reports/s with the rules in place, before the second storm. */
  quietRate: number;
  expected: ExpectedAlert[];
  matched: Matched;
  receivers: WebhookReceiver[];
  /** alert_notifications by status at the end. */
  outbox: Record<string, number>;
  queuedKeys: string[];
  evaluationIntervalMs: number | undefined;
  /** Device status changes the gateway stored from the start of the second storm. */
  deviceChanges: number;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const seconds = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);
const cores = (n: number | undefined) => (n === undefined ? 'n/a' : `${n.toFixed(2)} cores`);

function percentile(values: number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

function countBy<T>(items: T[], key: (item: T) => string): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} ${fmt(n)}`).join(', ') || 'none';
}

/** Prints everything; 0 when the targets are met, 1 otherwise. */
export function printAlertResults(r: AlertResults): number {
  const { options: o, matched } = r;
  const interval = r.evaluationIntervalMs;
  const cpus = os.cpus();
  const received = r.receivers.reduce((n, x) => n + x.receipts.length, 0);
  const duplicates = r.receivers.reduce((n, x) => n + x.distinct('FIRED').duplicates + x.distinct('RESOLVED').duplicates + x.distinct('REPEAT').duplicates, 0);
  const receivedKeys = new Set(r.receivers.flatMap((x) => x.receipts.map((receipt) => receipt.idempotencyKey)));
  const undelivered = r.queuedKeys.filter((key) => !receivedKeys.has(key)).length;
  const p99 = percentile(matched.delays, 0.99);
  const targetMs = interval === undefined ? undefined : interval + 2_000;
  const ingestShare = r.withRules.reportsPerSecond / r.baseline.reportsPerSecond;
  const lines = [
    'fleetgate alerts benchmark',
    `  fleet        ${fmt(o.boxes)} boxes × ${o.devices} devices (mixed formats), seed ${o.seed}; ${o.concurrency} reports in flight, each box posting again when answered`,
    `  rules        ${r.rules.length}: ${countBy(r.rules, (x) => x.kind)}; routed to 2 webhook receivers (one child process, signatures checked)`,
    `  storm        ${fmt(o.silence)} boxes fall silent at once; ${o.flapAfterSeconds} s later ${fmt(r.withRules.flapping)} devices flap (a change at every report) for ${o.flapSeconds} s, then stay as they are; ${fmt(r.deviceChanges)} device changes stored`,
    `  gateway      one process, fresh embedded Postgres; ALERT_EVALUATION_INTERVAL_MS ${interval ?? 'default'}, OFFLINE_MIN_SECONDS 10, OFFLINE_PERIODS 3, SWEEP_INTERVAL_MS 500, WEBHOOK_CHANNEL_CONCURRENCY ${o.webhookChannelConcurrency}, WEBHOOK_CONCURRENCY ${o.webhookChannelConcurrency * 2}`,
    `  machine      node ${process.version}, ${cpus.length} CPUs (${cpus[0]?.model.trim() ?? 'unknown'}), load average ${r.baseline.loadAverage.toFixed(1)} / ${r.withRules.loadAverage.toFixed(1)} (storm without / with rules), loopback`,
    '',
    'alerts (fired; "should fire" = condition began + forSeconds, from the stored reports and changes)',
    `  expected     ${fmt(r.expected.length)} alerts (${countBy(r.expected, (x) => x.rule.kind)}), ${fmt(r.expected.reduce((n, x) => n + x.rule.channels.length, 0))} webhooks with their routes`,
    `  delay        p50 ${seconds(percentile(matched.delays, 0.5))}, p99 ${seconds(p99)}, max ${seconds(percentile(matched.delays, 1))} from when each should fire to its webhook's receipt (${fmt(matched.delays.length)} receipts)`,
    `  from firesAt p50 ${seconds(percentile(matched.delaysFromFiresAt, 0.5))}, p99 ${seconds(percentile(matched.delaysFromFiresAt, 0.99))} from the gateway's own firesAt (its view of when the condition began)`,
    `  split        due → fired (evaluator commit) p50 ${seconds(percentile(matched.evaluationLags, 0.5))}, p99 ${seconds(percentile(matched.evaluationLags, 0.99))}; fired → received (deliverer) p50 ${seconds(percentile(matched.deliveryLags, 0.5))}, p99 ${seconds(percentile(matched.deliveryLags, 0.99))}`,
    `  lost         ${fmt(matched.lost.length)} expected webhooks never received${matched.lost.length ? ` (${countBy(matched.lost, (x) => x.rule.kind)})` : ''}`,
    `  unexpected   ${fmt(matched.unexpected.length)} FIRED webhooks for alerts not expected or fired a second time${matched.unexpected.length ? ` (${countBy(matched.unexpected, (x) => x.payload.rule.kind)})` : ''}`,
    '',
    'webhooks',
    `  received     ${fmt(received)} POSTs in all (${countBy(r.receivers.flatMap((x) => x.receipts), (x) => x.payload.event)}); bad signatures ${r.receivers.reduce((n, x) => n + x.badSignatures, 0)}, key header ≠ body ${r.receivers.reduce((n, x) => n + x.badKeys, 0)}`,
    `  duplicates   ${fmt(duplicates)} (same Idempotency-Key received again)`,
    `  outbox       ${Object.entries(r.outbox).map(([status, n]) => `${status} ${fmt(n)}`).join(', ') || 'empty'}; queued but never received: ${fmt(undelivered)}`,
    '',
    'cost (over each storm)',
    `  ingest       ${fmt(r.withRules.reportsPerSecond)} reports/s during the storm with rules, ${fmt(r.baseline.reportsPerSecond)} during the same storm without (${(ingestShare * 100).toFixed(1)}%); ${fmt(r.quietRate)}/s with rules and no storm`,
    `  gateway CPU  ${cores(r.withRules.gatewayCores)} with rules (evaluator, deliverer, ingest), ${cores(r.baseline.gatewayCores)} without; its Postgres ${cores(r.withRules.postgresCores)} / ${cores(r.baseline.postgresCores)}`,
    '',
    'targets',
    `  p99 delay ≤ evaluation interval + 2 s: ${seconds(p99)} vs ${seconds(targetMs)} ${targetMs === undefined || p99 === undefined ? '?' : p99 <= targetMs ? '✓' : '✗'}`,
    `  lost = 0: ${matched.lost.length} ${matched.lost.length === 0 ? '✓' : '✗'}`,
    `  ingest ≥ 90% of its rate without rules: ${(ingestShare * 100).toFixed(1)}% ${ingestShare >= 0.9 ? '✓' : '✗'}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  const met = matched.lost.length === 0 && ingestShare >= 0.9 && (targetMs === undefined || (p99 ?? 0) <= targetMs);
  return met ? 0 : 1;
}
