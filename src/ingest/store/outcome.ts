import { ReportError, type ReportWarning } from '../errors';
import { licenseKeyField, maskLicenseKey } from '../license-key';
import type { Report } from '../report';

/** A report waiting in a batch: what arrived, when, and from where. */
export interface ReceivedReport {
  report: Report;
  receivedAt: Date;
  address: string | null;
  /** INGEST_POLICY=registered: refuse the report (403 UNKNOWN_BOX) unless its box exists and is not removed. */
  mustExist?: boolean;
}

/** What the store did with one report; the ingest answers it as the 200 body. */
export interface AppliedReport {
  boxId: number;
  licenseKey: string;
  format: Report['format'];
  devices: number;
  changes: number;
  warnings: ReportWarning[];
}

export function appliedReport(boxId: number, report: Report, changes: number): AppliedReport {
  return { boxId, licenseKey: report.licenseKey, format: report.format, devices: report.devices.length, changes, warnings: report.warnings };
}

/** The report's box does not exist or was removed, and the report may not create or restore it. */
export function unknownBox(report: Report): ReportError {
  return new ReportError(
    403,
    'UNKNOWN_BOX',
    `Licence key ${maskLicenseKey(report.licenseKey)} is not registered; register the box (registerBox) before it reports.`,
    licenseKeyField(report.format),
  );
}

/** The batch failed after some of its reports were committed; those are in `applied`. */
export class PartlyAppliedError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly applied: Map<ReceivedReport, AppliedReport>,
  ) {
    super('batch partly applied', { cause });
  }
}
