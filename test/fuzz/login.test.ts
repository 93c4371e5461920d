import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newerReport } from '../graphql/fleet-fixture';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { storedRowsText } from '../helpers/snapshot';
import { login, loginQuery, operate, registerBox, registeredBox } from '../onboarding/helpers';
import { ANSWER_TIMEOUT_MS, CONCURRENCY, FUZZ_TEST_TIMEOUT_MS, fuzz, preview, RequestCounter } from './fuzz';
import { buildLoginRequest, describeLoginRequest, loginCase, type LoginCase, type LoginRequest, type StoredLoginBox } from './login-cases';

/**
 * Thousands of box logins (/BoxLogin) as real and broken boxes send them, over raw HTTP against one
 * gateway: every answer is below 500 and either the documented 200 body or `{"error": {code, message}}`
 * with a code its status allows; each is the answer the README's rules call for; and afterwards the
 * stored boxes changed only as their 200s allow (binding an unbound key, the login's time, address and
 * monitor settings) and no box was created.
 */

/** The codes each refusal status may carry (README "Box login"). */
const CODES_BY_STATUS: Record<number, Array<string | number>> = {
  400: ['MISSING_ARGUMENTS', 'INVALID_ARGUMENTS'],
  404: [600000],
  405: ['METHOD_NOT_ALLOWED'],
  409: [600002],
  413: ['PAYLOAD_TOO_LARGE'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
  429: ['RATE_LIMITED'],
};
/** What a 200 may change of a box row: the binding only while unbound, a period only while none is set. */
const LOGIN_COLUMNS = ['last_login_at', 'last_login_address', 'monitor_url'];
const BIND_COLUMNS = ['hardware_serial', 'hardware_bound_at'];
const DEFAULT_PERIOD = 60;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One fuzz target: a gateway, its stored boxes as they were, and what its 200s did. */
interface Target {
  gateway: TestGateway;
  agent: Agent;
  stored: StoredLoginBox[];
  before: Map<string, Record<string, unknown>>;
  /** Licence key -> serials answered 200. */
  accepted: Map<string, Set<string>>;
  answers: RequestCounter;
  rateLimited: boolean;
}

function send(target: Target, r: LoginRequest): Promise<Answer> {
  const url = new URL(target.gateway.url);
  return new Promise((resolve, reject) => {
    const headers = { ...r.headers, ...(r.body && !r.chunked ? { 'content-length': String(r.body.length) } : {}) };
    // The answer's deadline: the request is aborted (an error below) if it has not ended by then.
    const signal = AbortSignal.timeout(ANSWER_TIMEOUT_MS);
    const req = request({ host: url.hostname, port: url.port, method: r.method, path: r.target, headers, agent: target.agent, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (error) => reject(new Error(signal.aborted ? `no answer within ${ANSWER_TIMEOUT_MS} ms` : `no answer (${error.message})`)));
    if (r.body && r.chunked) {
      // In pieces, so the gateway sees the size only as it reads.
      for (let at = 0; at < r.body.length; at += 1024) req.write(r.body.subarray(at, at + 1024));
      req.end();
    } else req.end(r.body);
  });
}

async function check(target: Target, c: LoginCase): Promise<void> {
  const r = buildLoginRequest(c, target.stored);
  const answer = await send(target, r);
  const fail = (why: string): never => {
    throw new Error(`${why}\n  request: ${describeLoginRequest(r)}\n  expected: ${JSON.stringify(r.expected)}\n  answer: ${answer.status} ${preview(answer.text, 400)}`);
  };
  if (answer.status >= 500) fail(`status ${answer.status}`);
  if (answer.headers['content-type'] !== 'application/json; charset=utf-8') fail(`content type ${String(answer.headers['content-type'])}`);
  let body: any;
  if (r.method === 'HEAD') {
    if (answer.status !== 405 && !(target.rateLimited && answer.status === 429)) fail('HEAD not refused');
    target.answers.add(`${answer.status} HEAD`);
    return;
  }
  try {
    body = JSON.parse(answer.text);
  } catch {
    fail('the answer is not JSON');
  }
  if (answer.status === 200) {
    if (Object.keys(body).sort().join() !== 'media_device_monitor_report_period,media_device_monitor_url') fail('a 200 body with other fields');
    target.answers.add('200');
  } else {
    const error = body?.error;
    const exact = Object.keys(body ?? {}).join() === 'error' && error && Object.keys(error).sort().join() === 'code,message';
    if (!exact || typeof error.message !== 'string' || error.message === '') fail('a refusal not shaped {"error": {code, message}}');
    if (!CODES_BY_STATUS[answer.status]?.includes(error.code)) fail(`code ${String(error.code)} with status ${answer.status}`);
    if (answer.status === 429 && !target.rateLimited) fail('rate limited with the limit off');
    if (answer.status === 429 && !/^\d+$/.test(String(answer.headers['retry-after']))) fail('429 without Retry-After');
    target.answers.add(`${answer.status} ${String(error.code)}`);
  }
  // With the limit on, any login past the method check may be refused for the rate alone.
  if (answer.status === 429 && r.method !== 'GET' && r.method !== 'POST') fail('a 429 before the method check');
  if (answer.status === 429) return;

  if ('status' in r.expected) {
    if (answer.status !== r.expected.status || body.error?.code !== r.expected.code) fail(`expected ${r.expected.status} ${r.expected.code}`);
    return;
  }
  const { key, serial } = r.expected.login;
  const box = target.stored.find((b) => b.key === key);
  const allowed = !box || box.removed ? [404] : box.serial === null ? [200, 409] : [box.serial === serial ? 200 : 409];
  if (!allowed.includes(answer.status)) fail(`expected ${allowed.join(' or ')}`);
  if (answer.status === 200) {
    const row = target.before.get(key)!;
    const period = (row.report_period_seconds as number | null) ?? DEFAULT_PERIOD;
    const url = `${r.hostOrigin ?? target.gateway.url}/DeviceStatus`;
    if (body.media_device_monitor_url !== url || body.media_device_monitor_report_period !== period) fail(`expected ${url} every ${period} s`);
    const serials = target.accepted.get(key) ?? new Set<string>();
    target.accepted.set(key, serials.add(serial));
  }
}

async function boxRows(gateway: TestGateway): Promise<Map<string, Record<string, unknown>>> {
  const { rows } = await gateway.sql.query<{ license_key: string; row: Record<string, unknown> }>('select license_key, to_jsonb(b) as row from boxes b order by id');
  return new Map(rows.map((r) => [r.license_key, r.row]));
}

/** Stored boxes unchanged but by their 200s, and no box created. */
async function checkStoredBoxes(target: Target): Promise<void> {
  const after = await boxRows(target.gateway);
  expect([...after.keys()]).toEqual([...target.before.keys()]);
  for (const [key, before] of target.before) {
    const row = after.get(key)!;
    const serials = target.accepted.get(key);
    const changed = Object.keys(row).filter((column) => JSON.stringify(row[column]) !== JSON.stringify(before[column]));
    if (!serials) {
      expect(changed, `${key} changed without a 200`).toEqual([]);
      continue;
    }
    const may = [...LOGIN_COLUMNS, ...(before.hardware_serial === null ? BIND_COLUMNS : []), ...(before.report_period_seconds === null ? ['report_period_seconds'] : [])];
    expect(changed.filter((column) => !may.includes(column)), `${key}: columns a login may not change`).toEqual([]);
    // Every 200 of a key named the serial it is bound to now.
    expect([...serials], key).toEqual([row.hardware_serial]);
    expect(row.report_period_seconds).toBe(before.report_period_seconds ?? DEFAULT_PERIOD);
    expect(row.last_login_address).toBe('127.0.0.1');
  }
}

async function newTarget(gateway: TestGateway, rateLimited: boolean): Promise<Target> {
  return { gateway, agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }), stored: [], before: new Map(), accepted: new Map(), answers: new RequestCounter(), rateLimited };
}

