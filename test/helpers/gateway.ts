import pg from 'pg';
import { buildApp, type App } from '../../src/app';
import { loadConfig, NO_LIMITS_ENV, type Config } from '../../src/config';
import { createLogger, type Logger } from '../../src/log';
import { newAdminToken, rememberToken } from './auth';
import { createTestDatabase } from './database';

export interface TestGateway {
  app: App;
  /** `http://127.0.0.1:port` */
  url: string;
  /** A client on the gateway's database, for checking what was stored. */
  sql: pg.Pool;
  /** An admin API token (ADMIN_TOKEN); the GraphQL and websocket helpers send it by default. */
  token: string;
  close(): Promise<void>;
}

/**
 * A real gateway on a loopback port over a fresh database of the run's Postgres, with an admin token
 * of its own (`token`) and no rate limits or caps unless `overrides` sets them (NO_LIMITS_ENV).
 */
export async function startGateway(overrides: Partial<Config> = {}, databaseUrl?: string, { log }: { log?: Logger } = {}): Promise<TestGateway> {
  const database = databaseUrl ? undefined : await createTestDatabase();
  const url = databaseUrl ?? database!.url;
  const token = overrides.adminToken ?? newAdminToken();
  const config = loadConfig(NO_LIMITS_ENV, { port: 0, host: '127.0.0.1', databaseUrl: url, ...overrides, adminToken: token });
  const app = buildApp(config, log ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'));
  await app.start();
  rememberToken(app.url, token);
  const sql = new pg.Pool({ connectionString: url, max: 2 });
  return {
    app,
    url: app.url,
    sql,
    token,
    async close() {
      await sql.end();
      await app.stop();
      await database?.drop();
    },
  };
}

/** POSTs a report like a box does; `body` objects are sent as JSON, strings as they are. */
export async function postReport(
  baseUrl: string,
  body: unknown,
  { path = '/DeviceStatus', contentType = 'application/json', headers = {} as Record<string, string> } = {},
) {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { ...(contentType ? { 'content-type': contentType } : {}), ...headers },
    // A byte body keeps fetch from adding its own text/plain Content-Type.
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}
