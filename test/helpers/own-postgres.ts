import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/db/embedded';
import { createLogger } from '../../src/log';
import { startGateway, type TestGateway } from './gateway';
import { freePort } from './net';

export interface OwnPostgresGateway {
  gateway: TestGateway;
  /** Stops Postgres; `gateway.sql` is closed first (it would hold connections across the outage). */
  stopPostgres(): Promise<void>;
  /** Starts it again on the same data and port, with a new `gateway.sql`. */
  startPostgres(): Promise<void>;
  /** Stops the gateway and Postgres and removes the data. */
  close(): Promise<void>;
}

/**
 * A gateway on a Postgres of the test file's own, which the test may stop and start again without
 * disturbing any other test (the run's shared Postgres stays up).
 */
export async function gatewayOnOwnPostgres(label: string): Promise<OwnPostgresGateway> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `fleetgate-${label}-`));
  await fs.chmod(dataDir, 0o777); // as root, the embedded Postgres runs as `postgres`, which must enter it
  const port = await freePort();
  const log = createLogger('silent');
  const start = () => startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port, log });
  let postgres: RunningPostgres = await start();
  const gateway = await startGateway({}, postgres.url);
  return {
    gateway,
    async stopPostgres() {
      // A client still closing when Postgres shuts down hears 57P01; nothing is waiting for it.
      gateway.sql.on('error', () => {});
      await gateway.sql.end();
      await postgres.stop();
    },
    async startPostgres() {
      postgres = await start();
      gateway.sql = new pg.Pool({ connectionString: gateway.app.databaseUrl, max: 2 });
      gateway.sql.on('error', () => {}); // as above, at close()
    },
    async close() {
      await gateway.app.stop().catch(() => {});
      await gateway.sql.end().catch(() => {}); // ended already when the test stopped during an outage
      await postgres.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
