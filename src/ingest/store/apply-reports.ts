import type pg from 'pg';
import type { StatusChanges } from '../report';
import { insertStatusEvents, type EventRow, type RecordedEvent } from '../../live/events-table';
import type { ReportError } from '../errors';
import { BatchTransaction } from './batch-transaction';
import { applyReport, devicesToWrite, type BoxState, type DeviceState, type StatusChange } from './diff';
import { appliedReport, unknownBox, type AppliedReport, type ReceivedReport } from './outcome';
import { HealthColumns } from './health-columns';
import { Pipeline } from './pipeline';
import { ReportColumns } from './report-columns';
import { StatusColumns, statusDeviceIds, statusEvents } from './status-changes';
import {
  boxState,
  deviceState,
  insertBoxes,
  insertDevices,
  lockBoxes,
  selectChangedDevices,
  selectDevices,
  updateBoxes,
  updateDevices,
  updateUnchangedBoxes,
} from './statements';

export type { RecordedEvent };

/**
 * What the store remembers between batches, per licence key: the hashes of the body and device list
 * it last committed. An equal body is not sent again, and a changed device list goes straight to the
 * diff path. This is this process's view: a stale entry only costs the slower path.
 */
export type CommittedHashes = Map<string, { rawHash: string; devicesHash: string }>;

/** The two paths of a batch's reports (see applyReports). */
interface Route {
  /** Reports expected to find their box online with their device list (or the one `statusChanges` changed), and whether to send their body. */
  unchanged: Array<{ received: ReceivedReport; withBody: boolean; statusChanges?: StatusChanges }>;
  toDiff: ReceivedReport[];
}

/**
 * A box reporting twice in one batch takes the diff path, which orders its reports, and so does a
 * device list known to differ from the one this process stored last, unless it is that list with
 * only some statuses changed (the update checks the stored list is still that one).
 */
export function routeBatch(batch: readonly ReceivedReport[], committed: CommittedHashes): Route {
  const perBox = new Map<string, number>();
  for (const { report } of batch) perBox.set(report.licenseKey, (perBox.get(report.licenseKey) ?? 0) + 1);
  const route: Route = { unchanged: [], toDiff: [] };
  for (const received of batch) {
    const { report } = received;
    const last = committed.get(report.licenseKey);
    const changes = report.statusChanges;
    const listChanged = last !== undefined && last.devicesHash !== report.devicesHash;
    const statusesOnly = changes !== undefined && listChanged && last.devicesHash === changes.previousDevicesHash;
    if (perBox.get(report.licenseKey) !== 1 || (listChanged && !statusesOnly)) route.toDiff.push(received);
    else route.unchanged.push({ received, withBody: last?.rawHash !== report.rawHash, statusChanges: statusesOnly ? changes : undefined });
  }
  return route;
}

/**
 * Sends, without waiting: lock the boxes of `reports` (in key order), then read the devices of
 * those whose stored device list differs from one of the reports'. Postgres runs the read after the
 * lock is granted, so it reads what the lock protects.
 */
function lockAndRead(pipeline: Pipeline, reports: ReceivedReport[]): Promise<[pg.QueryResult, pg.QueryResult]> {
  const keys = [...new Set(reports.map((r) => r.report.licenseKey))].sort();
  // Tracked as a whole too: a batch that fails before awaiting it must not leave its rejection unhandled.
  return pipeline.track(Promise.all([
    lockBoxes(pipeline, keys),
    selectChangedDevices(pipeline, reports.map((r) => r.report.licenseKey), reports.map((r) => r.report.devicesHash)),
  ]));
}

/**
 * Applies a batch of reports, in order, on a client with no transaction open:
 * 1. reports of online boxes whose device list is the stored one, or that with some statuses changed:
 *    one conditional UPDATE, no reads;
 * 2. the rest, and those step 1 did not match (box or devices changed meanwhile): lock their boxes
 *    (creating new ones), diff device lists against the stored ones (diff.ts), and write devices,
 *    boxes and history with one multi-row statement each.
 * Each box update also folds its reports' health figures into box_health (see health-columns.ts).
 * With reports for step 2 known in advance, or statuses set by step 1 (their history is written last,
 * see insertStatusEvents), both steps share one transaction (one commit to wait for); otherwise step
 * 1 commits alone, and its misses take step 2 in a transaction of their own (see BatchTransaction).
 * Statements go out in pipeline mode: step 1's UPDATE and step 2's locks and reads in one round trip,
 * the writes and the COMMIT in another. A report that must find its box and does not (`mustExist`)
 * is answered with a ReportError and leaves nothing behind. Also returns the history recorded and how many boxes the batch created.
 */
