import type { ServerResponse } from 'node:http';
import type { Logger } from '../log';
import type { Readiness } from './health';
import type { GatewayMetrics } from './metrics';

/**
 * `/healthz` (alive: asks nothing of the database), `/readyz` (ready: database up and migrated) and
 * `/metrics` (Prometheus). Returns whether `pathname` was one of them and has been answered.
 */
export function createProbeEndpoints(metrics: GatewayMetrics, readiness: () => Promise<Readiness>, log: Logger): (pathname: string, res: ServerResponse) => boolean {
  return (pathname, res) => {
    if (pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return true;
    }
    if (pathname === '/metrics') {
      metrics.render().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType });
          res.end(body);
        },
        (error: unknown) => {
          log.error({ err: error }, 'metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('metrics failed');
        },
      );
      return true;
    }
    if (pathname === '/readyz') {
      void readiness().then((answer) => {
        res.writeHead(answer.status === 'ready' ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(answer));
      });
      return true;
    }
    return false;
  };
}
