import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';

/** One live change as the watcher received it. */
export interface WatchedChange {
  /** The StatusEvent's global id. */
  id: string;
  /** Its position for `statusEvents(after:)`. */
  cursor: string;
  subject: 'BOX' | 'DEVICE';
  licenseKey: string;
  /** Null for a box's own change. */
  device: { externalId: string; name: string | null } | null;
  /** Null when the device (or box) was first seen. */
  fromStatus: string | null;
  toStatus: string;
  /** When the report that showed the change arrived at the gateway (ISO time). */
  at: string;
  receivedAt: Date;
  /** Receipt minus `at`: ingest, commit and delivery together. */
  delayMs: number;
  /** Replayed after a reconnect: it happened while the watcher was disconnected. */
  missedWhileDisconnected: boolean;
}

export interface WatchOptions {
  /** The gateway's GraphQL endpoint, `http(s)://host:port/graphql` or `ws(s)://...`. */
  graphqlUrl: string;
  /** Only the changes of these boxes (global ids); default: every box. */
  boxes?: string[];
  /** Called for every change, in order, once each. */
  onChange: (change: WatchedChange) => void;
  /** Connection news in one line each: lost, reconnected, resuming. Default: none. */
  onNotice?: (message: string) => void;
  /** The gateway refused a subscription or the client cannot go on; the watcher has stopped. */
  onError?: (error: Error) => void;
  /** Wait before reconnect attempt n: `min * 2^n`, at most `max`, with jitter. Default 250 / 5,000 ms. */
  retryDelayMs?: { min: number; max: number };
  /** Ping the gateway this often; no pong within as long again drops the connection. Default 15,000 ms. */
  keepAliveMs?: number;
  /** The WebSocket class. Default the `ws` package's. */
  webSocketImpl?: typeof WebSocket;
  /** An API token (viewer or higher), sent in connection_init. */
  token?: string;
}

export interface Watcher {
  /** Resolves once the live subscriptions are sent; rejects if the first query failed. */
  readonly ready: Promise<void>;
  /** Cursor of the newest change received (or, before any, of the newest change when watching began). */
  readonly lastCursor: string | undefined;
  /** Reconnections so far. */
  readonly reconnects: number;
  stop(): Promise<void>;
}

const EVENT_SELECTION = 'id cursor subject fromStatus toStatus at box { licenseKey } device { externalId name }';

const LATEST_CURSOR = `query WatchStart($filter: StatusEventFilter) {
  statusEvents(first: 1, filter: $filter, orderBy: { field: ID, direction: DESC }) { edges { cursor } }
}`;
const DEVICE_CHANGES = `subscription WatchDevices($boxes: [ID!]) { deviceStatusChanged(filter: { boxes: $boxes }) { ${EVENT_SELECTION} } }`;
const BOX_CHANGES = `subscription WatchBoxes($boxes: [ID!]) { boxStatusChanged(boxes: $boxes) { ${EVENT_SELECTION} } }`;
const RESUME = `subscription WatchResume($after: String, $filter: StatusEventFilter) { statusEvents(after: $after, filter: $filter) { ${EVENT_SELECTION} } }`;

interface EventPayload {
  id: string;
  cursor: string;
  subject: 'BOX' | 'DEVICE';
  fromStatus: string | null;
  toStatus: string;
  at: string;
  box: { licenseKey: string };
  device: { externalId: string; name: string | null } | null;
}

function webSocketUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  return parsed.toString();
}

