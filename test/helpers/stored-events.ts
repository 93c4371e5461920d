import { graphql } from './graphql';

// What the gateway stored, read through the history query (the admin token): what each subscriber's
// results are checked against.

/** Every field a live test selects, as the admin token reads it (URL credentials in clear). */
export interface StoredEvent {
  id: string;
  cursor: string;
  subject: 'BOX' | 'DEVICE';
  fromStatus: string | null;
  toStatus: string;
  at: string;
  box: { id: string; licenseKey: string };
  device: { id: string; externalId: string; name: string | null; type: string; url: string | null } | null;
}

const STORED = `id cursor subject fromStatus toStatus at box { id licenseKey } device { id externalId name type url }`;

/** The stored events matching `filter` (the history query's StatusEventFilter), in id order, every page. */
export async function storedEvents(baseUrl: string, filter: Record<string, unknown> = {}): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  let after: string | null = null;
  for (;;) {
    const response: { body: { data?: any } } = await graphql<any, unknown>(
      baseUrl,
      `query ($after: String, $filter: StatusEventFilter) {
        statusEvents(first: 200, after: $after, filter: $filter, orderBy: { field: ID, direction: ASC }) { pageInfo { hasNextPage endCursor } edges { node { ${STORED} } } }
      }`,
      { after, filter },
    );
    const page: any = response.body.data?.statusEvents;
    if (!page) throw new Error(`history query failed: ${JSON.stringify(response.body)}`);
    for (const edge of page.edges) events.push(edge.node);
    if (!page.pageInfo.hasNextPage) return events;
    after = page.pageInfo.endCursor;
  }
}

/** The database id inside a StatusEvent's global id. */
export const eventNumber = (id: string): number => Number(Buffer.from(id, 'base64').toString().split(':')[1]);

/**
 * The event a StatusEvent cursor points at. A cursor is opaque: a live event's and the history query's
 * for the same event may differ in bytes (the latter may carry its ordering's value) but name one id.
 */
export function cursorEvent(cursor: string): number {
  const [scope, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, number];
  if (scope !== 'StatusEvent') throw new Error(`not a StatusEvent cursor: ${cursor}`);
  return id;
}

/** `value` with every `cursor` field replaced by the event it points at, so results compare exactly. */
export function withCursorsRead<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (key, field) => (key === 'cursor' && typeof field === 'string' ? { event: cursorEvent(field) } : field)) as T;
}
