import { parseArgs } from 'node:util';
import { startWebhookSink } from './sink';

const USAGE = `Receives fleetgate's alert webhooks and prints one line each: time, event, severity, rule,
subject (box name and licence key, device), alert id, whether the signature verifies, and
DUPLICATE when an Idempotency-Key comes again (delivery is at least once).

Usage: npm run webhook-sink -- [options]

  --port N          port to listen on (default 9099)
  --host H          interface to listen on (default 127.0.0.1)
  --secret S        the channel's secret (whsec_...); or WEBHOOK_SECRET. Bad signatures get 401
  --fail-rate P     answer this share of webhooks with 500, to watch retries (default 0)
  --status N        answer every webhook with this status (default 200)
  -h, --help        this text

Then make a channel pointing at it (operator token), e.g. url: "http://127.0.0.1:9099/".`;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9099' },
    host: { type: 'string', default: '127.0.0.1' },
    secret: { type: 'string' },
    'fail-rate': { type: 'string', default: '0' },
    status: { type: 'string', default: '200' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const port = Number(values.port);
const failRate = Number(values['fail-rate']);
const status = Number(values.status);
const problems = [
  !Number.isInteger(port) || port < 0 || port > 65535 ? `--port ${values.port} is not a port (0-65535)` : '',
  !(failRate >= 0 && failRate <= 1) ? `--fail-rate ${values['fail-rate']} is not a share from 0 to 1` : '',
  !Number.isInteger(status) || status < 100 || status > 599 ? `--status ${values.status} is not an HTTP status` : '',
].filter(Boolean);
if (problems.length > 0) {
  console.error(`${problems.join('\n')}\n\n${USAGE}`);
  process.exit(2);
}
const secret = values.secret ?? process.env.WEBHOOK_SECRET;
const sink = await startWebhookSink({ port, host: values.host, secret, failRate, status });
console.log(`webhook-sink listening on ${sink.url}${secret ? '' : ' (no --secret: signatures not checked)'}`);
const stop = () => void sink.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
