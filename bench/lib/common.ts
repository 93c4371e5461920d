// What the benchmarks share: option parsing, timing, ports, and cleaning up after a gateway.
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export class UsageError extends Error {}

export function numberOption(raw: string | undefined, name: string, fallback: number, min: number, max: number, integer = false): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${name} ${raw}: expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

export function oneOf<T extends string>(raw: string | undefined, name: string, allowed: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw new UsageError(`--${name} ${raw}: expected one of ${allowed.join(', ')}`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Whether `promise` settles within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function stderrLine(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The pid in an embedded Postgres data folder's postmaster.pid, if there is one. */
export function postmasterPid(dataDir: string): number | undefined {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** If a gateway died without stopping its embedded Postgres, stop that postmaster (and only it). */
export async function stopLeftoverPostgres(dataDir: string): Promise<void> {
  const pid = postmasterPid(dataDir);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGINT'); // Postgres "fast shutdown"
  } catch {
    return; // already gone
  }
  stderrLine(`stopping the embedded Postgres a gateway left running (pid ${pid})`);
  for (let i = 0; i < 100 && existsSync(path.join(dataDir, 'postmaster.pid')); i++) await sleep(100);
}

/**
 * A benchmark's options from its command line, or the exit code when there is nothing to run:
 * 0 after printing the usage for --help, 2 after printing a usage error with the usage.
 */
export function parseCommandLine<T>(parse: (argv: string[]) => T | 'help', usage: string): T | number {
  let options: T | 'help';
  try {
    options = parse(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  return options;
}

/** Things a benchmark must undo on any way out (servers, temporary folders), newest first; each runs once. */
export class Cleanups {
  private readonly stack: Array<() => Promise<void>> = [];
  private running: Promise<void> | undefined;

  /** How many are pending: a mark for `run(mark)`. */
  get size(): number {
    return this.stack.length;
  }

  push(cleanup: () => Promise<void>): void {
    this.stack.push(cleanup);
  }

  /** Runs those pushed after `mark` (default: all), newest first; a second caller (Ctrl-C meanwhile) waits its turn. */
  async run(mark = 0): Promise<void> {
    while (this.running) await this.running;
    this.running = (async () => {
      while (this.stack.length > mark) {
        const cleanup = this.stack.pop()!;
        await cleanup().catch((error: unknown) => stderrLine(`cleanup: ${(error as Error).message}`));
      }
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  /** Hard timeout or a signal: say why, undo everything, exit with `exitCode`; forced after a further minute. */
  abandon(message: string, exitCode: number): void {
    stderrLine(`\n${message}`);
    setTimeout(() => process.exit(exitCode), 60_000).unref();
    void this.run().finally(() => process.exit(exitCode));
  }
}

/**
 * A benchmark's `main`: parses the command line, runs `run`, and always undoes what `cleanups` holds;
 * Ctrl-C and the hard timeout stop the servers at once. Resolves with the exit status.
 */
export async function runBenchmark<T>(
  parse: (argv: string[]) => T | 'help',
  usage: string,
  cleanups: Cleanups,
  hardTimeoutMinutes: number,
  run: (options: T) => Promise<number>,
): Promise<number> {
  const options = parseCommandLine(parse, usage);
  if (typeof options === 'number') return options;
  process.once('SIGINT', () => cleanups.abandon('interrupted; stopping the gateway', 130));
  const hardTimeout = setTimeout(() => cleanups.abandon(`hard timeout (${hardTimeoutMinutes} min); stopping the gateway`, 1), hardTimeoutMinutes * 60_000);
  try {
    return await run(options);
  } catch (error) {
    process.stdout.write(`FAILED: ${(error as Error).message}\n`);
    return 1;
  } finally {
    clearTimeout(hardTimeout);
    await cleanups.run();
  }
}
