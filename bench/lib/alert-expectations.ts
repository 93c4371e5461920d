// Which alerts a storm should fire and when, worked out from what the gateway stored (the reports'
// times, the status changes) and the rules, independently of the evaluator; then matched to receipts.
import type pg from 'pg';
import type { RuleSpec } from './alert-rules';
import type { Receipt } from './webhook-receivers';

/** The gateway's offline rule (OFFLINE_PERIODS, OFFLINE_MIN_SECONDS, DEFAULT_REPORT_PERIOD_SECONDS), as the bench set it. */
export interface OfflineRule {
  periods: number;
  minSeconds: number;
  defaultPeriodSeconds: number;
}

/** An alert that should fire: rule, subject (`box:<id>` or `device:<id>`), and when (ms since the epoch). */
export interface ExpectedAlert {
  rule: RuleSpec & { id: number };
  subject: string;
  dueAt: number;
}

interface Scope {
  boxId: number;
  type?: string;
}

const inScope = (rule: RuleSpec, { boxId, type }: Scope) =>
  (!rule.boxIds || rule.boxIds.includes(boxId)) && (!rule.deviceTypes || type === undefined || rule.deviceTypes.includes(type.toUpperCase() as never));

const ms = (value: Date | string) => new Date(value).getTime();

/**
 * The first firing of each (rule, subject) due in [stormStart, cutoff]: a box from the moment the offline
 * rule says it is offline (its last report + max(min, periods × period)) plus forSeconds; a device offline
 * from its change to offline plus forSeconds, if it stayed offline that long; a flapping device at the
 * change that made N changes within the window.
 */
export async function expectedAlerts(
  client: pg.Client,
  rules: Array<RuleSpec & { id: number }>,
  offline: OfflineRule,
  stormStart: Date,
  cutoff: Date,
): Promise<ExpectedAlert[]> {
  const expected: ExpectedAlert[] = [];
  const due = (rule: RuleSpec & { id: number }, subject: string, dueAt: number) => {
    if (dueAt <= cutoff.getTime()) expected.push({ rule, subject, dueAt });
  };

  const boxes = await client.query<{ id: number; offline_at: Date }>(
    `select id, last_report_at + make_interval(secs => greatest($1::float8, $2::float8 * coalesce(report_period_seconds, observed_period_seconds, $3::float8))) as offline_at
     from boxes where status = 'offline' and status_since >= $4 and removed_at is null`,
    [offline.minSeconds, offline.periods, offline.defaultPeriodSeconds, stormStart],
  );
  for (const rule of rules.filter((r) => r.kind === 'BOX_OFFLINE')) {
    for (const box of boxes.rows) if (inScope(rule, { boxId: box.id })) due(rule, `box:${box.id}`, ms(box.offline_at) + (rule.forSeconds ?? 0) * 1000);
  }

  const devices = new Map<number, Scope>();
  for (const row of (await client.query<{ id: number; box_id: number; type: string }>('select id, box_id, type from devices')).rows) {
    devices.set(row.id, { boxId: row.box_id, type: row.type });
  }

  const stretches = await client.query<{ device_id: number; at: Date; next_at: Date | null }>(
    `select device_id, at, next_at from (
       select device_id, to_status, at, lead(at) over (partition by device_id order by at, id) as next_at
       from status_events where device_id is not null and at >= $1) as changes
     where to_status = 'offline' order by at`,
    [stormStart],
  );
  for (const rule of rules.filter((r) => r.kind === 'DEVICE_OFFLINE')) {
    const seen = new Set<number>();
    const forMs = (rule.forSeconds ?? 0) * 1000;
    for (const s of stretches.rows) {
      if (seen.has(s.device_id) || !inScope(rule, devices.get(s.device_id)!)) continue;
      const end = s.next_at ? ms(s.next_at) : Number.POSITIVE_INFINITY;
      if (end - ms(s.at) < forMs) continue;
      seen.add(s.device_id);
      due(rule, `device:${s.device_id}`, ms(s.at) + forMs);
    }
  }

  for (const rule of rules.filter((r) => r.kind === 'DEVICE_FLAPPING')) {
    const flaps = await client.query<{ device_id: number; first_at: Date }>(
      `select device_id, min(at) as first_at from (
         select device_id, at, lag(at, $1::int - 1) over (partition by device_id order by at, id) as earlier
         from status_events where device_id is not null and at >= $2) as changes
       where earlier is not null and at - earlier <= make_interval(secs => $3::float8) group by device_id`,
      [rule.flapChanges, stormStart, rule.flapWindowSeconds],
    );
    for (const f of flaps.rows) if (inScope(rule, devices.get(f.device_id)!)) due(rule, `device:${f.device_id}`, ms(f.first_at) + (rule.forSeconds ?? 0) * 1000);
  }
  return expected;
}

export interface Matched {
  /** Receipt time minus due time, ms, one per expected (alert, channel) received. */
  delays: number[];
  /** The same from the gateway's own `firesAt` in the payload. */
  delaysFromFiresAt: number[];
  /** Where the time went: due to the alert's commit (`firedAt`, the evaluator), and commit to receipt (the deliverer). */
  evaluationLags: number[];
  deliveryLags: number[];
  lost: Array<ExpectedAlert & { channel: number }>;
  /** FIRED receipts for a (rule, subject) the bench did not expect, or a second firing of one. */
  unexpected: Receipt[];
}

/** Pairs each expected firing, on each channel its rule routes to, with the first FIRED receipt of that channel. */
export function matchReceipts(expected: ExpectedAlert[], receiptsByChannel: Array<Map<string, Receipt>>, cutoff: Date): Matched {
  const result: Matched = { delays: [], delaysFromFiresAt: [], evaluationLags: [], deliveryLags: [], lost: [], unexpected: [] };
  const firstByKey = receiptsByChannel.map((receipts) => {
    const first = new Map<string, Receipt>();
    for (const receipt of [...receipts.values()].sort((a, b) => a.receivedAt - b.receivedAt)) {
      const { payload } = receipt;
      const subject = payload.subject.device ? `device:${payload.subject.device.databaseId}` : `box:${payload.subject.box.databaseId}`;
      const key = `${payload.rule.databaseId}|${subject}`;
      if (!first.has(key)) first.set(key, receipt);
      else result.unexpected.push(receipt);
    }
    return first;
  });
  const wanted = new Set<string>();
  for (const alert of expected) {
    for (const channel of alert.rule.channels) {
      const key = `${alert.rule.id}|${alert.subject}`;
      wanted.add(`${channel}|${key}`);
      const receipt = firstByKey[channel]?.get(key);
      if (!receipt) {
        result.lost.push({ ...alert, channel });
        continue;
      }
      result.delays.push(receipt.receivedAt - alert.dueAt);
      const { firesAt, firedAt } = receipt.payload.alert;
      if (firesAt) result.delaysFromFiresAt.push(receipt.receivedAt - ms(firesAt));
      if (firedAt) {
        result.evaluationLags.push(ms(firedAt) - alert.dueAt);
        result.deliveryLags.push(receipt.receivedAt - ms(firedAt));
      }
    }
  }
  firstByKey.forEach((first, channel) => {
    for (const [key, receipt] of first) {
      const firesAt = receipt.payload.alert.firesAt ? ms(receipt.payload.alert.firesAt) : 0;
      if (!wanted.has(`${channel}|${key}`) && firesAt <= cutoff.getTime()) result.unexpected.push(receipt);
    }
  });
  return result;
}
