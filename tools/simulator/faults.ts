// Faults on demand: boxes that fall silent, devices that flap (to watch alert rules fire), and boxes
// whose hardware is replaced (to watch the login refuse their key until an operator rebinds it).
import type { SimulatedBox } from './fleet';
import { deriveSeed, seededRandom, type Random } from './random';

/** A device of the fleet: its box and its index in the box's list. */
export interface FleetDevice {
  box: SimulatedBox;
  index: number;
}

/** `10%` (a share of the fleet) or `25` (a count). */
export type FaultAmount = { share: number } | { count: number };

/** What one call did, for the simulator to print and a benchmark to time. */
export interface FaultChange {
  boxes: SimulatedBox[];
  devices: FleetDevice[];
}

function shuffled<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Parses `10%`, `0.1%` or a whole count like `25`; throws a sentence for anything else. */
export function parseFaultAmount(raw: string): FaultAmount {
  const text = raw.trim();
  if (text.endsWith('%')) {
    const percent = Number(text.slice(0, -1));
    if (text.length > 1 && Number.isFinite(percent) && percent >= 0 && percent <= 100) return { share: percent / 100 };
  } else if (/^\d+$/.test(text)) return { count: Number(text) };
  throw new Error(`${raw}: expected a share like 10% or a count like 25`);
}

/**
 * Silences boxes and makes devices flap, picking them in an order drawn once from the seed: the same
 * seed and the same calls touch the same boxes and devices. Each call takes the next ones in that order
 * that are not already affected, so `silence` twice silences two different sets.
 */
export class FleetFaults {
  private readonly boxOrder: SimulatedBox[];
  private readonly deviceOrder: FleetDevice[];
  private boxCursor = 0;
  private deviceCursor = 0;
  /** Devices made to flap since the last `recover`, flapping still or stopped where they were. */
  private flapped: FleetDevice[] = [];

  constructor(private readonly fleet: readonly SimulatedBox[], seed: number) {
    const random = seededRandom(deriveSeed(seed, 'faults'));
    this.boxOrder = shuffled([...fleet], random);
    this.deviceOrder = shuffled(
      fleet.flatMap((box) => box.devices.map((_, index) => ({ box, index }))),
      random,
    );
  }

  get silentBoxes(): number {
    return this.fleet.filter((box) => box.silent).length;
  }

  get flappingDevices(): number {
    return this.fleet.reduce((n, box) => n + box.flapping.size, 0);
  }

  get deviceCount(): number {
    return this.deviceOrder.length;
  }

  /** Silences `amount` more boxes (of the whole fleet): they stop reporting until `recover`. */
  silence(amount: FaultAmount): SimulatedBox[] {
    const wanted = 'count' in amount ? amount.count : Math.round(amount.share * this.fleet.length);
    const picked: SimulatedBox[] = [];
    for (let looked = 0; picked.length < wanted && looked < this.boxOrder.length; looked++) {
      const box = this.boxOrder[this.boxCursor]!;
      this.boxCursor = (this.boxCursor + 1) % this.boxOrder.length;
      if (box.silent) continue;
      box.silent = true;
      picked.push(box);
    }
    return picked;
  }

  /**
   * Makes `amount` more devices (of all devices) change status at every report of their box, skipping
   * devices of silenced boxes, which send nothing to flap with.
   */
  flap(amount: FaultAmount): FleetDevice[] {
    const wanted = 'count' in amount ? amount.count : Math.round(amount.share * this.deviceOrder.length);
    const picked: FleetDevice[] = [];
    for (let looked = 0; picked.length < wanted && looked < this.deviceOrder.length; looked++) {
      const device = this.deviceOrder[this.deviceCursor]!;
      this.deviceCursor = (this.deviceCursor + 1) % this.deviceOrder.length;
      if (device.box.silent || device.box.flapping.has(device.index)) continue;
      device.box.flapping.add(device.index);
      device.box.recovering.delete(device.index);
      picked.push(device);
      this.flapped.push(device);
    }
    return picked;
  }

  /**
   * Replaces the hardware of `amount` more boxes: same licence key, new serial. A box that has not
   * logged in yet first logs in with its old hardware (binding the key to it), then gets the new one, so
   * its next login shows the gateway's refusal (600002) either way.
   */
  replaceHardware(amount: FaultAmount): SimulatedBox[] {
    const wanted = 'count' in amount ? amount.count : Math.round(amount.share * this.fleet.length);
    const picked: SimulatedBox[] = [];
    for (let looked = 0; picked.length < wanted && looked < this.boxOrder.length; looked++) {
      const box = this.boxOrder[this.boxCursor]!;
      this.boxCursor = (this.boxCursor + 1) % this.boxOrder.length;
      if (box.hardwareGeneration > 0 || box.replaceAfterLogin) continue;
      if (box.loggedInGeneration === undefined) box.replaceAfterLogin = true;
      else box.replaceHardware();
      picked.push(box);
    }
    return picked;
  }

  /** Flapping devices stop changing and stay as they are (online or offline) from their box's next report. */
  stopFlapping(): FleetDevice[] {
    const stopped: FleetDevice[] = [];
    for (const box of this.fleet) {
      for (const index of box.flapping) stopped.push({ box, index });
      box.flapping.clear();
    }
    return stopped;
  }

  /**
   * Every silenced box reports again; every device that flapped since the last recover (flapping still,
   * or stopped offline) stops and comes back online at its box's next report.
   */
  recover(): FaultChange {
    const boxes = this.fleet.filter((box) => box.silent);
    for (const box of boxes) box.silent = false;
    this.stopFlapping();
    const devices = this.flapped;
    this.flapped = [];
    for (const { box, index } of devices) box.recovering.add(index);
    return { boxes, devices };
  }
}

/** `SE5-0003, SE5-0017, ... (12 in all)`: enough names to recognize, not a wall of them. */
export function describeBoxes(boxes: readonly SimulatedBox[], shown = 5): string {
  const names = boxes.slice(0, shown).map((box) => box.name);
  return boxes.length > shown ? `${names.join(', ')}, ... (${boxes.length} in all)` : names.join(', ');
}
