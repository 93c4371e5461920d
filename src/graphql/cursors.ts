// Cursors of every list: base64url of a JSON array `[scope, ...values]`, opaque to clients. The scope
// names the list and ordering a cursor was made for, so one of another list or ordering is refused
// instead of misread. No schema types here: the websocket server can import these without the schema.
import type { CursorValue } from '../models/query-parts';
import { badUserInput } from './errors';

export type CursorValueType = 'int' | 'text' | 'timestamptz';
/** A value a cursor may leave out (only at the end). */
export type CursorSlot = CursorValueType | `${CursorValueType}?`;

/** A timestamp as cursors carry it (Postgres's or ISO 8601 text), years 1000 to 9999: what Postgres reads back. */
const TIMESTAMP = /^([1-9]\d{3})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/** A real date and time in that form (Date.parse would take 02-30 as 03-02). */
function isTimestamp(value: string): boolean {
  const match = TIMESTAMP.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
}

export function encodeCursor(scope: string, values: readonly CursorValue[]): string {
  return Buffer.from(JSON.stringify([scope, ...values])).toString('base64url');
}

function malformedCursor(argument: string, why: string) {
  return badUserInput(`\`${argument}\` is not a cursor of this list: ${why}. Use a cursor this list returned with the same orderBy, or omit it to start over.`, {
    argument,
  });
}

/** The values inside a cursor made by `encodeCursor(scope, ...)`, checked against their types. */
export function decodeCursor(cursor: string, scope: string, types: readonly CursorSlot[], argument = 'after'): CursorValue[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw malformedCursor(argument, 'it cannot be decoded');
  }
  if (!Array.isArray(parsed) || typeof parsed[0] !== 'string') throw malformedCursor(argument, 'it cannot be decoded');
  if (parsed[0] !== scope) throw malformedCursor(argument, `it was made for ${JSON.stringify(parsed[0])}, not ${JSON.stringify(scope)}`);
  const required = types.filter((type) => !type.endsWith('?')).length;
  if (parsed.length - 1 < required || parsed.length - 1 > types.length) throw malformedCursor(argument, 'its position is not valid');
  const values = parsed.slice(1) as unknown[];
  types.slice(0, values.length).forEach((slot, i) => {
    const type = slot.replace('?', '') as CursorValueType;
    const value = values[i];
    const ok =
      type === 'int'
        ? Number.isSafeInteger(value) && (value as number) > 0
        : type === 'text'
          ? typeof value === 'string' && value.length <= 10_000 && !value.includes('\u0000')
          : typeof value === 'string' && isTimestamp(value);
    if (!ok) throw malformedCursor(argument, 'its position is not valid');
  });
  return values as CursorValue[];
}


// A status event's cursor is its id, in every ordering of every list of events, and in subscriptions
// that resume from it: `statusEvents(after: cursor)` takes a cursor from a query and the other way round.
// A cursor read from the table also carries the event's time, exactly as stored: a page after it by
// time then starts at that time (only the months from there on are read) without looking the id up
// in every month. A cursor without it (a live event's) is looked up.
export const STATUS_EVENT_CURSOR_SCOPE = 'StatusEvent';
export const STATUS_EVENT_CURSOR_SLOTS: readonly CursorSlot[] = ['int', 'timestamptz?'];

export function encodeStatusEventCursor(id: number, at?: string | null): string {
  return encodeCursor(STATUS_EVENT_CURSOR_SCOPE, at ? [id, at] : [id]);
}

/** The event id inside a status event cursor, or `BAD_USER_INPUT` naming `argument`. */
export function decodeStatusEventCursor(cursor: string, argument = 'after'): number {
  return decodeCursor(cursor, STATUS_EVENT_CURSOR_SCOPE, STATUS_EVENT_CURSOR_SLOTS, argument)[0] as number;
}
