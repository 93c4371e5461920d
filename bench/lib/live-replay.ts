// The replay storm of bench:live (issue 17): many websocket clients resume `statusEvents(after:)` at
// once, from cursors about the same distance back, while changes go on. Here: where the cursors come
// from (the history query, as a client gets them) and whether each client got exactly what it should.
import { LatencyHistogram, type LatencySummary } from '../../tools/simulator/latency';

/** One position in the history: the cursor the API returned for an event, and the event's database id. */
export interface HistoryPosition {
  cursor: string;
  eventId: number;
}

const HISTORY_PAGE = 500; // the most `first` takes
const HISTORY_QUERY = `query History($first: Int!, $after: String) {
  statusEvents(first: $first, after: $after, orderBy: { field: ID, direction: DESC }) { edges { cursor node { id } } pageInfo { endCursor hasNextPage } }
}`;

/** The database id inside a StatusEvent global id (`base64("StatusEvent:123")`); NaN if it is not one. */
export function statusEventNumber(globalId: unknown): number {
  if (typeof globalId !== 'string') return Number.NaN;
  const text = Buffer.from(globalId, 'base64').toString('latin1');
  return text.startsWith('StatusEvent:') ? Number(text.slice(12)) : Number.NaN;
}

/**
 * The newest `depth` events, newest first, with their cursors, paged from the history query
 * `statusEvents(orderBy: ID DESC)`: the cursors a client resuming from there would hold.
 */
export async function historyPositions(origin: string, token: string, depth: number, timeoutMs: number): Promise<HistoryPosition[]> {
  const positions: HistoryPosition[] = [];
  let after: string | null = null;
  while (positions.length < depth) {
    const response = await fetch(`${origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: HISTORY_QUERY, variables: { first: Math.min(HISTORY_PAGE, depth - positions.length), after } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    type Page = { edges: Array<{ cursor: string; node: { id: string } }>; pageInfo: { endCursor: string | null; hasNextPage: boolean } };
    const body = (await response.json()) as { data?: { statusEvents?: Page }; errors?: unknown };
    const page = body.data?.statusEvents;
    if (!page) throw new Error(`the history query was answered ${response.status}: ${JSON.stringify(body.errors ?? body).slice(0, 300)}`);
    for (const edge of page.edges) positions.push({ cursor: edge.cursor, eventId: statusEventNumber(edge.node.id) });
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) break;
    after = page.pageInfo.endCursor;
  }
  if (positions.length < depth) throw new Error(`the history holds ${positions.length} events, fewer than the ${depth} the storm needs`);
  return positions;
}

/**
 * How far back client `client` of `clients` resumes, in events: `events`, moved by -window..+window in
 * even steps over the clients, so their ranges overlap without being identical.
 */
export function replayDepth(client: number, clients: number, events: number, window: number): number {
  return clients <= 1 ? events : events - window + Math.round((2 * window * client) / (clients - 1));
}

/** What the storm's clients received, as the subscriber processes hand it over, grouped per client. */
export interface ReplayReceipts {
  /** Event ids per client, in the order they arrived. */
  events: number[][];
  /** Arrival times (CLOCK_MONOTONIC ms) per client, parallel to `events`. */
  at: number[][];
  /** When each client sent its subscribe message (NaN if it never did). */
  subscribedAt: number[];
  /** How each client's subscription ended while measured: "still open", "an error message", ... */
  ended: string[];
}

export interface ReplayCheck {
  clients: number;
  exact: number;
  /** Clients whose stream missed a stored event, repeated one, went back in id order, or held one not stored after its cursor. */
  withGap: number;
  withDuplicate: number;
  outOfOrder: number;
  /** Clients that received a prefix of what they should have, then nothing (closed or stalled), by how their subscription ended. */
  cutShort: number;
  cutShortBy: Record<string, number>;
  /** The first few inexact clients, described, for the report. */
  examples: string[];
  /** From each client's subscribe message to its receipt of the newest event stored when the storm began. */
  replayDone: LatencySummary;
  replayFinished: number;
  /** From the first subscribe message of the storm to the last client's receipt of that event. */
  lastDoneMs: number;
  received: number;
  expected: number;
}

/**
 * Each client must have received exactly the stored events after its cursor (`storedIds`, ascending,
 * read after the run), in id order, no gap, no duplicate: the replay and then the live ones, at least
 * up to `newestAtEnd` (the newest when the ingest stopped). Events stored later (a box the sweeper
 * marked offline meanwhile) may follow, in the same order.
 */
export function checkReplay(afterIds: number[], storedIds: number[], receipts: ReplayReceipts, newestAtStart: number, newestAtEnd: number): ReplayCheck {
  const endIndex = lowerBound(storedIds, newestAtEnd + 1);
  const replayDone = new LatencyHistogram();
  const check: ReplayCheck = {
    clients: afterIds.length,
    exact: 0,
    withGap: 0,
    withDuplicate: 0,
    outOfOrder: 0,
    cutShort: 0,
    cutShortBy: {},
    examples: [],
    replayDone: replayDone.summary(),
    replayFinished: 0,
    lastDoneMs: Number.NaN,
    received: 0,
    expected: 0,
  };
  const stored = new Set(storedIds);
  const firstSubscribe = receipts.subscribedAt.reduce((first, t) => (t < first ? t : first), Infinity);
  let lastDone = Number.NaN;
  for (let client = 0; client < afterIds.length; client++) {
    const after = afterIds[client]!;
    const got = receipts.events[client] ?? [];
    const first = lowerBound(storedIds, after + 1);
    const expected = endIndex - first;
    check.expected += expected;
    check.received += got.length;
    const doneAt = got.indexOf(newestAtStart);
    if (doneAt >= 0) {
      const doneTime = receipts.at[client]![doneAt]!;
      replayDone.record(doneTime - receipts.subscribedAt[client]!);
      check.replayFinished++;
      if (!(doneTime <= lastDone)) lastDone = doneTime;
    }
    let mismatch: string | undefined;
    let k = 0;
    for (; k < got.length; k++) {
      const want = storedIds[first + k];
      if (got[k] === want) continue;
      const id = got[k]!;
      if (got.indexOf(id) < k) {
        check.withDuplicate++;
        mismatch = `duplicate of event ${id} at position ${k}`;
      } else if (k > 0 && id < got[k - 1]!) {
        check.outOfOrder++;
        mismatch = `event ${id} after ${got[k - 1]}`;
      } else {
        check.withGap++;
        mismatch = want === undefined || !stored.has(id) || id <= after ? `event ${id} is not a stored event after its cursor` : `gap: expected event ${want}, got ${id}`;
      }
      break;
    }
    if (!mismatch && got.length < expected) {
      check.cutShort++;
      const how = receipts.ended[client] ?? 'still open';
      check.cutShortBy[how] = (check.cutShortBy[how] ?? 0) + 1;
      mismatch = `stopped after ${got.length} of ${expected} events (next expected ${storedIds[first + got.length]}), ended by ${how}`;
    }
    if (mismatch) {
      if (check.examples.length < 5) check.examples.push(`client ${client} (after event ${after}): ${mismatch}`);
    } else check.exact++;
  }
  check.replayDone = replayDone.summary();
  check.lastDoneMs = lastDone - firstSubscribe;
  return check;
}

/** First index of `sorted` whose value is ≥ `value`. */
function lowerBound(sorted: number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! < value) low = middle + 1;
    else high = middle;
  }
  return low;
}
