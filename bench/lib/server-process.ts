// A server under test in its own process, as the benchmarks start and stop it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_LIMITS_ENV } from '../../src/config';
import { GATEWAY_NODE_FLAGS } from '../../src/node-flags';
import { freePort, settlesWithin, stderrLine, stopLeftoverPostgres, type Cleanups } from './common';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The admin token every benchmarked gateway gets (ADMIN_TOKEN), for the benchmarks' GraphQL clients.
 * Made per run (child processes of the benchmark inherit it through the environment).
 */
export const BENCH_ADMIN_TOKEN = (process.env.BENCH_ADMIN_TOKEN ||= `fgt_${randomBytes(32).toString('base64url')}`);

/**
 * What a benchmarked gateway runs with besides its defaults: the admin token, and no rate limits or
 * caps, since the load generators send from one address with one token at rates a production limit
 * exists to stop. Benchmarks print this in their conditions.
 */
export const BENCH_GATEWAY_ENV: NodeJS.ProcessEnv = { ADMIN_TOKEN: BENCH_ADMIN_TOKEN, ...NO_LIMITS_ENV };

/** A server under test in its own process: its own event loop, like the gateway in production. */
export interface ServerProcess {
  label: string;
  child: ChildProcess;
  origin: string;
  /** Last lines it printed, shown when it fails. */
  outputTail: string[];
  exitCode: number | null | undefined;
  exited: Promise<void>;
}

let built = false;

/**
 * What node runs for `entry`: the gateway (src/main.ts) as production runs it, built by `npm run build`
 * (once per benchmark process); any other TypeScript file (the bare baseline, a variant of the gateway)
 * from source, with tsx (`node --import tsx` rather than the tsx CLI: one process, so SIGTERM reaches it).
 */
export function entryArgs(entry: string): string[] {
  if (entry !== 'src/main.ts') return ['--import', 'tsx', entry];
  if (!built) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  built = true;
  return ['dist/main.js'];
}

/**
 * Runs `entry` (see entryArgs) with node and the flags production gives the gateway (the bare
 * baseline gets them too: same runtime for both); `nodeArgs` go after those (e.g. --cpu-prof).
 */
export function startServer(label: string, entry: string, env: NodeJS.ProcessEnv, port: number, nodeArgs: string[] = []): ServerProcess {
  const child = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, ...nodeArgs, ...entryArgs(entry)], { cwd: ROOT, env: { ...BENCH_GATEWAY_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const server: ServerProcess = {
    label,
    child,
    origin: `http://127.0.0.1:${port}`,
    outputTail: [],
    exitCode: undefined,
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        server.exitCode = code ?? (signal ? -1 : null);
        resolve();
      }),
    ),
  };
  const keepTail = (chunk: Buffer) => {
    server.outputTail.push(...chunk.toString('utf8').split('\n').filter((line) => line.trim() !== ''));
    server.outputTail.splice(0, Math.max(0, server.outputTail.length - 30));
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  child.once('error', (error) => server.outputTail.push(`spawn failed: ${error.message}`));
  return server;
}

export function describeExit(server: ServerProcess): string {
  const tail = server.outputTail.length ? `; its last output:\n    ${server.outputTail.join('\n    ')}` : '';
  return `${server.label} exited (code ${server.exitCode})${tail}`;
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopServer(server: ServerProcess, graceMs: number): Promise<void> {
  if (server.exitCode !== undefined) return;
  server.child.kill('SIGTERM');
  if (await settlesWithin(server.exited, graceMs)) return;
  stderrLine(`${server.label} did not exit ${graceMs / 1000} s after SIGTERM; killing it`);
  server.child.kill('SIGKILL');
  await settlesWithin(server.exited, 5_000);
}

/**
 * The gateway from source in a process of its own, on a fresh embedded Postgres in a temporary folder
 * (`label` names the folder), listening on 127.0.0.1 with `env` added. `cleanups` stops it, stops any
 * Postgres it left, and removes the folder.
 */
export async function startGatewayOnFreshPostgres(label: string, env: NodeJS.ProcessEnv, cleanups: Cleanups): Promise<{ gateway: ServerProcess; databaseUrl: string }> {
  const port = await freePort();
  const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), `fleetgate-bench-${label}-`));
  await fs.chmod(tempDir, 0o777); // as root, the embedded Postgres runs as `postgres`, which must enter it
  const dataDir = path.join(tempDir, 'postgres');
  const pgPort = await freePort();
  cleanups.push(async () => {
    await stopLeftoverPostgres(dataDir);
    await fs.rm(tempDir, { recursive: true, force: true });
  });
  const gateway = startServer('gateway', 'src/main.ts', {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    FLEETGATE_DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(pgPort),
    ...env,
  }, port);
  cleanups.push(() => stopServer(gateway, 30_000));
  return { gateway, databaseUrl: `postgres://fleetgate:fleetgate@127.0.0.1:${pgPort}/postgres` };
}
