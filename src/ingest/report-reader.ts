import type { ReportWarning } from './errors';
import { fillBodyTemplate, findBodyTemplate, type BodyTemplate } from './body-template';
import { mayHoldUnstorableText, parseReportJson, storableJson } from './json';
import { devicesHash, hashBody, normalizeReport, statusFieldOf, type Report, type ReportLimits, type ReportedDevice, type StatusChanges } from './report';

/** Licence keys whose last report is kept, and the body bytes they may hold; the oldest is dropped first. */
const DEFAULT_CAPACITY = { reports: 2048, bytes: 32 * 1024 * 1024 };

/**
 * A body's first bytes find the box whose last body it may equal, or differ from only in the values
 * of its template (see BodyTemplate; slots in them are not kept). Boxes whose bodies open alike only
 * miss these shortcuts: a candidate is always compared byte for byte.
 */
const OPENING_BYTES = 64;

const opening = (body: Buffer) => body.toString('latin1', 0, OPENING_BYTES);

/**
 * Turns report bodies into Reports: decode, parse (strict JSON, else JSON5), validate, normalize.
 * A box whose devices did not change sends the same bytes at every report, so the Report of each
 * box's last body is kept and returned again for the same bytes, sparing the parse, the
 * normalization and their garbage; it is found by the body's first bytes and compared byte for
 * byte, so only a body that differs is hashed. Most other bodies differ from the box's last only in
 * device statuses and, from an older box, its health figures (`gateway_ext_data`, new at every
 * report): when the rest is the same bytes, only those values are read (see BodyTemplate).
 * Reports are frozen: one may answer many requests.
 */
export class ReportReader {
  /** The last Report read per licence key, by the hash of its body; at most `capacity` of them. */
  private readonly byHash = new Map<string, Report>();
  /** Licence key → hash of its last body, oldest first. */
  private readonly lastHash = new Map<string, string>();
  /** Body bytes of the Reports kept (their parsed form takes about as much again). */
  private bytes = 0;
  /** Where the values that change lie in the last body, per licence key, when that was proven. */
  private readonly templates = new Map<string, BodyTemplate>();
  /** The first bytes of a box's last body, when stored as received → its licence key. */
  private readonly byOpening = new Map<string, string>();

  constructor(
    private readonly limits: ReportLimits,
    private readonly capacity: { reports: number; bytes: number } = DEFAULT_CAPACITY,
  ) {}

  /** The body's Report, or a ReportError saying what is wrong with it. */
  read(body: Buffer): Report {
    // The box whose last body opened with the same bytes: most often the same body again, compared
    // without hashing, or the same but for its device statuses or health figures.
    const last = this.lastOpeningAlike(body);
    if (last?.rawBody.equals(body)) return last;
    const rawHash = hashBody(body);
    const known = this.byHash.get(rawHash) ?? (last && this.withNewValues(last, body, rawHash));
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
    if (!lenient && report.rawBody === body) {
      this.keepOpening(report);
      const parsed = value as Record<string, unknown>; // the object the Report was read from, as it stores the body as received
      const listField = parsed.media_devices !== undefined ? 'media_devices' : 'sub_devices';
      this.keepTemplate(report, findBodyTemplate(body, parsed, listField, (device) => statusFieldOf(device, report.format)));
    }
    return report;
  }

  /** The last Report of the box that `byOpening` names for the body's first bytes, if any. */
  private lastOpeningAlike(body: Buffer): Report | undefined {
    if (body.length < OPENING_BYTES) return undefined;
    const licenseKey = this.byOpening.get(opening(body));
    return licenseKey === undefined ? undefined : this.byHash.get(this.lastHash.get(licenseKey)!);
  }

  /**
   * The Report of a body that differs from `last`, its box's last, only in the values of its template,
   * if it is one: device statuses replaced, the figures parsed alone.
   */
  private withNewValues(last: Report, body: Buffer, rawHash: string): Report | undefined {
    const template = this.templates.get(last.licenseKey);
    const filled = template && fillBodyTemplate(last.rawBody, template, body);
    if (!filled) return undefined;
    let gatewayExtData = last.gatewayExtData;
    if (filled.extDataText !== undefined) {
      let value: unknown;
      try {
        value = JSON.parse(filled.extDataText);
      } catch {
        return undefined;
      }
      // Not an object, strings Postgres would refuse, or nesting too deep: the whole body is read, which says why.
      if (typeof value !== 'object' || value === null || Array.isArray(value) || storableJson(value, true, 1) !== value) return undefined;
      gatewayExtData = value as Record<string, unknown>;
    }
    let devices: ReportedDevice[] = last.devices;
    const changed: Array<StatusChanges['changed'][number]> = [];
    for (const [index, status] of filled.statuses) {
      const previous = devices[index]!;
      if (previous.status === status) continue;
      if (devices === last.devices) devices = [...last.devices];
      devices[index] = Object.freeze({ ...previous, status });
      changed.push({ device: devices[index]!, from: previous.status });
    }
    const report: Report = Object.freeze({
      ...last,
      devices: devices === last.devices ? devices : (Object.freeze(devices) as ReportedDevice[]),
      devicesHash: devices === last.devices ? last.devicesHash : devicesHash(devices),
      gatewayExtData,
      rawBody: body,
      rawHash,
      statusChanges: changed.length > 0 ? Object.freeze({ previousDevicesHash: last.devicesHash, changed: Object.freeze(changed) }) : undefined,
    });
    this.remember(report);
    this.keepOpening(report);
    this.keepTemplate(report, filled.template);
    return report;
  }

  /** Makes `report`, its box's last and stored as received, the one found by its body's first bytes. */
  private keepOpening(report: Report): void {
    if (report.rawBody.length < OPENING_BYTES || this.lastHash.get(report.licenseKey) !== report.rawHash) return;
    this.byOpening.set(opening(report.rawBody), report.licenseKey);
  }

  /** Notes where the values that change lie in the body of `report`, if it is still its box's last. */
  private keepTemplate(report: Report, template: BodyTemplate | undefined): void {
    if (!template || this.lastHash.get(report.licenseKey) !== report.rawHash) return;
    // A slot in the first bytes would change them, and the body would not be found by them anyway.
    const slots = template.slots[0]!.start < OPENING_BYTES ? template.slots.filter((slot) => slot.start >= OPENING_BYTES) : template.slots;
    if (slots.length > 0) this.templates.set(report.licenseKey, slots === template.slots ? template : { slots });
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
    this.templates.delete(licenseKey);
    if (report.rawBody.length >= OPENING_BYTES) {
      const key = opening(report.rawBody);
      if (this.byOpening.get(key) === licenseKey) this.byOpening.delete(key);
    }
  }
}
