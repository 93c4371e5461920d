import { buildApp } from './app';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './log';
import { GATEWAY_NODE_FLAGS } from './node-flags';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`fleetgate: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

const log = createLogger(config.logLevel);
// Only node's command line can set these, so a hand-written service unit may leave them out: say so.
const nodeOptions = (process.env.NODE_OPTIONS ?? '').split(/\s+/);
const missingFlags = GATEWAY_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag) && !nodeOptions.includes(flag));
if (missingFlags.length > 0) log.warn({ missing: missingFlags }, 'node was started without the flags `npm run start:production` gives; ingest is slower');
const app = buildApp(config, log);
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping: finishing accepted reports');
  const force = setTimeout(() => {
    log.error('shutdown took longer than 10 s; exiting');
    process.exit(1);
  }, 10_000);
  force.unref();
  try {
    await app.stop();
    log.info('stopped');
    process.exit(0);
  } catch (error) {
    log.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}

process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  await app.start();
} catch (error) {
  log.fatal({ err: error }, 'fleetgate could not start');
  await app.stop().catch(() => {});
  process.exit(1);
}
const ingestUrl = `${app.url}/DeviceStatus`;
console.error(
  [
    '',
    `  fleetgate is up on ${app.url}`,
    `  box reports:  POST ${ingestUrl}   (set it as a box's MEDIA_DEVICE_MONITOR_URL)`,
    `  box login:    GET  ${app.url}/BoxLogin   (set it as a newer box's login address; keys: npm run boxes -- issue N)`,
    `  database:     ${config.databaseUrl ? 'DATABASE_URL' : `embedded Postgres, data in ${config.dataDir}`}`,
    config.publicUrl
      ? `  pointBoxAtGateway sets ${config.publicUrl}/DeviceStatus (PUBLIC_URL)`
      : ['0.0.0.0', '::'].includes(config.host)
        ? `  PUBLIC_URL unset: pointBoxAtGateway uses the address each GraphQL request came in on; set PUBLIC_URL to the URL boxes reach`
        : `  PUBLIC_URL unset: pointBoxAtGateway sets ${ingestUrl}; set PUBLIC_URL if boxes reach the gateway otherwise`,
    `  ingest policy: ${config.ingestPolicy} (INGEST_POLICY)`,
    '',
  ].join('\n'),
);
if (app.bootstrap.kind === 'created') {
  // Shown once, on the terminal, never in the JSON log: the database keeps only its hash.
  console.error(
    [
      '  No API token existed, so an admin token was created. It is shown this once; keep it:',
      '',
      `    ${app.bootstrap.token}`,
      '',
      '  Send it as `Authorization: Bearer <token>` (GraphiQL: the Headers tab), or in connection_init',
      '  as { "authorization": "Bearer <token>" } over websockets. Make more with `npm run token -- create`.',
      '',
    ].join('\n'),
  );
}
