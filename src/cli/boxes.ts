import { parseArgs } from 'node:util';
import { issuedBoxNames, validateIssue } from '../box-api/registration';
import { loadConfig } from '../config';
import { listBoxKeys, MAX_BOXES_PER_ISSUE, registerIssuedBoxes } from '../models/license-keys';
import { databasePlace, openDatabase, POINT_IT, runCommand } from './database';

// `npm run boxes -- <command>`: boxes registered with licence keys this gateway issues, as CSV for
// whoever flashes the keys onto the boxes; on the gateway's own database, as `npm run token`.

const USAGE = `Usage: npm run boxes -- <command>

  issue N [--name-prefix P]   register N boxes (1–${MAX_BOXES_PER_ISSUE}) with issued licence keys, all or none;
                              prints CSV: license_key,box_id,name (names P1…PN, zero-padded)
  list [--csv]                list the boxes: key, id, name, bound hardware serial, last login

Keys are LICENSE_KEY_PREFIX (default FLEETG) + 4 random digits + the UTC time yyyyMMddHHmmss.
Uses DATABASE_URL, or else the embedded Postgres in FLEETGATE_DATA_DIR (default ./.fleetgate/postgres,
from the folder the command runs in).`;

class UsageError extends Error {}

/** The id the GraphQL API takes for a box (its global id). */
const globalBoxId = (id: number) => Buffer.from(`Box:${id}`).toString('base64');

/** One CSV field: quoted when it holds a comma, a quote, a line break or spaces at its ends. */
function csvField(value: string | null): string {
  if (value === null) return '';
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'name-prefix': { type: 'string' }, csv: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command !== 'issue' && command !== 'list') throw new UsageError(`Unknown command "${command}".`);
  const count = command === 'issue' ? Number(rest[0]) : 0;
  if (command === 'issue') {
    if (rest.length !== 1 || !/^\d+$/.test(rest[0]!)) throw new UsageError('issue needs the number of boxes, e.g. `npm run boxes -- issue 20`.');
    const problems = validateIssue(count, values['name-prefix']);
    if (problems.length > 0) throw new UsageError(problems.map((p) => p.message).join(' '));
  }

  // The CLI logs only warnings unless LOG_LEVEL asks for more (its output is the commands' own).
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env });
  const db = await openDatabase(config, command === 'issue');
  try {
    if (command === 'issue') {
      const boxes = await registerIssuedBoxes(db.pool, config.licenseKeyPrefix, issuedBoxNames(count, values['name-prefix']).map((name) => ({ name })));
      console.error(`Registered ${boxes.length} boxes in ${databasePlace(config)}.`);
      console.log('license_key,box_id,name');
      for (const box of boxes) console.log([box.licenseKey, globalBoxId(box.id), box.name].map(csvField).join(','));
    } else {
      const rows = await listBoxKeys(db.pool);
      if (rows.length === 0) console.error(`No boxes in ${databasePlace(config)}. Not the gateway's database? ${POINT_IT}`);
      if (values.csv) {
        console.log('license_key,box_id,name,hardware_serial,last_login_at');
        for (const row of rows) console.log([row.licenseKey, globalBoxId(row.id), row.name, row.hardwareSerial, row.lastLoginAt?.toISOString() ?? null].map(csvField).join(','));
      } else {
        for (const row of rows) {
          console.log(`${row.licenseKey}\t${globalBoxId(row.id)}\t${row.name ?? '-'}\t${row.hardwareSerial ?? 'unbound'}\t${row.lastLoginAt ? `last login ${row.lastLoginAt.toISOString()}` : 'never logged in'}`);
        }
      }
    }
    return 0;
  } finally {
    await db.close();
  }
}

await runCommand('boxes', USAGE, () => main(process.argv.slice(2)), (error) => error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true);
