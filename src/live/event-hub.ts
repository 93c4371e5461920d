import pg from 'pg';
import { boxes, devices, type Box, type Device } from '../db/schema';
import { Listener } from '../db/listener';
import { fieldsOf, run, selectRows, sql } from '../db/sql';
import type { Logger } from '../log';
import { WorkSlices } from './work-slices';
import { EVENTS_CHANNEL, type RecordedEvent } from './events-table';

/** A committed history row with its device and box, loaded once per replica for all subscribers. */
export interface LiveEvent extends RecordedEvent {
  device: Device | null;
  box: Box;
}

export interface EventHubOptions {
  /** Catch-up query interval when no notification arrives (covers a dropped LISTEN connection). Default 2000. */
  pollIntervalMs?: number;
  /** Rows per catch-up query. Default 1000. */
  pageSize?: number;
}

export class SlowConsumerError extends Error {
  constructor(readonly bufferSize: number) {
    super(`The subscriber fell ${bufferSize} events behind and was disconnected; resubscribe from your last cursor.`);
  }
}

/**
 * Who wants which events. Subscribers with the same filter `key` (the same conditions, however many
 * clients ask) share one group: an event is matched once per group, then handed to each member.
 */
export interface EventFilter {
  accepts(event: LiveEvent): boolean;
  /** Only events of these boxes can match (an index, so a change visits only the groups that may want it). */
  boxIds?: ReadonlySet<number>;
  /** Equal keys mean equal filters; without one the filter is a group of its own. */
  key?: string;
}

interface FilterGroup {
  key: string;
  filter: EventFilter;
  members: Set<Member>;
}

interface Member {
  /** Events up to this id are not for this member (it replays them from the table). */
  startsAfter: number;
  push(event: LiveEvent): void;
}

/** Subscribers handed an event between two turns of the event loop (see WorkSlices). */
const FANOUT_SLICE = 32;

/** A status event row as read from the table (snake_case, as `statusEventsBetween` returns them too). */
export interface StatusEventRecord {
  id: number;
  box_id: number;
  device_id: number | null;
  from_status: string | null;
  to_status: string;
  at: Date;
}

/**
 * One per gateway process. Listens on Postgres for "events committed up to id N", reads the new
 * rows once (with their devices and boxes) and hands them to the local subscribers in id order.
 * It never skips an event: it reads `id > last delivered` from the table, and event ids commit in
 * order (see events-table.ts). After a lost LISTEN connection it reconnects and catches up.
 */
export class EventHub {
  private readonly listener: Listener;
  /** Filter groups by key, and the number of members in all of them. */
  private readonly groups = new Map<string, FilterGroup>();
  private members = 0;
  /** Groups of every box, and of given boxes: each event visits the first and its box's entry. */
  private readonly anyBox = new Set<FilterGroup>();
  private readonly byBox = new Map<number, Set<FilterGroup>>();
  private unkeyed = 0;
  /** Fan-out and replay share the loop with ingest in slices (see WorkSlices). */
  readonly slices = new WorkSlices();
  private delivered = 0;
  /** The highest id known to be committed (by this process's writers or NOTIFY); may run ahead of `delivered`. */
  private committedUpTo = 0;
  private fetching: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private poll: NodeJS.Timeout | undefined;
  private readonly pollIntervalMs: number;
  private readonly pageSize: number;
  private readonly committedListeners: Array<() => void> = [];

  constructor(
    databaseUrl: string,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    options: EventHubOptions = {},
  ) {
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    this.pageSize = options.pageSize ?? 1000;
    this.listener = new Listener({
      databaseUrl,
      applicationName: 'fleetgate-listen',
      channels: [EVENTS_CHANNEL],
      onNotification: (_channel, payload) => this.known(Number(payload)),
      onReconnected: () => this.catchUp(),
      name: 'event listener',
      log,
    });
  }

  /** The id of the last event handed to subscribers: everything up to it has been delivered. */
  get lastDeliveredId(): number {
    return this.delivered;
  }

  get subscriberCount(): number {
    return this.members;
  }

  /** Distinct filters among the subscribers: what an event is matched against. */
  get filterCount(): number {
    return this.groups.size;
  }

