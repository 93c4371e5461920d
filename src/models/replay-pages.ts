import type pg from 'pg';
import type { LiveEvent, StatusEventRecord } from '../live/event-hub';
import { statusEventsBetween, type StatusEventFilter } from './status-events';

/** In this process: pages read from the table, and pages served to a replay from another's read. */
export const replayStats = { reads: 0, served: 0 };

/** One read of stored events: every event of its filter with `from < id <= to`, with box and device. */
interface Page {
  from: number;
  to: number;
  events: LiveEvent[];
  usedAt: number;
}

/** A read under way: it covers ids after `from`, up to an end known when it is done. */
interface Reading {
  from: number;
  done: Promise<unknown>;
}

export interface ReplayPagesOptions {
  /** Rows per read. Default 500. */
  pageSize?: number;
  /** Events kept in all pages together; the least recently used pages go first. Default 20,000. */
  maxEvents?: number;
  /** A page unused this long is dropped. Default 10,000 ms. */
  keepMs?: number;
}

/**
 * Stored status events for subscriptions resuming from a cursor (`statusEvents(after:)`), read a page
 * at a time and shared: clients replaying overlapping ranges with the same filter read each page of
 * the table once. After a gateway restart every dashboard reconnects at once with a cursor a little
 * behind the others'; the first client's read serves all whose cursor falls in its range, and every
 * client gets the same event objects, so their executions are shared too (see shared-execution.ts).
 *
 * A page read for a client is `(after, to]` where `to` is the last row read (or, for a short page, the
 * end the client asked for): complete for that range, whichever client asks next. Reads under way are
 * joined, not repeated, by any client whose cursor they cover.
 */
export class ReplayPages {
  private readonly pages = new Map<string, Page[]>();
  private readonly reading = new Map<string, Reading[]>();
  private events = 0;
  private readonly pageSize: number;
  private readonly maxEvents: number;
  private readonly keepMs: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly withDetails: (rows: readonly StatusEventRecord[]) => Promise<LiveEvent[]>,
    options: ReplayPagesOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 500;
    this.maxEvents = options.maxEvents ?? 20_000;
    this.keepMs = options.keepMs ?? 10_000;
  }

  /**
   * Events matching `filter` with `after < id <= to`, in id order, for some `to <= upTo` (`to === upTo`
   * when the range is done); the caller continues from `to`.
   */
  async next(filter: StatusEventFilter, after: number, upTo: number): Promise<{ events: readonly LiveEvent[]; to: number }> {
    const key = JSON.stringify(filter);
    for (;;) {
      const page = this.pages.get(key)?.find((p) => p.from <= after && after < p.to);
      if (page) {
        page.usedAt = Date.now();
        replayStats.served++;
        const to = Math.min(page.to, upTo);
        return { events: page.events.filter((e) => e.id > after && e.id <= to), to };
      }
      const joined = this.reading.get(key)?.find((r) => r.from <= after);
      if (!joined) break;
      // Its page may end before `after`, or the read fail: then look again (another read, or one's own).
      await joined.done.catch(() => undefined);
    }
    return this.read(key, filter, after, upTo);
  }

  private async read(key: string, filter: StatusEventFilter, after: number, upTo: number): Promise<{ events: readonly LiveEvent[]; to: number }> {
    const work = (async () => {
      replayStats.reads++;
      const rows = await statusEventsBetween(this.pool, filter, after, upTo, this.pageSize);
      const to = rows.length < this.pageSize ? upTo : rows[rows.length - 1]!.id;
      return { events: await this.withDetails(rows), to };
    })();
    const reading: Reading = { from: after, done: work };
    let readings = this.reading.get(key);
    if (!readings) this.reading.set(key, (readings = []));
    readings.push(reading);
    try {
      const result = await work;
      if (result.to > after) this.keep(key, { from: after, to: result.to, events: result.events, usedAt: Date.now() });
      return result;
    } finally {
      readings.splice(readings.indexOf(reading), 1);
      if (readings.length === 0) this.reading.delete(key);
    }
  }

  private keep(key: string, page: Page): void {
    this.forgetOld();
    let pages = this.pages.get(key);
    if (!pages) this.pages.set(key, (pages = []));
    pages.push(page);
    this.events += page.events.length;
  }

  /** Drops pages unused for `keepMs`, then the least recently used ones while over `maxEvents`. */
  private forgetOld(): void {
    const now = Date.now();
    const all = [...this.pages].flatMap(([key, pages]) => pages.map((page) => ({ key, page })));
    all.sort((a, b) => a.page.usedAt - b.page.usedAt);
    for (const { key, page } of all) {
      if (now - page.usedAt < this.keepMs && this.events <= this.maxEvents) break;
      const pages = this.pages.get(key)!;
      pages.splice(pages.indexOf(page), 1);
      if (pages.length === 0) this.pages.delete(key);
      this.events -= page.events.length;
    }
  }
}
