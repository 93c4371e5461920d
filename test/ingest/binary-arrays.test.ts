import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float8Array, int4Array, textArray, timestamptzArray } from '../../src/ingest/binary-arrays';
import { createTestDatabase } from '../helpers/database';

// The ingest sends its batches' columns as arrays in Postgres's binary format. Each encoder is read
// back by the real server, which also checks the bytes: a wrong header, length or value fails here.

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let client: pg.Client;

beforeAll(async () => {
  database = await createTestDatabase();
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await database?.drop();
});

/** The array as Postgres reads it, written back as text (one element per row, in order). */
async function readBack(type: string, array: Buffer): Promise<Array<string | null>> {
  const { rows } = await client.query({ text: `select v::text from unnest($1::${type}[]) with ordinality as a(v, n) order by n`, values: [array] });
  return rows.map((r) => r.v as string | null);
}

describe('binary arrays', () => {
  it('int4[]: the whole range, and nulls', async () => {
    const values = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), null, 42, null];
    expect(await readBack('int4', int4Array(values))).toEqual(['0', '1', '-1', '2147483647', '-2147483648', null, '42', null]);
    expect(await readBack('int4', int4Array([]))).toEqual([]);
    expect(await readBack('int4', int4Array([null]))).toEqual([null]);
  });

  it('timestamptz[]: milliseconds exactly, before and long after 2000', async () => {
    await client.query(`set time zone 'UTC'`);
    const dates = [
      new Date('2000-01-01T00:00:00.000Z'),
      new Date('1999-12-31T23:59:59.999Z'),
      new Date('1970-01-01T00:00:00.001Z'),
      new Date('1901-06-15T12:34:56.789Z'),
      new Date('2026-11-22T15:43:42.123Z'),
      new Date('2262-04-11T23:47:16.854Z'),
      new Date('4000-02-29T01:02:03.004Z'),
    ];
    const back = await readBack('timestamptz', timestamptzArray(dates));
    expect(back.map((text) => new Date(text!.replace(' ', 'T').replace(/\+00$/, 'Z')).toISOString())).toEqual(dates.map((d) => d.toISOString()));
  });

  it('float8[]: every double exactly, and nulls', async () => {
    await client.query('set extra_float_digits = 1'); // the shortest text that reads back as the same double
    const values = [0, -0.5, 23.5, 41.2, 1 / 3, Number.MAX_VALUE, -Number.MIN_VALUE, null, 52];
    const back = await readBack('float8', float8Array(values));
    expect(back.map((text) => (text === null ? null : Number(text)))).toEqual(values);
    expect(await readBack('float8', float8Array([]))).toEqual([]);
  });

  it('text[]: strings and UTF-8 bytes as they are, and nulls', async () => {
    const values = ['', 'plain', '摄像头 1号', Buffer.from('{"a":"ü"}'), null, 'x'.repeat(5000)];
    expect(await readBack('text', textArray(values))).toEqual(['', 'plain', '摄像头 1号', '{"a":"ü"}', null, 'x'.repeat(5000)]);
  });
});
