import type pg from 'pg';

// Boxes, devices and channels written straight to the tables, for the evaluator's unit-level tests.

export async function insertBox(pool: pg.Pool, fields: { status?: 'online' | 'offline'; statusSince?: Date; extData?: Record<string, unknown>; lastReportAt?: Date } = {}) {
  const { rows } = await pool.query<{ id: number }>(
    `insert into boxes (license_key, name, status, status_since, gateway_ext_data, last_report_at, first_report_at)
     values ($1, 'gate', $2, $3, $4, $5, $5) returning id`,
    [`K-${Math.random().toString(36).slice(2)}`, fields.status ?? 'online', fields.statusSince ?? new Date(), fields.extData ?? null, fields.lastReportAt ?? new Date()],
  );
  return rows[0]!.id;
}

export async function insertDevice(pool: pg.Pool, boxId: number, fields: { status?: 'online' | 'offline'; statusSince?: Date; type?: string; removedAt?: Date } = {}) {
  const { rows } = await pool.query<{ id: number }>(
    `insert into devices (box_id, external_id, name, type, status, status_since, first_seen_at, updated_at, removed_at)
     values ($1, $2, 'cam', $3, $4, $5, now(), now(), $6) returning id`,
    [boxId, `cam-${Math.random().toString(36).slice(2)}`, fields.type ?? 'rtsp', fields.status ?? 'online', fields.statusSince ?? new Date(), fields.removedAt ?? null],
  );
  return rows[0]!.id;
}

export async function insertChannel(pool: pg.Pool, notifyAcknowledged = false) {
  const { rows } = await pool.query<{ id: number }>(
    `insert into webhook_channels (name, url, secret, notify_acknowledged) values ('ops', 'http://127.0.0.1:9/', 'whsec_test', $1) returning id`,
    [notifyAcknowledged],
  );
  return rows[0]!.id;
}

export interface AlertRow {
  id: number;
  state: string;
  severity: string;
  value: number | null;
  condition_since: Date;
  fires_at: Date;
  fired_at: Date;
  resolved_at: Date | null;
  resolution: string | null;
  subject: string;
}

export async function alertsOf(pool: pg.Pool, ruleId: number): Promise<AlertRow[]> {
  const { rows } = await pool.query<AlertRow>(
    `select id::int, state, severity, value, condition_since, fires_at, fired_at, resolved_at, resolution, subject from alerts where rule_id = $1 order by id`,
    [ruleId],
  );
  return rows;
}

export const seconds = (base: Date, s: number) => new Date(base.getTime() + s * 1000);
