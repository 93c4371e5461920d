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
