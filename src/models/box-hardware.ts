import type pg from 'pg';
import { inTransaction, run, sql } from '../db/sql';
import { insertConfigChange, type ConfigChangeRow } from './box-config';
import { boxColumns, type BoxRow } from './boxes';

// An operator's change of the hardware a licence key is bound to (a replaced box), kept in the box's
// audit trail like a call to the box: action `rebind_hardware`, nothing sent, applied at once.

export interface RebindRequest {
  boxId: number;
  /** The serial the key is bound to from now on; null unbinds it (the next login binds). */
  hardwareSerial: string | null;
  requestedBy: string | null;
}

/** The box as it now is and the audit row, committed together; undefined when there is no such listed box. */
export function rebindBoxHardware(pool: pg.Pool, request: RebindRequest): Promise<{ box: BoxRow; change: ConfigChangeRow } | undefined> {
  return inTransaction(pool, async (client) => {
    const {
      rows: [before],
    } = await run<{ hardwareSerial: string | null }>(
      client,
      sql`select hardware_serial as "hardwareSerial" from boxes where id = ${request.boxId} and removed_at is null for update`,
    );
    if (!before) return undefined;
    const requestedAt = new Date();
    const {
      rows: [box],
    } = await run<BoxRow>(
      client,
      sql`update boxes as b set hardware_serial = ${request.hardwareSerial},
            hardware_bound_at = case when ${request.hardwareSerial}::text is null then null else ${requestedAt}::timestamptz end
          where b.id = ${request.boxId} returning ${boxColumns()}`,
    );
    const change = await insertConfigChange(client, {
      boxId: request.boxId,
      requestedBy: request.requestedBy,
      requestedAt,
      request: { hardwareSerial: { from: before.hardwareSerial, to: request.hardwareSerial } },
      target: null,
      outcome: 'applied',
      httpStatus: null,
      response: null,
      errorCode: null,
      errorMessage: null,
      durationMs: 0,
      action: 'rebind_hardware',
    });
    return { box: box!, change };
  });
}
