import { pino, type DestinationStream, type Logger } from 'pino';
import { redactLogLine } from './redaction/url-credentials';

export type { Logger };

/** API tokens and ingest secrets as the gateway issues them; any that reaches a log line is cut to its prefix. */
const SECRET = /\b(fg[ti]_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]{39}\b/g;

/**
 * Structured JSON logs on stdout; one logger per process, children per part. Logs never hold a
 * secret: credentials-shaped fields are redacted, and anything shaped like one of our tokens is cut
 * to its first characters before the line is written, as are the credentials of any URL in it (camera
 * URLs carry passwords). Licence keys are masked where they are logged (`maskLicenseKey`).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'fleetgate' },
      redact: {
        paths: ['authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'token', '*.token', 'connectionParams', '*.connectionParams'],
        censor: '[redacted]',
      },
      // Postgres errors carry the offending values in `detail` (e.g. "Key (license_key)=(…) already exists").
      serializers: {
        err: (error: Error) => {
          const serialized = pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
          delete serialized.detail;
          delete serialized.where;
          delete serialized.parameters;
          return serialized;
        },
      },
      hooks: { streamWrite: (line) => redactLogLine(line.includes('fg') ? line.replace(SECRET, '$1…') : line) },
    },
    destination,
  );
}
