import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, verify } from '../../src/alerts/webhooks/signature';

// A webhook receiver for demos and checks: prints one line per webhook, verifies its signature the
// way the README tells receivers to, and flags a repeated Idempotency-Key (at-least-once delivery).

export interface SinkOptions {
  port: number;
  host?: string;
  /** The channel's secret (shown when the channel was made); without it signatures are not checked. */
  secret?: string;
  /** Answer this share of good webhooks with 500, to watch retries (0 to 1). */
  failRate?: number;
  /** Answer every good webhook with this status instead of 200. */
  status?: number;
  /** Where lines go (default: stdout). */
  print?: (line: string) => void;
}

export interface Sink {
  url: string;
  server: Server;
  /** Webhooks received, duplicates, bad signatures. */
  counts: { received: number; duplicates: number; badSignatures: number };
  close(): Promise<void>;
}

/** Most bytes of a body read; a webhook is a few kilobytes. */
const MAX_BODY_BYTES = 1024 * 1024;
/** Idempotency keys remembered for DUPLICATE; the oldest are forgotten past this. */
const KEYS_KEPT = 100_000;

function subjectOf(body: any): string {
  const box = body?.subject?.box;
  const device = body?.subject?.device;
  const boxText = box ? `box ${box.name ?? '?'} (${box.licenseKey ?? box.databaseId})` : 'box ?';
  return device ? `${boxText} device ${device.name ?? device.externalId}` : boxText;
}

export async function startWebhookSink(options: SinkOptions): Promise<Sink> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const seen = new Set<string>();
  const counts = { received: 0, duplicates: 0, badSignatures: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return void req.destroy();
      chunks.push(chunk);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body: any;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
      counts.received++;
      const check = options.secret ? verify(options.secret, raw, req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined) : undefined;
      if (check && !check.ok) counts.badSignatures++;
      // Only webhooks that pass count towards duplicates: a forged one says nothing about delivery.
      const key = check && !check.ok ? '' : String(req.headers['idempotency-key'] ?? '');
      const duplicate = key !== '' && seen.has(key);
      if (duplicate) counts.duplicates++;
      else if (key !== '') {
        seen.add(key);
        if (seen.size > KEYS_KEPT) seen.delete(seen.values().next().value!);
      }
      const signature = !check ? 'signature not checked (no --secret)' : check.ok ? 'signature OK' : `signature BAD (${check.reason})`;
      const alert = body?.alert ?? {};
      print(
        [
          new Date().toISOString(),
          req.headers['fleetgate-event'] ?? body?.event ?? '?',
          alert.severity ?? '?',
          JSON.stringify(body?.rule?.name ?? '?'),
          subjectOf(body),
          `alert ${alert.databaseId ?? '?'}`,
          signature,
          duplicate ? `DUPLICATE ${key}` : '',
        ]
          .filter((part) => part !== '')
          .join('  '),
      );
      if (check && !check.ok) {
        res.statusCode = 401;
        return void res.end('bad signature\n');
      }
      const fail = options.failRate !== undefined && Math.random() < options.failRate;
      res.statusCode = fail ? 500 : (options.status ?? 200);
      res.end(fail ? 'failing on purpose (--fail-rate)\n' : 'ok\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}/`,
    server,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
