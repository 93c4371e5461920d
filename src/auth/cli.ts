import { parseArgs } from 'node:util';
import { databasePlace, openDatabase, POINT_IT, runCommand } from '../cli/database';
import { loadConfig } from '../config';
import { API_ROLES, type ApiRole } from './roles';
import { API_TOKEN_PREFIX, createApiToken, generateSecret, listApiTokens, revokeApiToken, TokenInputError } from './tokens';

// `npm run token -- <command>`: API tokens from the command line, on the gateway's own database
// (DATABASE_URL, or the embedded one: a running gateway's, or started here for the moment).

const USAGE = `Usage: npm run token -- <command>

  create --role viewer|operator|admin --name NAME   make a token and print it (shown once)
  list [--all]                                      list tokens (--all: with revoked ones)
  revoke ID                                         revoke a token (its id from list)
  generate                                          print a fresh secret for ADMIN_TOKEN (touches no database)

Uses DATABASE_URL, or else the embedded Postgres in FLEETGATE_DATA_DIR (default ./.fleetgate/postgres,
from the folder the command runs in).`;

class UsageError extends Error {}

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

  // The CLI logs only warnings unless LOG_LEVEL asks for more (its output is the commands' own).
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env });
  const db = await openDatabase(config, command === 'create');
  try {
    if (command === 'create') {
      const { token, row } = await createApiToken(db.pool, { name: values.name!, role: createRole!, createdBy: 'npm run token' });
      console.error(`Created token #${row.id} "${row.name}" (${row.role}). It is shown this once:`);
      console.log(token);
    } else if (command === 'list') {
      const rows = await listApiTokens(db.pool, { includeRevoked: values.all });
      const place = databasePlace(config);
      if (rows.length === 0) {
        console.log(`No tokens in ${place}${values.all ? '' : ' (--all lists revoked ones too)'}.`);
        console.error(`Not the gateway's database? ${POINT_IT}`);
      } else {
        console.error(`Tokens in ${place}:`);
      }
      for (const row of rows) {
        const state = row.revokedAt ? `revoked ${row.revokedAt.toISOString()}` : `last used ${row.lastUsedAt?.toISOString() ?? 'never'}`;
        console.log(`#${row.id}\t${row.prefix}…\t${row.role}\t${row.name}\t${state}`);
      }
    } else {
      const row = await revokeApiToken(db.pool, id!, 'npm run token');
      if (!row) {
        console.error(`There is no token #${id} in ${databasePlace(config)}; see \`npm run token -- list --all\`.`);
        return 1;
      }
      console.log(`Revoked token #${row.id} "${row.name}"; gateways refuse it within seconds.`);
    }
    return 0;
  } finally {
    await db.close();
  }
}

await runCommand('token', USAGE, () => main(process.argv.slice(2)), (error) => error instanceof UsageError || error instanceof TokenInputError);