  async start(): Promise<void> {
    this.stopped = false;
    const { rows } = await run<{ id: number }>(this.pool, sql`select coalesce(max(id), 0) as id from status_events`);
    this.delivered = rows[0]!.id;
    this.committedUpTo = this.delivered;
    await this.listener.start();
    this.poll = setInterval(() => this.catchUp(), this.pollIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    await this.fetching;
    await this.listener.stop();
  }

  /**
   * Events this process just committed (ingest's writer, the offline sweep): they are read at once,
   * without waiting for NOTIFY, which tells the other replicas. Bound, so it can be handed over as is.
   */
  readonly published = (recorded: readonly RecordedEvent[]): void => {
    if (recorded.length > 0) this.known(recorded[recorded.length - 1]!.id);
  };

  /** Calls `listener` whenever newer events are known to be committed (here or on another replica); no read. */
  onCommitted(listener: () => void): void {
    this.committedListeners.push(listener);
  }

  /** Events up to `id` are committed. With nobody listening here they need not be read at all. */
  private known(id: number): void {
    if (id > this.committedUpTo) for (const listener of this.committedListeners) listener();
    this.committedUpTo = Math.max(this.committedUpTo, id);
    if (id <= this.delivered) return;
    if (this.members === 0 && !this.fetching) this.delivered = id;
    else this.catchUp();
  }

  /**
   * Events accepted by `filter`, from the next one delivered on. At most `bufferSize` may wait for a
   * slow reader; one more ends the iteration with SlowConsumerError instead of growing memory.
   */
  subscribe(filter: EventFilter | ((event: LiveEvent) => boolean), bufferSize: number, boxIds?: ReadonlySet<number>): AsyncIterableIterator<LiveEvent> {
    const shaped = typeof filter === 'function' ? { accepts: filter, boxIds } : filter;
    return this.iterate(shaped, this.delivered, bufferSize).events;
  }

  /**
   * `subscribe` from now on: the live events are those after `startsAfter`, the newest id known to be
   * committed when subscribing. A replay from the table up to it joins them with no gap and no duplicate.
   *
   * While the subscriber replays (`replaying`), live events wait in its buffer; a buffer that fills up then is not
   * a slow consumer but a long replay, so it is emptied instead and the subscriber *laps*: `replayed()`,
   * called when the replay has reached the boundary, moves the boundary to the newest committed id and
   * returns it (the replay goes on to it from the table, which holds every event), or returns undefined
   * once nothing was dropped: from then on the subscriber is live, and a full buffer ends it.
   * `onOverflow` runs the moment a live buffer overflows (the reader may be stuck and never ask again):
   * a websocket is closed there and then.
   */
  subscribeFrom(
    filter: EventFilter,
    bufferSize: number,
    { onOverflow, replaying = false }: { onOverflow?: (error: SlowConsumerError) => void; replaying?: boolean } = {},
  ): { events: AsyncIterableIterator<LiveEvent>; startsAfter: number; replayed: () => number | undefined } {
    const startsAfter = Math.max(this.delivered, this.committedUpTo);
    const feed = this.iterate(filter, startsAfter, bufferSize, onOverflow, replaying);
    return { events: feed.events, startsAfter, replayed: feed.replayed };
  }

  private join(filter: EventFilter, member: Member): FilterGroup {
    const key = filter.key ?? `\u0000${++this.unkeyed}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { key, filter, members: new Set() };
      this.groups.set(key, group);
      if (!filter.boxIds) this.anyBox.add(group);
      else
        for (const id of filter.boxIds) {
          let set = this.byBox.get(id);
          if (!set) this.byBox.set(id, (set = new Set()));
          set.add(group);
        }
    }
    group.members.add(member);
    this.members++;
    return group;
  }

  private leave(group: FilterGroup, member: Member): void {
    if (!group.members.delete(member)) return;
    this.members--;
    if (group.members.size > 0) return;
    this.groups.delete(group.key);
    if (!group.filter.boxIds) return void this.anyBox.delete(group);
    for (const id of group.filter.boxIds) {
      const set = this.byBox.get(id);
      set?.delete(group);
      if (set?.size === 0) this.byBox.delete(id);
    }
  }

  private iterate(
    filter: EventFilter,
    startsAfter: number,
    bufferSize: number,
    onOverflow?: (error: SlowConsumerError) => void,
    replaying = false,
  ): { events: AsyncIterableIterator<LiveEvent>; replayed: () => number | undefined } {
    const buffer: LiveEvent[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    let done = false;
    /** Events were dropped while replaying: the replay must go on past the boundary. */
    let lapped = false;
    const member: Member = {
      startsAfter,
      push: (event) => {
        if (lapped) return;
        if (buffer.length >= bufferSize) {
          buffer.length = 0;
          if (replaying) {
            lapped = true;
            return;
          }
          const error = new SlowConsumerError(bufferSize);
          failure = error;
          this.leave(group, member);
          onOverflow?.(error);
        } else buffer.push(event);
        wake?.();
      },
    };
    const group = this.join(filter, member);
    const finish = () => {
      done = true;
      this.leave(group, member);
      wake?.();
    };
    const replayed = (): number | undefined => {
      if (!lapped) {
        replaying = false;
        return undefined;
      }
      lapped = false;
      member.startsAfter = Math.max(this.delivered, this.committedUpTo);
      return member.startsAfter;
    };
    const events: AsyncIterableIterator<LiveEvent> = {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next(): Promise<IteratorResult<LiveEvent>> {
        for (;;) {
          if (failure) {
            const error = failure;
            failure = undefined;
            finish();
            throw error;
          }
          const event = buffer.shift();
          if (event) return { value: event, done: false };
          if (done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
      async return(): Promise<IteratorResult<LiveEvent>> {
        finish();
        return { value: undefined, done: true };
      },
    };
    return { events, replayed };
  }

  /** Status event rows (snake_case, as selected) with their device and box; rows of deleted boxes are dropped. */
  async withDetails(rows: readonly StatusEventRecord[]): Promise<LiveEvent[]> {
    if (rows.length === 0) return [];
    const deviceIds = [...new Set(rows.map((r) => r.device_id).filter((id): id is number => id !== null))];
    const boxIds = [...new Set(rows.map((r) => r.box_id))];
    const [deviceRows, boxRows] = await Promise.all([
      deviceIds.length
        ? selectRows<Device>(this.pool, sql`select ${fieldsOf(devices)} from devices where id = any(${sql.param(deviceIds)}::int4[])`)
        : Promise.resolve([]),
      selectRows<Box>(this.pool, sql`select ${fieldsOf(boxes)} from boxes where id = any(${sql.param(boxIds)}::int4[])`),
    ]);
    const deviceById = new Map(deviceRows.map((d) => [d.id, d]));
    const boxById = new Map(boxRows.map((b) => [b.id, b]));
    const events: LiveEvent[] = [];
    for (const r of rows) {
      const box = boxById.get(r.box_id);
      if (!box) continue; // deleted together with its history since
      events.push({
        id: r.id,
        boxId: r.box_id,
        deviceId: r.device_id,
        fromStatus: r.from_status,
        toStatus: r.to_status,
        at: r.at,
        device: r.device_id === null ? null : (deviceById.get(r.device_id) ?? null),
        box,
      });
    }
    return events;
  }

  /** Reads and delivers everything after the last delivered id; one reader at a time. */
  private catchUp(): void {
    if (this.stopped) return;
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = this.readNewEvents()
      .catch((error) => this.log.warn({ err: (error as Error).message }, 'reading new events failed; will retry'))
      .finally(() => {
        this.fetching = undefined;
        if (this.again) {
          this.again = false;
          this.catchUp();
        }
      });
  }

  /**
   * Hands `event` to every member whose group accepts it: the filter is asked once per group. Between
   * slices of members the loop runs its I/O, so a broadcast never holds ingest up for all of its length.
   * A member who joins meanwhile starts after this event (its replay covers it).
   */
  private async fanOut(event: LiveEvent): Promise<void> {
    let handed = 0;
    const visit = async (groups: Iterable<FilterGroup> | undefined) => {
      if (!groups) return;
      for (const group of [...groups]) {
        if (!group.filter.accepts(event)) continue;
        for (const member of [...group.members]) {
          if (event.id <= member.startsAfter || !group.members.has(member)) continue;
          member.push(event);
          if (++handed % FANOUT_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    };
    await visit(this.anyBox);
    await visit(this.byBox.get(event.boxId));
  }

  private async readNewEvents(): Promise<void> {
    for (;;) {
      const { rows } = await run<StatusEventRecord>(
        this.pool,
        sql`select id, box_id, device_id, from_status, to_status, at from status_events
            where id > ${this.delivered} order by id limit ${this.pageSize}`,
        'hub_select_after',
      );
      if (rows.length === 0) return;
      const events = await this.withDetails(rows);
      for (const event of events) {
        this.delivered = event.id;
        await this.fanOut(event);
      }
      this.delivered = Math.max(this.delivered, rows[rows.length - 1]!.id);
      if (rows.length < this.pageSize) return;
    }
  }
}