/** The stored fleet: bound, unbound (registered or from a report), bound at registration, removed, a period set. */
async function storeBoxes(target: Target): Promise<void> {
  const { gateway } = target;
  const bind = async (key: string, serial: string) => expect((await login(gateway.url, loginQuery(key, serial))).status).toBe(200);
  for (const key of ['FZL-BOUND-0', 'FZL-BOUND-1', 'FZL-UNBOUND-0', 'FZL-UNBOUND-1', 'FZL-REMOVED-0', 'FZL-REMOVED-1']) await registeredBox(gateway, key);
  expect((await registerBox(gateway, { licenseKey: 'FZL-REGISTERED-SERIAL', hardwareSerial: 'HW-REG-1' })).__typename).toBe('RegisterBoxSuccess');
  expect((await postReport(gateway.url, newerReport('FZL-REPORTED', [{ id: 'a' }]))).status).toBe(200);
  await bind('FZL-BOUND-0', 'SN-FZL-BOUND-0');
  await gateway.sql.query("update boxes set report_period_seconds = 15 where license_key = 'FZL-BOUND-1'");
  await bind('FZL-BOUND-1', 'SN-FZL-BOUND-1');
  await bind('FZL-REMOVED-0', 'SN-FZL-REMOVED-0');
  for (const key of ['FZL-REMOVED-0', 'FZL-REMOVED-1']) {
    const { id } = (await operate(gateway, '{ boxes(first: 50) { nodes { id licenseKey } } }')).boxes.nodes.find((b: { licenseKey: string }) => b.licenseKey === key);
    await operate(gateway, 'mutation($id: ID!) { removeBox(boxId: $id) { __typename } }', { id });
  }
  target.before = await boxRows(gateway);
  target.stored = [...target.before].map(([key, row]) => ({ key, serial: row.hardware_serial as string | null, removed: row.removed_at !== null }));
  expect(target.stored.filter((b) => b.removed)).toHaveLength(2);
}

