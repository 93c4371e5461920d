import { sql, type SQL } from '../../db/sql';
import { int4Array, textArray, timestamptzArray } from '../binary-arrays';
import type { Report } from '../report';

/**
 * A report's fields in both box updates, in this order, each sent as one array parameter of its type
 * and read back as `v.<name>` (see reportValues). `gateway` and `gateway_ext_data` come as JSON text;
 * `body` is null when the stored body is the report's already.
 */
const REPORT_FIELDS = [
  ['last_report_at', 'timestamptz'],
  ['address', 'text'],
  ['reports', 'int4'],
  ['last_report_hash', 'text'],
  ['devices_hash', 'text'],
  ['report_format', 'text'],
  ['name', 'text'],
  ['gateway', 'text'],
  ['gateway_ext_data', 'text'],
  ['body', 'text'],
] as const;
type ReportField = (typeof REPORT_FIELDS)[number][0];

/** The names of REPORT_FIELDS, for the column list of `unnest(...) as v(...)`. */
export const REPORT_FIELD_NAMES = sql.raw(REPORT_FIELDS.map(([name]) => name).join(', '));

/**
 * Reports' fields for a box update, a column each. Values go straight into their columns: no row
 * object per report, which at thousands of reports a second is garbage for the collector to sweep.
 */
export class ReportColumns {
  private readonly lastReportAt: Date[] = [];
  private readonly address: Array<string | null> = [];
  private readonly reports: number[] = [];
  private readonly lastReportHash: string[] = [];
  private readonly devicesHash: string[] = [];
  private readonly reportFormat: string[] = [];
  private readonly name: Array<string | null> = [];
  private readonly gateway: Array<string | null> = [];
  private readonly gatewayExtData: Array<string | null> = [];
  private readonly body: Array<Buffer | null> = [];

  /**
   * `withBody`: the report's body differs from the stored one, so it and the fields read from it
   * (format, name, gateway data) are written; otherwise they stay as stored.
   */
  add(report: Report, at: Date, address: string | null, reports: number, withBody: boolean): void {
    this.lastReportAt.push(at);
    this.address.push(address);
    this.reports.push(reports);
    this.lastReportHash.push(report.rawHash);
    this.devicesHash.push(report.devicesHash);
    this.reportFormat.push(report.format);
    this.name.push(report.boxName);
    this.gateway.push(withBody && report.gateway ? JSON.stringify(report.gateway) : null);
    this.gatewayExtData.push(withBody && report.gatewayExtData ? JSON.stringify(report.gatewayExtData) : null);
    this.body.push(withBody ? report.rawBody : null);
  }

  /** The columns as typed array parameters, comma-separated, in the order of REPORT_FIELDS. */
  arrays(): SQL {
    const columns: Record<ReportField, Buffer> = {
      last_report_at: timestamptzArray(this.lastReportAt),
      address: textArray(this.address),
      reports: int4Array(this.reports),
      last_report_hash: textArray(this.lastReportHash),
      devices_hash: textArray(this.devicesHash),
      report_format: textArray(this.reportFormat),
      name: textArray(this.name),
      gateway: textArray(this.gateway),
      gateway_ext_data: textArray(this.gatewayExtData),
      body: textArray(this.body),
    };
    return sql.join(REPORT_FIELDS.map(([name, type]) => sql`${columns[name]}::${sql.raw(type)}[]`), sql`, `);
  }
}