export async function applyReports(
  client: pg.ClientBase,
  batch: ReceivedReport[],
  committed: CommittedHashes,
): Promise<{ applied: Array<AppliedReport | ReportError>; events: RecordedEvent[]; created: number }> {
  const results = new Map<ReceivedReport, AppliedReport | ReportError>();
  const { unchanged, toDiff } = routeBatch(batch, committed);
  const pipeline = new Pipeline(client);
  const transaction = new BatchTransaction(pipeline);
  try {
    const sent: Array<Promise<unknown>> = [];
    const columns = new ReportColumns();
    const statuses = new StatusColumns();
    const health = new HealthColumns();
    for (const { received, withBody, statusChanges } of unchanged) {
      columns.add(received.report, received.receivedAt, received.address, 1, withBody);
      health.add(received.report.licenseKey, received.report, received.receivedAt);
      if (statusChanges) statuses.add(received.report.licenseKey, statusChanges, received.receivedAt);
    }
    if (toDiff.length > 0 || statuses.size > 0) sent.push(transaction.begin());
    const keys = unchanged.map(({ received }) => received.report.licenseKey);
    const expected = unchanged.map(({ received, statusChanges }) => statusChanges?.previousDevicesHash ?? received.report.devicesHash);
    const updated = unchanged.length > 0 ? updateUnchangedBoxes(pipeline, keys, expected, columns, statuses, health) : undefined;
    const setStatuses: EventRow[] = [];
    const reads: Array<Promise<[pg.QueryResult, pg.QueryResult]>> = [];
    if (toDiff.length > 0) reads.push(lockAndRead(pipeline, toDiff));
    if (updated) {
      const { rows } = await updated;
      const ids = new Map(rows.filter((r) => r.device_id === null).map((r) => [r.license_key as string, r.id as number]));
      const deviceIds = statusDeviceIds(rows);
      const stored: Array<[ReceivedReport, AppliedReport]> = [];
      const missed: ReceivedReport[] = [];
      for (const { received, statusChanges } of unchanged) {
        const id = ids.get(received.report.licenseKey);
        if (id === undefined) {
          missed.push(received);
          continue;
        }
        if (statusChanges) setStatuses.push(...statusEvents(id, statusChanges, received.receivedAt, deviceIds));
        const result = appliedReport(id, received.report, statusChanges?.changed.length ?? 0);
        results.set(received, result);
        stored.push([received, result]);
      }
      if (transaction.phase === 'autocommit') transaction.committedAlone(stored);
      if (missed.length > 0) {
        if (transaction.phase === 'autocommit') sent.push(transaction.begin());
        reads.push(lockAndRead(pipeline, missed));
      }
    }
    if (transaction.phase === 'autocommit') {
      await transaction.commit();
      return { applied: batch.map((r) => results.get(r)!), events: [], created: 0 };
    }
    await Promise.all(sent);
    const diffed = await applyDiffPath(pipeline, transaction, batch.filter((r) => !results.has(r)), await Promise.all(reads), results, setStatuses);
    return { applied: batch.map((r) => results.get(r)!), ...diffed };
  } catch (error) {
    await pipeline.end();
    throw await transaction.failed(error);
  } finally {
    await pipeline.end();
  }
}

