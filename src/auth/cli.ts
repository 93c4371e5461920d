import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConfigError, loadConfig } from '../config';
import { createPool, migrateDatabase } from '../db/connection';
import { livePostmasterPort, startEmbeddedPostgres, type RunningPostgres } from '../db/embedded';
import { createLogger } from '../log';
import { API_ROLES, type ApiRole } from './roles';
import { API_TOKEN_PREFIX, createApiToken, generateSecret, listApiTokens, revokeApiToken, TokenInputError } from './tokens';

// `npm run token -- <command>`: API tokens from the command line, on the gateway's own database
// (DATABASE_URL, or the embedded one: a running gateway's, or started here for the moment).

const USAGE = `Usage: npm run token -- <command>

  create --role viewer|operator|admin --name NAME   make a token and print it (shown once)
  list [--all]                                      list tokens (--all: with revoked ones)
  revoke ID                                         revoke a token (its id from list)
  generate                                          print a fresh secret for ADMIN_TOKEN (touches no database)

Uses DATABASE_URL, or else the embedded Postgres in FLEETGATE_DATA_DIR (default ./.fleetgate/postgres).`;

class UsageError extends Error {}

async function openDatabase(): Promise<{ pool: pg.Pool; close: () => Promise<void> }> {
  const config = loadConfig();
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  let postgres: RunningPostgres | undefined;
  let url = config.databaseUrl;
  if (!url) {
    const runningPort = livePostmasterPort(config.dataDir);
    if (runningPort !== undefined) {
      // A gateway is running on this data folder: use its server, and leave it running.
      url = `postgres://fleetgate:fleetgate@127.0.0.1:${runningPort}/postgres`;
    } else {
      console.error(`Starting the embedded Postgres in ${path.relative(process.cwd(), config.dataDir) || '.'} for this command...`);
      postgres = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, log });
      url = postgres.url;
    }
  }
  const pool = createPool(url, 2, log);
  await migrateDatabase(pool, log);
  return {
    pool,
    async close() {
      await pool.end();
      await postgres?.stop();
    },
  };
}

function role(value: string | undefined): ApiRole {
  if (!value || !(API_ROLES as readonly string[]).includes(value)) throw new UsageError(`--role must be one of ${API_ROLES.join(', ')}.`);
  return value as ApiRole;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { role: { type: 'string' }, name: { type: 'string' }, all: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'generate') {
    console.log(generateSecret(API_TOKEN_PREFIX));
    return 0;
  }
  if (!['create', 'list', 'revoke'].includes(command)) throw new UsageError(`Unknown command "${command}".`);
  if (command === 'create' && !values.name) throw new UsageError('create needs --name, e.g. --name "wall dashboard".');
  const id = command === 'revoke' ? Number(rest[0]) : undefined;
  if (command === 'revoke' && !(Number.isInteger(id) && id! > 0)) throw new UsageError('revoke needs the token id from `npm run token -- list`.');
  const createRole = command === 'create' ? role(values.role) : undefined;

  const db = await openDatabase();
  try {
    if (command === 'create') {
      const { token, row } = await createApiToken(db.pool, { name: values.name!, role: createRole!, createdBy: 'npm run token' });
      console.error(`Created token #${row.id} "${row.name}" (${row.role}). It is shown this once:`);
      console.log(token);
    } else if (command === 'list') {
      const rows = await listApiTokens(db.pool, { includeRevoked: values.all });
      if (rows.length === 0) console.log('No tokens.');
      for (const row of rows) {
        const state = row.revokedAt ? `revoked ${row.revokedAt.toISOString()}` : `last used ${row.lastUsedAt?.toISOString() ?? 'never'}`;
        console.log(`#${row.id}\t${row.prefix}…\t${row.role}\t${row.name}\t${state}`);
      }
    } else {
      const row = await revokeApiToken(db.pool, id!, 'npm run token');
      if (!row) {
        console.error(`There is no token #${id}; see \`npm run token -- list --all\`.`);
        return 1;
      }
      console.log(`Revoked token #${row.id} "${row.name}"; gateways refuse it within seconds.`);
    }
    return 0;
  } finally {
    await db.close();
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError || error instanceof ConfigError || error instanceof TokenInputError) {
    console.error(`${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    console.error(`token: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
