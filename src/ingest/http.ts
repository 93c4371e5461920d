import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientAddress } from '../auth/client-address';
import { isDatabaseUnavailable } from '../db/connection';
import type { Logger } from '../log';
import { ReportError } from './errors';
import { ReportReader } from './report-reader';
import type { IngestTrust } from './trust';
import { DatabaseUnavailableError, type ReportWriter } from './writer';

/** The vendor's example receiver serves `/DeviceStatus`; `/api/device-status` is ours. */
export const INGEST_PATHS = ['/DeviceStatus', '/api/device-status'] as const;

export interface IngestOptions {
  maxBodyBytes: number;
  maxDevices: number;
  /** Take the client address from the left-most X-Forwarded-For entry. */
  trustProxy: boolean;
}

const RETRY_AFTER_SECONDS = 5;

const INGEST_PATHS_LOWER: ReadonlySet<string> = new Set(INGEST_PATHS.map((p) => p.toLowerCase()));

/**
 * The ingest paths in any letter case, with or without a trailing slash (the URL is typed into each
 * box by hand), optionally followed by `/<secret>` (INGEST_POLICY=token). Undefined for other paths.
 */
export function matchIngestPath(pathname: string): { secret?: string } | undefined {
  const path = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
  if (INGEST_PATHS_LOWER.has(path.toLowerCase())) return {};
  const slash = path.lastIndexOf('/');
  if (slash <= 0 || !INGEST_PATHS_LOWER.has(path.slice(0, slash).toLowerCase())) return undefined;
  const secret = path.slice(slash + 1);
  return secret.length > 0 && secret.length <= 256 ? { secret } : undefined;
}

function send(res: ServerResponse, status: number, body: unknown, headers: string[] = []): void {
  const text = JSON.stringify(body);
  // Names and values in one list: node writes them as they are, with no object to walk.
  res.writeHead(status, ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(text)), ...headers]);
  res.end(text);
}

/** Boxes send JSON; a missing Content-Type is tolerated, a different one is refused. */
function checkContentType(req: IncomingMessage): void {
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (type && type !== 'application/json' && !type.endsWith('+json')) {
    throw new ReportError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type ${type} is not accepted; send application/json.`);
  }
  const encoding = req.headers['content-encoding']?.toLowerCase();
  if (encoding && encoding !== 'identity') {
    throw new ReportError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not accepted; send the body uncompressed.`);
  }
}

function tooLarge(limit: number): ReportError {
  return new ReportError(413, 'PAYLOAD_TOO_LARGE', `The body is larger than ${limit} bytes.`);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume(); // discard the rest so the client can read our answer
        reject(tooLarge(limit));
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!ended) reject(new ReportError(400, 'ABORTED', 'The client closed the connection before the body ended.'));
    });
  });
}

/**
 * `POST /DeviceStatus` and `POST /api/device-status`: either report format in, `200` with a summary
 * once the report's effects are committed, or `4xx`/`503` with `{"error": {code, message, path}}`.
 */
export function createIngestHandler(
  writer: ReportWriter,
  trust: IngestTrust,
  options: IngestOptions,
  log: Logger,
  /** Told each answer's status and how long the report took (ms, to its answer being written), for metrics. */
  onAnswered?: (status: number, ms: number) => void,
) {
  const reader = new ReportReader({ maxDevices: options.maxDevices });
  return async function handleIngest(req: IncomingMessage, res: ServerResponse, secret?: string): Promise<void> {
    const started = performance.now();
    try {
      if (req.method !== 'POST') {
        throw new ReportError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not accepted here; boxes POST their reports.`);
      }
      checkContentType(req);
      const address = clientAddress(req, options.trustProxy);
      // Nothing to check (no secret, no rate): no promise to wait for at thousands of reports a second.
      const owner = trust.checksRequest(secret)
        ? await trust.admitRequest(address, secret).catch((error: unknown) => {
            throw isDatabaseUnavailable(error) ? new DatabaseUnavailableError(error) : error;
          })
        : undefined;
      const body = await readBody(req, options.maxBodyBytes);
      const report = reader.read(body);
      const { mustExist } = trust.admitReport(report, owner);
      const applied = await writer.write({ report, receivedAt: new Date(), address, mustExist });
      send(res, 200, {
        boxId: Buffer.from(`Box:${applied.boxId}`).toString('base64'),
        licenseKey: applied.licenseKey,
        format: applied.format,
        devices: applied.devices,
        changes: applied.changes,
        warnings: applied.warnings,
      });
    } catch (error) {
      if (res.headersSent) return;
      if (error instanceof ReportError) {
        const headers: string[] = [];
        if (error.status === 503) headers.push('retry-after', String(RETRY_AFTER_SECONDS));
        if (error.status === 429) headers.push('retry-after', String((error as { retryAfterSeconds?: number }).retryAfterSeconds ?? 1));
        if (error.status === 405) headers.push('allow', 'POST');
        if (error.status === 413) headers.push('connection', 'close');
        send(res, error.status, error, headers);
      } else {
        log.error({ err: error }, 'ingest failed');
        send(res, 500, { error: { code: 'INTERNAL', message: 'The report could not be stored because of a gateway fault.', path: null } });
      }
    }
    // A client that hung up mid-body was not answered.
    if (onAnswered && !res.socket?.destroyed) onAnswered(res.statusCode, performance.now() - started);
  };
}
