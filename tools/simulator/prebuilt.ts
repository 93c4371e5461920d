import { EXT_DATA_KEYS, type BoxHealth, type DeviceStatus, type SimulatedBox } from './fleet';

/** Marks a value to be cut out of the serialized report; no real field contains `@@`. */
const SLOT_MARK = /"@@slot(\d+)@@"/g;

/** `"offline"` is 9 bytes; `"online"` gets one trailing space, which JSON allows after a value. */
const STATUS_WIDTH = 9;
/** Health figures have one decimal and stay below 100 (`99.9`); one spare byte. */
const NUMBER_WIDTH = 5;

type HealthField = keyof BoxHealth;
const HEALTH_FIELDS = Object.keys(EXT_DATA_KEYS) as HealthField[];

function writePadded(target: Buffer, offset: number, width: number, text: string): void {
  if (text.length > width) throw new Error(`"${text}" does not fit a ${width}-byte slot`);
  target.write(text.padEnd(width, ' '), offset, width, 'latin1');
}

function statusText(status: DeviceStatus): string {
  return `"${status}"`;
}

/**
 * A box's report serialized once, with fixed-width slots for the values that change between reports
 * (device statuses, an older box's health figures, `null` while one is silent). A load generator then pays a few byte writes and
 * one copy per report instead of a `JSON.stringify`, so it is not the bottleneck of a benchmark.
 */
export class PrebuiltReport {
  readonly box: SimulatedBox;
  private readonly template: Buffer;
  private readonly statusOffsets: number[] = [];
  private readonly healthOffsets = new Map<HealthField, number>();

  constructor(box: SimulatedBox) {
    this.box = box;
    const report = box.buildReport() as unknown as Record<string, unknown>;
    const marked = this.markSlots(report);
    this.template = this.compile(JSON.stringify(marked));
    this.writeSlots(box.devices.map((_, i) => i));
  }

  /** A copy of the report with every changing value replaced by a slot marker. */
  private markSlots(report: Record<string, unknown>): Record<string, unknown> {
    const statusKey = this.box.format === 'new' ? 'media_device_status' : 'ep_status';
    const listKey = this.box.format === 'new' ? 'media_devices' : 'sub_devices';
    let slot = 0;
    const devices = (report[listKey] as Array<Record<string, unknown>>).map((device) => ({
      ...device,
      [statusKey]: `@@slot${slot++}@@`,
    }));
    const marked: Record<string, unknown> = { ...report, [listKey]: devices };
    if (this.box.format === 'old') {
      const ext = { ...(report.gateway_ext_data as Record<string, unknown>) };
      for (const field of HEALTH_FIELDS) ext[EXT_DATA_KEYS[field]] = `@@slot${slot++}@@`;
      marked.gateway_ext_data = ext;
    }
    return marked;
  }

  /** Turns the marked JSON into bytes, noting the byte offset of each slot (names are UTF-8, so not char offsets). */
  private compile(json: string): Buffer {
    const parts: Buffer[] = [];
    let bytes = 0;
    let last = 0;
    const deviceCount = this.box.devices.length;
    for (const match of json.matchAll(SLOT_MARK)) {
      const before = Buffer.from(json.slice(last, match.index), 'utf8');
      parts.push(before);
      bytes += before.length;
      const slot = Number(match[1]);
      const width = slot < deviceCount ? STATUS_WIDTH : NUMBER_WIDTH;
      if (slot < deviceCount) this.statusOffsets.push(bytes);
      else this.healthOffsets.set(HEALTH_FIELDS[slot - deviceCount] as HealthField, bytes);
      parts.push(Buffer.alloc(width, ' '));
      bytes += width;
      last = match.index + match[0].length;
    }
    parts.push(Buffer.from(json.slice(last), 'utf8'));
    return Buffer.concat(parts);
  }

  private writeSlots(deviceIndexes: number[]): void {
    for (const i of deviceIndexes) {
      const device = this.box.devices[i];
      const offset = this.statusOffsets[i];
      if (device === undefined || offset === undefined) continue;
      writePadded(this.template, offset, STATUS_WIDTH, statusText(device.status));
    }
    for (const [field, offset] of this.healthOffsets) {
      // A figure the box cannot read now: its slot cannot go, so it says null, which the gateway reads as absent too.
      writePadded(this.template, offset, NUMBER_WIDTH, this.box.silentFigures.has(field) ? 'null' : String(this.box.health[field]));
    }
  }

  /** Moves the box one report forward (see `SimulatedBox.advance`) and returns the flipped device indexes. */
  advance(flipRate: number): number[] {
    const flipped = this.box.advance(flipRate);
    this.writeSlots(flipped);
    this.box.reportCount++;
    return flipped;
  }

  /** The current report body; a copy, so a request in flight never sees a later write. */
  body(): Buffer {
    return Buffer.from(this.template);
  }
}

/**
 * Report bodies for a whole fleet, box after box round-robin, each device changing with probability
 * `changeRate` per report. The first pass sends every box's initial state unchanged.
 */
export class ReportStream {
  private readonly reports: PrebuiltReport[];
  private cursor = 0;
  /** Device status changes carried by the bodies handed out so far. */
  changes = 0;

  constructor(
    boxes: SimulatedBox[],
    private readonly changeRate: number,
  ) {
    if (boxes.length === 0) throw new Error('ReportStream needs at least one box');
    this.reports = boxes.map((box) => new PrebuiltReport(box));
  }

  get boxCount(): number {
    return this.reports.length;
  }

  /** The next box's next report body and how many device changes it carries. */
  next(): { body: Buffer; changes: number; box: SimulatedBox } {
    let report = this.reports[this.cursor] as PrebuiltReport;
    // A silenced box sends nothing: its turn goes to the next box that still reports.
    for (let skipped = 0; report.box.silent && skipped < this.reports.length; skipped++) {
      this.cursor = (this.cursor + 1) % this.reports.length;
      report = this.reports[this.cursor] as PrebuiltReport;
    }
    if (report.box.silent) throw new Error('ReportStream: every box is silenced');
    this.cursor = (this.cursor + 1) % this.reports.length;
    let changes = 0;
    if (report.box.reportCount === 0) report.box.reportCount++;
    else changes = report.advance(this.changeRate).length;
    this.changes += changes;
    return { body: report.body(), changes, box: report.box };
  }
}
