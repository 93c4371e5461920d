import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log';

/** A logger at `level` whose JSON lines are kept in `lines`, for tests of what the gateway writes to its log. */
export function capturedLogger(level = 'trace'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger(level, sink), lines };
}
