import type pg from 'pg';

/** Everything the ingest stores, in a stable order, to show that a refused report changed nothing. */
export async function storedState(sql: pg.Pool) {
  const [boxes, reports, devices, events] = await Promise.all([
    sql.query('select * from boxes order by id'),
    sql.query('select * from box_last_reports order by box_id'),
    sql.query('select * from devices order by id'),
    sql.query('select * from status_events order by id'),
  ]);
  return { boxes: boxes.rows, reports: reports.rows, devices: devices.rows, events: events.rows };
}

/**
 * The rows of `storedState` as Postgres prints them (`row::text`: every column, timestamps to the
 * microsecond, jsonb as stored), with their box ids, for byte-for-byte comparisons of chosen boxes.
 */
export async function storedRowsText(sql: pg.Pool) {
  const read = async (query: string) => (await sql.query<{ box_id: number; row: string }>(query)).rows;
  const [boxes, reports, devices, events] = await Promise.all([
    read('select t.id as box_id, t::text as row from boxes t order by t.id'),
    read('select t.box_id, t::text as row from box_last_reports t order by t.box_id'),
    read('select t.box_id, t::text as row from devices t order by t.id'),
    read('select t.box_id, t::text as row from status_events t order by t.id'),
  ]);
  return { boxes, reports, devices, events };
}
