import type pg from 'pg';
import type { BoxConfigChange, ConfigAction, ConfigOutcome } from '../db/schema';
import { inTransaction, run, selectRows, sql, type SQL } from '../db/sql';
import { boxColumns, type BoxRow } from './boxes';
import { pagePerParentQuery, type Ordering, type PageWindow } from './query-parts';
import { storableJson, storableText, storableTextOrNull } from './storable-text';

/** One attempt to change a box's settings, as the audit trail keeps it. */
export type ConfigChangeRow = BoxConfigChange;

/** What a configureBox call needs to know of a box: where its REST API is. */
export interface BoxApiLocation {
  id: number;
  licenseKey: string;
  /** Source address of its last report. */
  address: string | null;
  /** Set by an operator (registerBox, updateBox); wins over `address`. */
  apiAddress: string | null;
  /** Set by an operator; else the vendor's 5555. */
  apiPort: number | null;
}

/** The box's API location, or undefined when there is no such box or it was removed. */
export async function boxApiLocation(pool: pg.Pool, boxId: number): Promise<BoxApiLocation | undefined> {
  const { rows } = await run<BoxApiLocation>(
    pool,
    sql`select id, license_key as "licenseKey", address, api_address as "apiAddress", api_port as "apiPort"
        from boxes where id = ${boxId} and removed_at is null`,
  );
  return rows[0];
}

/** An audit row to write; `requestedAt` is when the box was called (or the call refused). */
export interface NewConfigChange {
  boxId: number;
  requestedBy: string | null;
  requestedAt: Date;
  /** The `config_dict` sent, or for an invalid attempt what was asked for. */
  request: Record<string, unknown>;
  /** `address:port` called; null when nothing was sent. */
  target: string | null;
  outcome: ConfigOutcome;
  httpStatus: number | null;
  /** The box's answer: its parsed JSON; null when there was none or it was not the box protocol. */
  response: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  durationMs: number;
  /** What was asked of the box; default `setconfigs`. */
  action?: ConfigAction;
  /** The rollout the call is part of; default none. */
  rolloutId?: number | null;
}

/** The two monitor settings the box row keeps, when the box is known to have taken them. */
export interface AppliedMonitorSettings {
  monitorUrl?: string;
  reportPeriodSeconds?: number;
}

const CHANGE_COLUMNS = sql.raw(
  `c.id, c.box_id as "boxId", c.requested_by as "requestedBy", c.requested_at as "requestedAt", c.request, c.target,
   c.outcome, c.http_status as "httpStatus", c.response, c.error_code as "errorCode", c.error_message as "errorMessage",
   c.duration_ms as "durationMs", c.action, c.rollout_id as "rolloutId"`,
);

/**
 * Writes the audit row (its text made storable: NUL and lone surrogates kept as `\u0000`-style
 * escapes, see storable-text.ts, so whatever a box answered is recorded) and, in the same transaction, the monitor settings the box now holds (the
 * offline sweep reads `report_period_seconds` on its next round). Returns the row and the box as
 * it now is; undefined when the box was removed while it was being called.
 */
export async function recordConfigChange(
  pool: pg.Pool,
  change: NewConfigChange,
  applied: AppliedMonitorSettings = {},
): Promise<{ change: ConfigChangeRow; box: BoxRow } | undefined> {
  const sets: SQL[] = [];
  if (applied.monitorUrl !== undefined) sets.push(sql`monitor_url = ${storableText(applied.monitorUrl)}`);
  if (applied.reportPeriodSeconds !== undefined) sets.push(sql`report_period_seconds = ${applied.reportPeriodSeconds}`);
  return inTransaction(pool, async (client) => {
    // The row lock (update, or `for no key update` like ingest) keeps a concurrent removal out until commit.
    const {
      rows: [box],
    } =
      sets.length > 0
        ? await run<BoxRow>(client, sql`update boxes as b set ${sql.join(sets, sql`, `)} where b.id = ${change.boxId} and b.removed_at is null returning ${boxColumns()}`)
        : await run<BoxRow>(client, sql`select ${boxColumns()} from boxes b where b.id = ${change.boxId} and b.removed_at is null for no key update`);
    if (!box) return undefined; // nothing was written: committing the empty transaction is its end
    return { change: await insertConfigChange(client, change), box };
  });
}

/** Inserts the audit row `change` (its text made storable) on `client`, inside the caller's transaction. */
export async function insertConfigChange(client: pg.PoolClient, change: NewConfigChange): Promise<ConfigChangeRow> {
  const {
    rows: [row],
  } = await run<ConfigChangeRow>(
    client,
    sql`insert into box_config_changes as c
          (box_id, requested_by, requested_at, request, target, outcome, http_status, response, error_code, error_message, duration_ms, action, rollout_id)
        values (${change.boxId}, ${storableTextOrNull(change.requestedBy)}, ${change.requestedAt}, ${JSON.stringify(storableJson(change.request))}::jsonb,
                ${storableTextOrNull(change.target)}, ${change.outcome}, ${change.httpStatus},
                ${change.response === undefined || change.response === null ? null : JSON.stringify(storableJson(change.response))}::jsonb,
                ${storableTextOrNull(change.errorCode)}, ${storableTextOrNull(change.errorMessage)}, ${Math.max(0, Math.round(change.durationMs))},
                ${change.action ?? 'setconfigs'}, ${change.rolloutId ?? null})
        returning ${CHANGE_COLUMNS}`,
  );
  return row!;
}

// ---------------------------------------------------------------------------------------------
// Reads for the GraphQL API: a box's attempts newest first, and attempts by id.

/** Audit rows of removed boxes are hidden with them. */
const CHANGES_OF_LISTED_BOXES = sql`box_config_changes c join boxes b on b.id = c.box_id and b.removed_at is null`;

/** Newest first (ids grow with time); `descending: false` for oldest first. */
export function configChangeOrdering(descending: boolean): Ordering {
  return { key: null, id: sql`c.id`, idType: 'int8', descending };
}

export function configChangesPagePerBox(pool: pg.Pool, boxIds: readonly number[], ordering: Ordering, window: PageWindow): Promise<ConfigChangeRow[]> {
  return selectRows<ConfigChangeRow>(
    pool,
    pagePerParentQuery({ parentIds: boxIds, parentColumn: sql`c.box_id`, columns: CHANGE_COLUMNS, from: CHANGES_OF_LISTED_BOXES, where: [], ordering, window }),
  );
}

export async function countConfigChangesPerBox(pool: pg.Pool, boxIds: readonly number[]): Promise<Map<number, number>> {
  const rows = await selectRows<{ boxId: number; count: number }>(
    pool,
    sql`select c.box_id as "boxId", count(*)::int as count from ${CHANGES_OF_LISTED_BOXES}
        where c.box_id = any(${sql.param(boxIds)}::int4[]) group by c.box_id`,
  );
  return new Map(rows.map((r) => [r.boxId, r.count]));
}

export function configChangesByIds(pool: pg.Pool, ids: readonly number[]): Promise<ConfigChangeRow[]> {
  return selectRows<ConfigChangeRow>(pool, sql`select ${CHANGE_COLUMNS} from ${CHANGES_OF_LISTED_BOXES} where c.id = any(${sql.param(ids)}::int8[])`);
}
