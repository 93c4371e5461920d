/**
 * The benchmark's baseline: the least a report receiver can do over node:http — read the body,
 * JSON.parse it, answer 200 `{}`. Run in its own process so it has its own event loop, as the gateway does.
 *
 * PORT (default 0: any free port) and HOST (default 127.0.0.1). Prints `{"listening":<port>}` on stdout
 * once it accepts connections; stops on SIGTERM or SIGINT.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST || '127.0.0.1';

function handle(request: IncomingMessage, response: ServerResponse): void {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    let status = 200;
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      status = 400;
    }
    const body = status === 200 ? '{}' : '{"error":"invalid JSON"}';
    response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    response.end(body);
  });
}

const server = createServer({ keepAliveTimeout: 60_000 }, handle);

function shutDown(): void {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutDown);
process.on('SIGINT', shutDown);

server.listen(port, host, () => {
  const address = server.address();
  const listening = typeof address === 'object' && address !== null ? address.port : port;
  process.stdout.write(`${JSON.stringify({ listening })}\n`);
});
