import type { ReportWarning } from './errors';
import { mayHoldUnstorableText, parseReportJson } from './json';
import { hashBody, normalizeReport, type Report, type ReportLimits } from './report';

/** Licence keys whose last report is kept, and the body bytes they may hold; the oldest is dropped first. */
const DEFAULT_CAPACITY = { reports: 2048, bytes: 32 * 1024 * 1024 };

/**
 * A body's first bytes find the box whose last body it may equal. Boxes whose bodies open alike only
 * miss this shortcut: a candidate is always compared byte for byte.
 */
const OPENING_BYTES = 64;

const opening = (body: Buffer) => body.toString('latin1', 0, OPENING_BYTES);

/**
 * Turns report bodies into Reports: decode, parse (strict JSON, else JSON5), validate, normalize.
 * A box whose devices did not change sends the same bytes at every report, so the Report of each
 * box's last body is kept and returned again for the same bytes, sparing the parse, the
 * normalization and their garbage; it is found by the body's first bytes and compared byte for
 * byte, so only a body that differs is hashed. Reports are frozen: one may answer many requests.
 */
export class ReportReader {
  /** The last Report read per licence key, by the hash of its body; at most `capacity` of them. */
  private readonly byHash = new Map<string, Report>();
  /** Licence key → hash of its last body, oldest first. */
  private readonly lastHash = new Map<string, string>();
  /** Body bytes of the Reports kept (their parsed form takes about as much again). */
  private bytes = 0;
  /** The first bytes of a box's last body, when stored as received → its licence key. */
  private readonly byOpening = new Map<string, string>();

  constructor(
    private readonly limits: ReportLimits,
    private readonly capacity: { reports: number; bytes: number } = DEFAULT_CAPACITY,
  ) {}

  /** The body's Report, or a ReportError saying what is wrong with it. */
  read(body: Buffer): Report {
    // The box whose last body opened with the same bytes: most often the same body again, compared without hashing.
    const last = this.lastOpeningAlike(body);
    if (last?.rawBody.equals(body)) return last;
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
    // Only a body stored as received (strict, no byte order mark) can be compared byte for byte with the next.
    if (!lenient && report.rawBody === body) this.keepOpening(report);
    return report;
  }

  /** The last Report of the box that `byOpening` names for the body's first bytes, if any. */
  private lastOpeningAlike(body: Buffer): Report | undefined {
    if (body.length < OPENING_BYTES) return undefined;
    const licenseKey = this.byOpening.get(opening(body));
    return licenseKey === undefined ? undefined : this.byHash.get(this.lastHash.get(licenseKey)!);
  }

  /** Makes `report`, its box's last and stored as received, the one found by its body's first bytes. */
  private keepOpening(report: Report): void {
    if (report.rawBody.length < OPENING_BYTES || this.lastHash.get(report.licenseKey) !== report.rawHash) return;
    this.byOpening.set(opening(report.rawBody), report.licenseKey);
  }

  private remember(report: Report): void {
    this.forget(report.licenseKey); // re-added below, as the newest
    if (report.rawBody.length > this.capacity.bytes) return;
    while (this.lastHash.size > 0 && (this.lastHash.size >= this.capacity.reports || this.bytes + report.rawBody.length > this.capacity.bytes)) {
      this.forget(this.lastHash.keys().next().value as string);
    }
    this.lastHash.set(report.licenseKey, report.rawHash);
    this.byHash.set(report.rawHash, report);
    this.bytes += report.rawBody.length;
  }

  private forget(licenseKey: string): void {
    const hash = this.lastHash.get(licenseKey);
    if (hash === undefined) return;
    const report = this.byHash.get(hash)!;
    this.bytes -= report.rawBody.length;
    this.byHash.delete(hash);
    this.lastHash.delete(licenseKey);
    if (report.rawBody.length >= OPENING_BYTES) {
      const key = opening(report.rawBody);
      if (this.byOpening.get(key) === licenseKey) this.byOpening.delete(key);
    }
  }
}
