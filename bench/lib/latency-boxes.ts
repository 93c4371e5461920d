// The onboarding benchmark's rollout fleet: many box APIs, each a real HTTP server on a loopback port of
// its own, answering setconfigs (echoing the settings, as a box that took them) after a fixed latency.
// The fleet counts the calls under way across all its boxes, so the bench can show that a rollout
// never had more than its concurrency in flight.
import http from 'node:http';
import type { Socket } from 'node:net';
import { GETCONFIGS_PATH, SETCONFIGS_PATH } from '../../src/box-api/client';

export interface LatencyBoxes {
  ports: number[];
  /** setconfigs calls since the last `reset`. */
  readonly calls: number;
  /** Most calls under way at once across the fleet since the last `reset`. */
  readonly maxActive: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startLatencyBoxes(count: number, latencyMs: number): Promise<LatencyBoxes> {
  let active = 0;
  let maxActive = 0;
  let calls = 0;
  const servers: http.Server[] = [];
  const sockets = new Set<Socket>();
  const config: Record<string, unknown> = { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 60 };
  const handler: http.RequestListener = (req, res) => {
    active++;
    maxActive = Math.max(maxActive, active);
    res.on('close', () => active--);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let answer: unknown = { error: { code: 'NOT_FOUND', message: 'no such path' } };
      let status = 404;
      if (req.url === SETCONFIGS_PATH) {
        calls++;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { config_dict?: Record<string, unknown> };
          answer = body.config_dict ?? {};
          status = 200;
        } catch {
          answer = { error: { code: 'INVALID_ARGUMENTS', message: 'the body is not JSON' } };
          status = 400;
        }
      } else if (req.url === GETCONFIGS_PATH) {
        answer = config;
        status = 200;
      }
      const text = JSON.stringify(answer);
      // The box's own work, as a fixed delay: what the rollout's concurrency is there to overlap.
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      }, latencyMs);
    });
  };
  const ports: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = http.createServer(handler);
      server.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      ports.push((server.address() as { port: number }).port);
    }
  } catch (error) {
    for (const server of servers) server.close();
    throw error;
  }
  return {
    ports,
    get calls() {
      return calls;
    },
    get maxActive() {
      return maxActive;
    },
    reset() {
      calls = 0;
      maxActive = active;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
