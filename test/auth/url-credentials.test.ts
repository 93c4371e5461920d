import { sql } from 'drizzle-orm';
import pg from 'pg';
import { inject } from 'vitest';
import { afterAll, describe, expect, it } from 'vitest';
import { redactedSql } from '../../src/models/redacted-sql';
import { redactJsonCredentials, redactUrlCredentials } from '../../src/redaction/url-credentials';
import { createLogger } from '../../src/log';
import { selectRows } from '../../src/db/sql';

// The masking of URL credentials, as shown (JavaScript) and as searched and sorted (Postgres): the two
// must agree character for character, or a search could match what is not shown.

const CASES: Array<[string, string]> = [
  ['rtsp://admin:Hunter2@10.0.0.9/live', 'rtsp://***@10.0.0.9/live'],
  ['rtsp://admin@10.0.0.9:554/live', 'rtsp://***@10.0.0.9:554/live'],
  ['RTSP://Admin:p@ss/w0rd@10.0.0.9/live', 'RTSP://***@10.0.0.9/live'],
  ['http://10.0.0.9/snap.jpg?user=admin&password=s3cret&channel=1', 'http://10.0.0.9/snap.jpg?user=***&password=***&channel=1'],
  ['http://cam/x?access_token=abc;api_key=def#auth=ghi', 'http://cam/x?access_token=***;api_key=***#auth=***'],
  ['http://cam/x?Signature=abc&pwd=1&channel=2', 'http://cam/x?Signature=***&pwd=***&channel=2'],
  ['ROLES-0001__rtsp://admin:x@10.0.0.9/a', 'ROLES-0001__rtsp://***@10.0.0.9/a'],
  ['admin:Hunter2@10.0.0.9', '***@10.0.0.9'],
  ['cam rtsp://u:p@h/1 and rtsp://v:q@h/2', 'cam rtsp://***@h/1 and rtsp://***@h/2'],
  [`http://gw:8080/DeviceStatus/fgi_ABCD${'x'.repeat(39)}`, 'http://gw:8080/DeviceStatus/fgi_ABCD***'],
  // Nothing to mask: left as it is.
  ['rtsp://10.0.0.9/live', 'rtsp://10.0.0.9/live'],
  ['cam-01', 'cam-01'],
  ['10.0.0.9', '10.0.0.9'],
  ['lobby camera: north door', 'lobby camera: north door'],
  ['ops@example.com', 'ops@example.com'],
  ['http://cam/x?channel=1&subtype=0', 'http://cam/x?channel=1&subtype=0'],
  ['', ''],
];

const pool = new pg.Pool({ connectionString: inject('postgresUrl'), max: 1 });
afterAll(() => pool.end());

describe('redactUrlCredentials', () => {
  for (const [text, expected] of CASES) {
    it(`${JSON.stringify(text)} is shown as ${JSON.stringify(expected)}, in JavaScript and in Postgres`, async () => {
      expect(redactUrlCredentials(text)).toBe(expected);
      const [row] = await selectRows<{ redacted: string }>(pool, sql`select ${redactedSql(sql`${text}::text`)} as redacted`);
      expect(row!.redacted).toBe(expected);
    });
  }

  it('keeps null as null, in both', async () => {
    expect(redactUrlCredentials(null)).toBeNull();
    const [row] = await selectRows<{ redacted: string | null }>(pool, sql`select ${redactedSql(sql`null::text`)} as redacted`);
    expect(row!.redacted).toBeNull();
  });

  it('masks every string inside JSON, keys and nested values', () => {
    expect(redactJsonCredentials({ gateway_ip: '10.0.0.1', gateway_ext_data: { stream: ['rtsp://a:b@h/1', 3, null, true] } })).toEqual({
      gateway_ip: '10.0.0.1',
      gateway_ext_data: { stream: ['rtsp://***@h/1', 3, null, true] },
    });
  });
});

describe('log lines', () => {
  it('mask URL credentials inside each JSON string, never across fields', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (line: string) => lines.push(line) });
    log.error({ err: new Error('invalid input syntax: "rtsp://admin:Hunter2@10.0.0.9/live"'), path: 'x', contact: 'ops@example.com' }, 'http://cam/snap?password=s3cret&channel=1 failed');
    const line = JSON.parse(lines[0]!);
    expect(line.msg).toBe('http://cam/snap?password=***&channel=1 failed');
    expect(line.err.message).toBe('invalid input syntax: "rtsp://***@10.0.0.9/live"');
    expect(line.contact).toBe('ops@example.com');
    expect(line.path).toBe('x');
    expect(lines[0]).not.toMatch(/Hunter2|s3cret/);
  });
});
