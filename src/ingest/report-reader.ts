import type { ReportWarning } from './errors';
import { mayHoldUnstorableText, parseReportJson } from './json';
import { hashBody, normalizeReport, type Report, type ReportLimits } from './report';

/** Licence keys whose last report is kept; the oldest is dropped first. */
const DEFAULT_CAPACITY = 2048;

/**
 * Turns report bodies into Reports: decode, parse (strict JSON, else JSON5), validate, normalize.
 * A box whose devices did not change sends the same bytes at every report, so the Report of each
 * box's last body is kept and returned again for the same bytes, sparing the parse, the
 * normalization and their garbage. Reports are frozen: one may answer many requests.
 */
export class ReportReader {
  /** The last Report read per licence key, by the hash of its body; at most `capacity` of them. */
  private readonly byHash = new Map<string, Report>();
  /** Licence key → hash of its last body, oldest first. */
  private readonly lastHash = new Map<string, string>();

  constructor(
    private readonly limits: ReportLimits,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  /** The body's Report, or a ReportError saying what is wrong with it. */
  read(body: Buffer): Report {
    const rawHash = hashBody(body);
    const known = this.byHash.get(rawHash);
    if (known) return known;
    const warnings: ReportWarning[] = [];
    // A UTF-8 byte order mark (some HTTP clients write one) is not part of the JSON text.
    const decoded = body.toString('utf8');
    const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
    const { value, lenient } = parseReportJson(text);
    if (lenient) {
      warnings.push({ code: 'LENIENT_JSON', message: 'The body is not strict JSON; it was read as JSON5.', path: '' });
    }
    const report = normalizeReport(value, body, this.limits, warnings, lenient ? undefined : text, lenient || mayHoldUnstorableText(text), rawHash);
    Object.freeze(report.warnings);
    Object.freeze(report.devices);
    this.remember(Object.freeze(report));
    return report;
  }

  private remember(report: Report): void {
    const previous = this.lastHash.get(report.licenseKey);
    if (previous !== undefined) {
      this.byHash.delete(previous);
      this.lastHash.delete(report.licenseKey); // re-added below, as the newest
    } else if (this.lastHash.size >= this.capacity) {
      const [oldestKey, oldestHash] = this.lastHash.entries().next().value as [string, string];
      this.lastHash.delete(oldestKey);
      this.byHash.delete(oldestHash);
    }
    this.lastHash.set(report.licenseKey, report.rawHash);
    this.byHash.set(report.rawHash, report);
  }
}
