/**
 * Array parameters in Postgres's binary format, one per column of a batch's rows (`unnest($1::text[],
 * $2::timestamptz[], ...)`). Each value goes in as its bytes: nothing to escape here and no text to
 * parse in Postgres, where rows as one JSON document cost a jsonb parse and a conversion per field.
 * pg sends a Buffer in binary format, so the statement must name each array's type.
 */

const TEXT_OID = 25;
const INT4_OID = 23;
const TIMESTAMPTZ_OID = 1184;
const FLOAT8_OID = 701;
/** Postgres counts time in microseconds from 2000-01-01 UTC. */
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);

/** The array header; the caller writes each element as its byte length (-1: null) and bytes. */
function arrayBuffer(elementOid: number, count: number, hasNulls: boolean, elementBytes: number): { out: Buffer; offset: number } {
  // ndim, has-nulls flag, element type; then, for one dimension, its length and lower bound.
  const header = count === 0 ? 12 : 20;
  const out = Buffer.allocUnsafe(header + 4 * count + elementBytes);
  out.writeInt32BE(count === 0 ? 0 : 1, 0);
  out.writeInt32BE(hasNulls ? 1 : 0, 4);
  out.writeUInt32BE(elementOid, 8);
  if (count > 0) {
    out.writeInt32BE(count, 12);
    out.writeInt32BE(1, 16);
  }
  return { out, offset: header };
}

/** `text[]` from strings or UTF-8 bytes (copied as they are); Postgres checks each is valid UTF-8. */
export function textArray(values: ReadonlyArray<string | Buffer | null>): Buffer {
  let bytes = 0;
  let hasNulls = false;
  for (const value of values) {
    if (value === null) hasNulls = true;
    else bytes += typeof value === 'string' ? Buffer.byteLength(value) : value.length;
  }
  const { out, offset: start } = arrayBuffer(TEXT_OID, values.length, hasNulls, bytes);
  let offset = start;
  for (const value of values) {
    if (value === null) {
      offset = out.writeInt32BE(-1, offset);
      continue;
    }
    const written = typeof value === 'string' ? out.write(value, offset + 4) : value.copy(out, offset + 4);
    out.writeInt32BE(written, offset);
    offset += 4 + written;
  }
  return out;
}

/** `int4[]` from integers in its range, or nulls. */
export function int4Array(values: ReadonlyArray<number | null>): Buffer {
  let count = 0;
  for (const value of values) if (value !== null) count++;
  const { out, offset: start } = arrayBuffer(INT4_OID, values.length, count < values.length, 4 * count);
  let offset = start;
  for (const value of values) {
    if (value === null) {
      offset = out.writeInt32BE(-1, offset);
      continue;
    }
    offset = out.writeInt32BE(4, offset);
    offset = out.writeInt32BE(value, offset);
  }
  return out;
}

/** `timestamptz[]` from Dates (millisecond precision, as Dates have). */
export function timestamptzArray(values: readonly Date[]): Buffer {
  const { out, offset: start } = arrayBuffer(TIMESTAMPTZ_OID, values.length, false, 8 * values.length);
  let offset = start;
  for (const value of values) {
    // Microseconds as a 64-bit integer, in two halves: exact in a double (|µs| < 2^53 for ±285 years), and no BigInt to allocate.
    const micros = (value.getTime() - POSTGRES_EPOCH_MS) * 1000;
    const high = Math.floor(micros / 2 ** 32);
    offset = out.writeInt32BE(8, offset);
    offset = out.writeInt32BE(high, offset);
    offset = out.writeUInt32BE(micros - high * 2 ** 32, offset);
  }
  return out;
}

/** `float8[]` from numbers, or nulls. */
export function float8Array(values: ReadonlyArray<number | null>): Buffer {
  let count = 0;
  for (const value of values) if (value !== null) count++;
  const { out, offset: start } = arrayBuffer(FLOAT8_OID, values.length, count < values.length, 8 * count);
  let offset = start;
  for (const value of values) {
    if (value === null) {
      offset = out.writeInt32BE(-1, offset);
      continue;
    }
    offset = out.writeInt32BE(8, offset);
    offset = out.writeDoubleBE(value, offset);
  }
  return out;
}
