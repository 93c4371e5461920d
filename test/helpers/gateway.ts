import pg from 'pg';
import { buildApp, type App } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/log';
import { createTestDatabase } from './database';

export interface TestGateway {
  app: App;
  /** `http://127.0.0.1:port` */
  url: string;
  /** A client on the gateway's database, for checking what was stored. */
  sql: pg.Pool;
  close(): Promise<void>;
}

/** A real gateway on a loopback port over a fresh database of the run's Postgres. */
export async function startGateway(overrides: Partial<Config> = {}, databaseUrl?: string): Promise<TestGateway> {
  const database = databaseUrl ? undefined : await createTestDatabase();
  const url = databaseUrl ?? database!.url;
  const config = loadConfig({}, { port: 0, host: '127.0.0.1', databaseUrl: url, ...overrides });
  const app = buildApp(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'));
  await app.start();
  const sql = new pg.Pool({ connectionString: url, max: 2 });
  return {
    app,
    url: app.url,
    sql,
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