/** The number inside a StatusEvent global id (`base64("StatusEvent:12")`), to order changes; NaN otherwise. */
function eventNumber(globalId: string): number {
  const text = Buffer.from(globalId, 'base64').toString('utf8');
  return text.startsWith('StatusEvent:') ? Number(text.slice('StatusEvent:'.length)) : Number.NaN;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `12:03:04.567  SIM…  device cam-1 (前门摄像机1)  ONLINE → OFFLINE  12 ms`, in local time of receipt. */
export function formatChange(change: WatchedChange): string {
  const t = change.receivedAt;
  const time = `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
  const what = change.device ? `device ${change.device.externalId}${change.device.name ? ` (${change.device.name})` : ''}` : 'box';
  const late = change.missedWhileDisconnected ? '  (missed while disconnected)' : '';
  return `${time}  ${change.licenseKey}  ${what}  ${change.fromStatus ?? 'NEW'} → ${change.toStatus}  ${Math.round(change.delayMs)} ms${late}`;
}

/** Runs a query over the client's websocket and returns its one result. */
function queryOnce<T>(client: Client, query: string, variables: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    let result: FormattedExecutionResult<T, unknown> | undefined;
    client.subscribe<T>(
      { query, variables },
      {
        next: (value) => (result = value),
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => {
          if (result?.errors?.length) reject(new Error(result.errors.map((e) => e.message).join('; ')));
          else if (result?.data) resolve(result.data);
          else reject(new Error('the query ended without a result'));
        },
      },
    );
  });
}

/**
 * Watches a gateway's live changes: `deviceStatusChanged` and `boxStatusChanged` over graphql-ws.
 *
 * The graphql-ws client reconnects by itself (`retryAttempts: Infinity`), but would then only
 * resubscribe to "changes from now on" and silently skip whatever happened while it was away. So when
 * the connection drops, those two subscriptions are disposed, and once it is back one
 * `statusEvents(after: lastCursor)` subscription takes their place: the gateway replays the stored
 * changes after the cursor, then continues live, with no gap and no duplicate. Before any change
 * arrives, the cursor is the newest change's when watching began, read first.
 */
export function startWatcher(options: WatchOptions): Watcher {
  const retry = options.retryDelayMs ?? { min: 250, max: 5_000 };
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const notice = options.onNotice ?? (() => {});
  const boxes = options.boxes?.length ? options.boxes : null;

  /** starting: reading the cursor; live: subscribed; resuming: disconnected, resubscribe once back. */
  let phase: 'starting' | 'live' | 'resuming' | 'stopped' = 'starting';
  let active: Array<() => void> = [];
  let lastNumber = 0;
  let lastCursor: string | undefined;
  let reconnects = 0;
  let everConnected = false;
  /** Changes that happened before this (epoch ms) and arrive after a reconnect were missed. */
  let resumedAt: number | undefined;
  /** Recently delivered event numbers: a change is never printed twice, even across subscriptions. */
  const recent = new Set<number>();
  let socket: WebSocket | undefined;
  let pongTimer: NodeJS.Timeout | undefined;

  const fail = (error: Error) => {
    if (phase === 'stopped') return;
    void stop();
    options.onError?.(error);
  };

  const deliver = (event: EventPayload) => {
    const number = eventNumber(event.id);
    if (recent.has(number)) return;
    recent.add(number);
    if (recent.size > 1_000) recent.delete(recent.values().next().value!);
    if (!(number <= lastNumber)) {
      lastNumber = number;
      lastCursor = event.cursor;
    }
    const receivedAt = new Date();
    const at = Date.parse(event.at);
    options.onChange({
      id: event.id,
      cursor: event.cursor,
      subject: event.subject,
      licenseKey: event.box.licenseKey,
      device: event.device,
      fromStatus: event.fromStatus,
      toStatus: event.toStatus,
      at: event.at,
      receivedAt,
      delayMs: receivedAt.getTime() - at,
      missedWhileDisconnected: resumedAt !== undefined && at < resumedAt,
    });
  };

  const subscribe = (query: string, field: string, variables: Record<string, unknown>): (() => void) => {
    let disposed = false;
    const dispose = client.subscribe<Record<string, EventPayload>>(
      { query, variables },
      {
        next: (result) => {
          if (disposed) return;
          if (result.errors?.length) return fail(new Error(`${field}: ${result.errors.map((e) => e.message).join('; ')}`));
          const event = result.data?.[field];
          if (event) deliver(event);
        },
        error: (error) => {
          if (disposed) return;
          const errors = Array.isArray(error) ? (error as Array<{ message: string }>) : undefined;
          fail(new Error(`${field}: ${errors ? errors.map((e) => e.message).join('; ') : String((error as Error)?.message ?? error)}`));
        },
        complete: () => {},
      },
    );
    return () => {
      disposed = true;
      dispose();
    };
  };

  const subscribeLive = () => {
    active = [subscribe(DEVICE_CHANGES, 'deviceStatusChanged', { boxes }), subscribe(BOX_CHANGES, 'boxStatusChanged', { boxes })];
    phase = 'live';
  };

  const resume = () => {
    resumedAt = Date.now();
    active = [subscribe(RESUME, 'statusEvents', { after: lastCursor ?? null, filter: boxes ? { box: boxes } : null })];
    phase = 'live';
    notice(lastCursor ? 'reconnected; replaying the changes missed since the last one received' : 'reconnected; no earlier change to resume from');
  };

  const client = createClient({
    url: webSocketUrl(options.graphqlUrl),
    webSocketImpl: options.webSocketImpl ?? WebSocket,
    lazy: false,
    connectionParams: options.token ? { authorization: `Bearer ${options.token}` } : undefined,
    retryAttempts: Infinity,
    // A refused or reset connection is an Error, not a CloseEvent; retry those too. A refused token is final.
    shouldRetry: (event) => {
      if ((event as { code?: number } | undefined)?.code === 4403) {
        fail(new Error('the gateway refused the API token (4403): pass --token or set FLEETGATE_TOKEN to a viewer token'));
        return false;
      }
      return phase !== 'stopped';
    },
    retryWait: (retries) => {
      const delay = Math.min(retry.max, retry.min * 2 ** retries) * (0.5 + Math.random() / 2);
      return new Promise((resolve) => setTimeout(resolve, delay));
    },
    keepAlive: keepAliveMs,
    onNonLazyError: (error) => fail(new Error(`the websocket connection failed for good: ${describeClose(error)}`)),
    on: {
      // These run before the client's own listeners: subscriptions disposed here are not resubscribed.
      connected: (connectedSocket, _payload, wasRetry) => {
        socket = connectedSocket as WebSocket;
        if (phase === 'resuming') {
          reconnects++;
          resume();
        } else if (wasRetry) notice(everConnected ? 'reconnected' : 'connected');
        everConnected = true;
      },
      closed: (event) => {
        clearTimeout(pongTimer);
        socket = undefined;
        if (phase !== 'live') return;
        for (const dispose of active) dispose();
        active = [];
        phase = 'resuming';
        notice(`connection lost (${describeClose(event)}); reconnecting`);
      },
      ping: (received) => {
        if (received) return;
        // A half-open connection never closes by itself: no pong in time drops it, and the retry begins.
        const pinged = socket;
        clearTimeout(pongTimer);
        pongTimer = setTimeout(() => {
          if (pinged && pinged === socket && pinged.readyState === WebSocket.OPEN) pinged.terminate();
        }, keepAliveMs);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
    },
  });

  const ready = (async () => {
    const latest = await queryOnce<{ statusEvents: { edges: Array<{ cursor: string }> } }>(client, LATEST_CURSOR, { filter: boxes ? { box: boxes } : null });
    lastCursor ??= latest.statusEvents.edges[0]?.cursor;
    if (phase === 'starting') subscribeLive();
  })();
  ready.catch((error: unknown) => fail(error instanceof Error ? error : new Error(String(error))));

  async function stop(): Promise<void> {
    if (phase === 'stopped') return;
    phase = 'stopped';
    clearTimeout(pongTimer);
    for (const dispose of active) dispose();
    active = [];
    await client.dispose();
  }

  return {
    ready,
    get lastCursor() {
      return lastCursor;
    },
    get reconnects() {
      return reconnects;
    },
    stop,
  };
}

function describeClose(event: unknown): string {
  const close = event as { code?: number; reason?: string; message?: string };
  if (typeof close?.code === 'number') return `code ${close.code}${close.reason ? `: ${close.reason}` : ''}`;
  return close?.message ?? String(event);
}

/** `--watch`: changes on stdout, one line each; connection news on stderr. */
export function startConsoleWatcher(graphqlUrl: string, token: string | undefined): Watcher {
  process.stderr.write(`watching live changes on ${graphqlUrl}\n`);
  return startWatcher({
    graphqlUrl,
    token,
    onChange: (change) => process.stdout.write(`${formatChange(change)}\n`),
    onNotice: (message) => process.stderr.write(`watch: ${message}\n`),
    onError: (error) => process.stderr.write(`watch stopped: ${error.message}\n`),
  });
}

/** `--watch-only`: watch until the signal or `durationSeconds`; 1 if the watcher stopped on an error. */
export async function watchOnly(graphqlUrl: string, token: string | undefined, signal: AbortSignal, durationSeconds?: number): Promise<number> {
  let failed = false;
  let watcher: Watcher | undefined;
  await new Promise<void>((resolve) => {
    process.stderr.write(`watching live changes on ${graphqlUrl} (Ctrl-C to stop)\n`);
    watcher = startWatcher({
      graphqlUrl,
      token,
      onChange: (change) => process.stdout.write(`${formatChange(change)}\n`),
      onNotice: (message) => process.stderr.write(`watch: ${message}\n`),
      onError: (error) => {
        process.stderr.write(`watch stopped: ${error.message}\n`);
        failed = true;
        resolve();
      },
    });
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
    if (durationSeconds !== undefined) setTimeout(resolve, durationSeconds * 1000).unref();
  });
  await watcher?.stop();
  return failed ? 1 : 0;
}
