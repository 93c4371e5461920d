import type pg from 'pg';
import { generateSecret, INGEST_TOKEN_PREFIX } from '../auth/tokens';
import { inTransaction, run, sql } from '../db/sql';
import { redactIngestSecrets, replaceIngestTokens } from './ingest-tokens';

// A box's login (GET /BoxLogin?dev_sno=<key>&device_sn=<serial>): the first login of a licence key
// binds it to the box's hardware serial; the reply tells the box where and how often to report.

/** Longest hardware serial taken (the vendor's are about 20 characters). */
export const MAX_HARDWARE_SERIAL_LENGTH = 128;
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Half of a UTF-16 pair without the other (possible in a JSON body's escapes): no text a box sends. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why `serial` cannot be a hardware serial, or undefined when it can (login and registerBox/rebindBoxHardware check the same). */
export function hardwareSerialProblem(serial: string): string | undefined {
  if (serial === '') return 'is empty';
  if (serial.length > MAX_HARDWARE_SERIAL_LENGTH) return `is longer than ${MAX_HARDWARE_SERIAL_LENGTH} characters`;
  if (serial !== serial.trim()) return 'has leading or trailing spaces';
  if (UNPRINTABLE.test(serial) || LONE_SURROGATE.test(serial)) return 'has control characters or broken Unicode';
  return undefined;
}

export interface BoxLoginRequest {
  licenseKey: string;
  hardwareSerial: string;
  address: string | null;
  /** `…/DeviceStatus` as the box reaches this gateway. */
  ingestUrl: string;
  /** INGEST_POLICY=token: the URL carries a new secret of the box's, and its older ones stop working. */
  withSecret: boolean;
  /** The period given when the box has none configured. */
  defaultReportPeriodSeconds: number;
}

export type BoxLoginOutcome =
  | { kind: 'ok'; boxId: number; monitorUrl: string; reportPeriodSeconds: number }
  | { kind: 'unknown_key' }
  | { kind: 'bound_elsewhere' };

/**
 * One transaction: the binding, the login's time and address, the monitor settings the box is given
 * (so offline detection expects its period) and, with a secret, the box's only ingest secret. The
 * update's condition is the binding rule: of two first logins with different serials the second waits
 * for the first's row lock, then finds the key bound and changes nothing.
 */
export function loginBox(pool: pg.Pool, request: BoxLoginRequest): Promise<BoxLoginOutcome> {
  const secret = request.withSecret ? generateSecret(INGEST_TOKEN_PREFIX) : undefined;
  const monitorUrl = secret ? `${request.ingestUrl}/${secret}` : request.ingestUrl;
  return inTransaction(pool, async (client) => {
    const {
      rows: [box],
    } = await run<{ id: number; reportPeriodSeconds: number }>(
      client,
      sql`update boxes as b set
            hardware_serial = ${request.hardwareSerial},
            hardware_bound_at = coalesce(b.hardware_bound_at, now()),
            last_login_at = now(),
            last_login_address = ${request.address},
            report_period_seconds = coalesce(b.report_period_seconds, ${request.defaultReportPeriodSeconds}),
            monitor_url = ${redactIngestSecrets(monitorUrl)}
          where b.license_key = ${request.licenseKey} and b.removed_at is null
            and (b.hardware_serial is null or b.hardware_serial = ${request.hardwareSerial})
          returning b.id, b.report_period_seconds as "reportPeriodSeconds"`,
      'fleetgate_box_login',
    );
    if (!box) {
      const {
        rows: [known],
      } = await run(client, sql`select 1 from boxes where license_key = ${request.licenseKey} and removed_at is null`);
      return known ? { kind: 'bound_elsewhere' } : { kind: 'unknown_key' };
    }
    if (secret) await replaceIngestTokens(client, box.id, secret);
    return { kind: 'ok', boxId: box.id, monitorUrl, reportPeriodSeconds: box.reportPeriodSeconds };
  });
}
