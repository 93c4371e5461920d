import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import { connect, createServer } from 'node:net';

/** A TCP port that was free a moment ago on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A loopback port that refuses connections now and stays closed for the test: it lies below the
 * kernel's ephemeral range, where no `listen(0)` (any test's box, gateway or Postgres) can land, and
 * no test listens on a port it chose there. (A port from `freePort()` does not stay closed: another
 * test's `listen(0)` may take it a moment later, and a "closed" box then answers.)
 */
export async function closedPort(): Promise<number> {
  const low = ephemeralRangeStart();
  for (let tries = 0; tries < 50; tries++) {
    const port = low - 1 - Math.floor(Math.random() * Math.min(10_000, low - 1_025));
    if (await refuses(port)) return port;
  }
  throw new Error(`No closed loopback port found below ${low}: something listens on every port tried.`);
}

/** The first port the kernel hands out for `listen(0)` (Linux; 32768 elsewhere, as on Linux by default). */
function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 2_048) return low;
  } catch {
    // not Linux: the IANA range starts higher still, so a port below 32768 is outside it too
  }
  return 32_768;
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/** An HTTP request's whole body as text. */
export function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/** Closes every server in `servers` (and empties it), cutting their open connections. */
export async function closeServers(servers: Server[]): Promise<void> {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
}
