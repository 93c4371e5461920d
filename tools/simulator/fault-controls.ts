// The simulator's fault controls: timed faults from the command line, and commands typed while it runs.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { describeBoxes, parseFaultAmount, type FaultAmount, type FleetFaults } from './faults';

export interface TimedFaults {
  /** Boxes to silence after `silenceAfterMs` (--silence, --silence-after). */
  silence?: FaultAmount;
  silenceAfterMs: number;
  /** Devices to make flap after `flapAfterMs` (--flap, --flap-after). */
  flap?: FaultAmount;
  flapAfterMs: number;
  /** Boxes whose hardware is replaced after `replaceAfterMs` (--replaced-hardware, --replaced-after). */
  replace?: FaultAmount;
  replaceAfterMs?: number;
}

export const FAULT_COMMANDS = `While it runs, type a line and Enter:
  s [AMOUNT]   silence AMOUNT more boxes (default 10%): they stop reporting
  f [AMOUNT]   make AMOUNT more devices flap (default 5%): online/offline at every report
  r            recover: silenced boxes report again, flapping devices stop and come back online
  h [AMOUNT]   replace the hardware of AMOUNT more boxes (default 1): same key, new serial, login again
AMOUNT is a share of the fleet (10%) or a count (25).`;

/** `30s`, `2m`, `500ms` or plain seconds; throws a sentence for anything else. */
export function parseDuration(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!match) throw new Error(`${raw}: expected a duration like 30s, 2m or 500ms`);
  const value = Number(match[1]);
  return match[2] === 'ms' ? value : match[2] === 'm' ? value * 60_000 : value * 1000;
}

function share(amount: FaultAmount): string {
  return 'share' in amount ? `${+(amount.share * 100).toFixed(3)}%` : String(amount.count);
}

/**
 * Applies the timed faults and the typed commands to `faults`, printing what each did with `print`.
 * Returns a stop function that cancels pending timers and stops reading `input`.
 */
export function startFaultControls(faults: FleetFaults, timed: TimedFaults, input: Readable | undefined, print: (line: string) => void): () => void {
  const silence = (amount: FaultAmount) => {
    const boxes = faults.silence(amount);
    print(`silenced ${boxes.length} boxes (${share(amount)}): ${describeBoxes(boxes) || 'none left to silence'}; ${faults.silentBoxes} silent now`);
  };
  const flap = (amount: FaultAmount) => {
    const devices = faults.flap(amount);
    const boxes = new Set(devices.map((d) => d.box)).size;
    print(`${devices.length} devices on ${boxes} boxes flap now (${share(amount)}); ${faults.flappingDevices} flapping in all`);
  };
  const recover = () => {
    const { boxes, devices } = faults.recover();
    print(`recovered ${boxes.length} silent boxes and ${devices.length} flapping devices`);
  };

  const replace = (amount: FaultAmount) => {
    const boxes = faults.replaceHardware(amount);
    print(`replaced the hardware of ${boxes.length} boxes (${share(amount)}): ${describeBoxes(boxes) || 'none left'}; they log in again with a new serial`);
  };

  const timers: NodeJS.Timeout[] = [];
  if (timed.replace) timers.push(setTimeout(replace, timed.replaceAfterMs ?? 0, timed.replace));
  if (timed.silence) timers.push(setTimeout(silence, timed.silenceAfterMs, timed.silence));
  if (timed.flap) timers.push(setTimeout(flap, timed.flapAfterMs, timed.flap));

  const lines = input ? createInterface({ input, terminal: false }) : undefined;
  lines?.on('line', (line) => {
    const [command, amount] = line.trim().split(/\s+/);
    try {
      if (command === 's') silence(amount ? parseFaultAmount(amount) : { share: 0.1 });
      else if (command === 'f') flap(amount ? parseFaultAmount(amount) : { share: 0.05 });
      else if (command === 'r') recover();
      else if (command === 'h') replace(amount ? parseFaultAmount(amount) : { count: 1 });
      else if (command) print(`unknown command "${line.trim()}"\n${FAULT_COMMANDS}`);
    } catch (error) {
      print((error as Error).message);
    }
  });
  return () => {
    for (const timer of timers) clearTimeout(timer);
    lines?.close();
  };
}