const counter = new RequestCounter();
let main: Target;
let others: Awaited<ReturnType<typeof storedRowsText>>;
let started = 0;

beforeAll(async () => {
  // Thousands of logins from one address are the point here, not a limit to hit; no box goes offline meanwhile.
  main = await newTarget(await startGateway({ rateLimitLoginPerAddress: 0, offlineMinSeconds: 86_400 }), false);
  await storeBoxes(main);
  others = await storedRowsText(main.gateway.sql);
  started = performance.now();
});

afterAll(async () => {
  console.info(`login fuzz: ${counter.summary()} requests in ${((performance.now() - started) / 1000).toFixed(1)} s\nanswers: ${main?.answers.summary()}\nknown bugs hit: none listed`);
  main?.agent.destroy();
  await main?.gateway.close();
});

const TIMEOUT = FUZZ_TEST_TIMEOUT_MS;

describe('login fuzz', () => {
  it('every login is answered as the rules say: below 500, the documented shapes and codes', { timeout: TIMEOUT }, async () => {
    await fuzz({ name: 'logins', cases: loginCase(8), runs: 500, counter, describe: (c) => describeLoginRequest(buildLoginRequest(c, main.stored)) }, (c) => check(main, c));
    // Every kind of answer was reached.
    for (const answer of ['200', '400 MISSING_ARGUMENTS', '400 INVALID_ARGUMENTS', '404 600000', '409 600002', '405 METHOD_NOT_ALLOWED', '413 PAYLOAD_TOO_LARGE', '415 UNSUPPORTED_MEDIA_TYPE']) {
      expect(main.answers.byName.get(answer) ?? 0, answer).toBeGreaterThan(0);
    }
  });

  it('stored boxes changed only by their 200s, no box was created, nothing else was touched', async () => {
    await checkStoredBoxes(main);
    const after = await storedRowsText(main.gateway.sql);
    expect(after.reports).toEqual(others.reports);
    expect(after.devices).toEqual(others.devices);
    expect(after.events).toEqual(others.events);
    expect((await main.gateway.sql.query('select count(*)::int as n from box_config_changes')).rows[0].n).toBe(0);
    expect((await main.gateway.sql.query('select count(*)::int as n from box_ingest_tokens')).rows[0].n).toBe(0);
    expect(main.accepted.size).toBeGreaterThan(2);
  });

  it('with the rate limit on, a refusal for the rate is 429 with Retry-After and everything else holds', { timeout: TIMEOUT }, async () => {
    const limited = await newTarget(await startGateway({ rateLimitLoginPerAddress: 5, offlineMinSeconds: 86_400 }), true);
    try {
      await storeBoxes(limited);
      await fuzz({ name: 'logins, rate limited', cases: loginCase(8), runs: 20, counter, describe: (c) => describeLoginRequest(buildLoginRequest(c, limited.stored)) }, (c) => check(limited, c));
      expect(limited.answers.byName.get('429 RATE_LIMITED') ?? 0).toBeGreaterThan(0);
      await checkStoredBoxes(limited);
    } finally {
      limited.agent.destroy();
      await limited.gateway.close();
    }
  });

  it('the gateway is healthy afterwards and logs a stored box in as before', async () => {
    expect((await fetch(`${main.gateway.url}/readyz`)).status).toBe(200);
    expect((await login(main.gateway.url, loginQuery('FZL-BOUND-0', 'SN-FZL-BOUND-0'))).status).toBe(200);
    expect(counter.total).toBeGreaterThanOrEqual(6_000);
  });
});