/** Step 2 of applyReports, in its open transaction, given the boxes locked and devices read for `batch`. */
async function applyDiffPath(
  pipeline: Pipeline,
  transaction: BatchTransaction,
  batch: ReceivedReport[],
  reads: Array<[pg.QueryResult, pg.QueryResult]>,
  results: Map<ReceivedReport, AppliedReport | ReportError>,
  /** History of the statuses step 1 set, written first. */
  setStatuses: EventRow[],
): Promise<{ events: RecordedEvent[]; created: number }> {
  const boxes = new Map<string, BoxState>();
  for (const [locked] of reads) for (const r of locked.rows) boxes.set(r.license_key, boxState(r, false));
  const devicesRead = new Map<number, Map<string, DeviceState>>();
  for (const [, devices] of reads) {
    for (const r of devices.rows) {
      // A box inserted by another replica after our lock is read again below.
      let read = devicesRead.get(r.box_id);
      if (!read) devicesRead.set(r.box_id, (read = new Map()));
      if (r.id !== null) read.set(r.external_id, deviceState(r)); // a box without devices gives one row of nulls
    }
  }

  // New boxes, unless every report of them must find its box (a refused report leaves nothing behind).
  const creators = new Set(batch.filter((r) => !r.mustExist).map((r) => r.report.licenseKey));
  const missing = [...creators].filter((key) => !boxes.has(key)).sort();
  let created = 0;
  if (missing.length > 0) {
    // Keys another replica inserted meanwhile are not ours: `returning` names only the rows this insert made.
    const inserted = new Set((await insertBoxes(pipeline, missing, batch[batch.length - 1]!.receivedAt)).rows.map((r) => r.license_key as string));
    for (const r of (await lockBoxes(pipeline, missing)).rows) boxes.set(r.license_key, boxState(r, inserted.has(r.license_key)));
    created = inserted.size;
  }

  // Devices are needed only for boxes whose device list changes in the batch; a box created here has none.
  const needDevices = new Set<string>();
  const hashAfter = new Map<string, string | null>();
  for (const { report } of batch) {
    const box = boxes.get(report.licenseKey);
    if (!box) continue;
    const before = hashAfter.has(box.licenseKey) ? hashAfter.get(box.licenseKey) : box.devicesHash;
    if (before !== report.devicesHash) needDevices.add(box.licenseKey);
    hashAfter.set(box.licenseKey, report.devicesHash);
  }
  const unread: BoxState[] = [];
  for (const key of needDevices) {
    const box = boxes.get(key)!;
    const read = devicesRead.get(box.id) ?? (box.created ? new Map() : undefined);
    if (read) boxes.set(key, { ...box, devices: read });
    else unread.push(box);
  }
  if (unread.length > 0) {
    const read = new Map(unread.map((box) => [box.id, new Map<string, DeviceState>()]));
    for (const r of (await selectDevices(pipeline, [...read.keys()])).rows) read.get(r.box_id)!.set(r.external_id, deviceState(r));
    for (const box of unread) boxes.set(box.licenseKey, { ...box, devices: read.get(box.id)! });
  }

  const history: Array<{ box: BoxState; change: StatusChange }> = [];
  const health = new HealthColumns();
  for (const received of batch) {
    const { report, receivedAt, address } = received;
    const box = boxes.get(report.licenseKey);
    // Whether its box exists for it, as the reports before it in the batch leave the box.
    if (!box || (received.mustExist && (box.created || box.removedAt !== null))) {
      results.set(received, unknownBox(report));
      continue;
    }
    const { box: after, changes } = applyReport(box, report, receivedAt, address);
    boxes.set(report.licenseKey, after);
    for (const change of changes) history.push({ box, change });
    health.add(report.licenseKey, report, receivedAt);
    results.set(received, appliedReport(box.id, report, changes.length));
  }

  // The writes and the COMMIT go out together.
  const added: Array<{ boxId: number; device: DeviceState }> = [];
  const changed: DeviceState[] = [];
  const reported = [...boxes.values()].filter((box) => box.lastReport !== undefined); // else every report of it was refused
  for (const box of reported) {
    const writes = devicesToWrite(box);
    for (const device of writes.added) added.push({ boxId: box.id, device });
    changed.push(...writes.changed);
  }
  const insert = added.length > 0 ? insertDevices(pipeline, added) : undefined;
  const update = changed.length > 0 ? updateDevices(pipeline, changed) : undefined;
  const boxUpdate = reported.length > 0 ? updateBoxes(pipeline, reported, health) : undefined;

  // History names devices by id: a device seen for the first time has one once the insert answers.
  const deviceIds = new Map<string, number>();
  const idKey = (boxId: number, externalId: string) => `${boxId}\u0000${externalId}`;
  for (const r of insert ? (await insert).rows : []) deviceIds.set(idKey(r.box_id, r.external_id), r.id);
  const deviceId = ({ id, licenseKey }: BoxState, externalId: string) =>
    boxes.get(licenseKey)!.devices!.get(externalId)!.id ?? deviceIds.get(idKey(id, externalId)) ?? null;
  const rows: EventRow[] = [...setStatuses, ...history.map(({ box, change }) => ({
    box_id: box.id,
    device_id: change.externalId === null ? null : deviceId(box, change.externalId),
    from_status: change.from,
    to_status: change.to,
    at: change.at,
  }))];
  // Last, because it serializes event writers across replicas until commit.
  const inserted = pipeline.track(insertStatusEvents(pipeline.client, rows));
  const committing = transaction.commit();
  // A failed write is the error to report (the COMMIT then answers ROLLBACK), whichever settles first.
  committing.catch(() => {});
  const [, , , recorded] = await Promise.all([insert, update, boxUpdate, inserted]);
  await committing;
  return { events: recorded, created };
}
