import type fc from 'fast-check';
import JSON5 from 'json5';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NEWER_FORMAT_EXAMPLE, OLDER_FORMAT_TABLE } from '../fixtures/seed-examples';
import { newerReport, olderReport } from '../graphql/fleet-fixture';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { storedRowsText, storedState } from '../helpers/snapshot';
import { ANSWER_TIMEOUT_MS, FUZZ_TEST_TIMEOUT_MS, fuzz, preview, RequestCounter } from './fuzz';
import { aimedAtStoredCase, buildReportRequest, describeReportCase, incompressible, malformedReportCase, mutatedReportCase, validReportCase, type ReportCase, type ReportRequest } from './report-cases';

/**
 * Thousands of random and mutated reports against one gateway: every answer is below 500, every refusal
 * is `{"error": {code, message, path}}` with a known code, the process stays healthy, and what was
 * refused changed nothing. Fuzz reports name boxes of their own (FZ<n>), so a 200 may only create or
 * change the box it names (counted here); reports aimed at the stored boxes carry a defect and must all
 * be refused, and those boxes must be exactly as they were.
 */

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_DEVICES = 4096;

/** Every code a refused report may carry (src/ingest/, src/app.ts). */
const REFUSAL_CODES = new Set([
  'ABORTED',
  'CONFLICTING_LICENSE_KEYS',
  'DUPLICATE_DEVICE_ID',
  'INVALID_DEVICE',
  'INVALID_DEVICES',
  'INVALID_DEVICE_ID',
  'INVALID_JSON',
  'INVALID_LICENSE_KEY',
  'INVALID_REPORT',
  'METHOD_NOT_ALLOWED',
  'MISSING_DEVICES',
  'MISSING_LICENSE_KEY',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'TOO_MANY_DEVICES',
  'UNIDENTIFIABLE_DEVICE',
  'UNSUPPORTED_MEDIA_TYPE',
]);

let gateway: TestGateway;
const counter = new RequestCounter();
/** How often each answer came, printed at the end: the fuzz must reach every refusal, and acceptance. */
const answers = new RequestCounter();
/** Licence key → reports answered 200 for it (by the answer's `licenseKey`). */
const accepted = new Map<string, number>();
/** The stored boxes' licence keys; aimed-at-stored cases use them. */
let storedKeys: string[] = [];
let before: Awaited<ReturnType<typeof storedRowsText>>;
let started = 0;
/** json5 (the lenient parser, in process here) warns on stderr about U+2028/U+2029 in strings; counted, not printed. */
let json5Warnings = 0;

beforeAll(async () => {
  const warn = console.warn.bind(console);
  vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('JSON5:')) json5Warnings++;
    else warn(...args);
  });
  gateway = await startGateway({
    ingestMaxBodyBytes: MAX_BODY_BYTES,
    ingestMaxDevices: MAX_DEVICES,
    // Nothing but fuzz input may change a row during the run: no box goes offline meanwhile.
    offlineMinSeconds: 86_400,
    // Thousands of reports from one address are the point here, not a limit to hit.
    rateLimitIngestPerAddress: 0,
  });
  // The stored fleet: the vendor's newer example verbatim, the older format's table, and boxes with history.
  const stored = [
    { body: NEWER_FORMAT_EXAMPLE },
    { body: OLDER_FORMAT_TABLE },
    { body: newerReport('KEPT-NEW-1', [{ id: 'a' }, { id: 'b', status: 'offline' }, { id: 'c', type: 'photo' }]) },
    { body: olderReport('KEPT-OLD-1', [{ id: 'x' }, { id: 'y', status: 'offline' }]) },
    { body: newerReport('KEPT-NEW-2', [{ id: 'p' }, { id: 'q' }]) },
    // Changes: b comes online, c is removed, d is new; y comes online.
    { body: newerReport('KEPT-NEW-1', [{ id: 'a' }, { id: 'b' }, { id: 'd', status: 'weird' }]) },
    { body: olderReport('KEPT-OLD-1', [{ id: 'x' }, { id: 'y' }]) },
  ];
  for (const { body } of stored) {
    const answer = await postReport(gateway.url, body);
    expect(answer.status, answer.text).toBe(200);
  }
  storedKeys = (await storedState(gateway.sql)).boxes.map((b) => b.license_key as string);
  expect(storedKeys).toHaveLength(5);
  before = await storedRowsText(gateway.sql);
  started = performance.now();
});

afterAll(async () => {
  console.info(`report fuzz: ${counter.summary()} requests in ${((performance.now() - started) / 1000).toFixed(1)} s; json5 warnings on stderr: ${json5Warnings}\nanswers: ${answers.summary()}\nknown bugs hit: ${knownBugHits.summary()}`);
  vi.restoreAllMocks();
  await gateway?.close();
});

interface Answer {
  status: number;
  contentType: string | null;
  text: string;
}

async function send(request: ReportRequest): Promise<Answer> {
  try {
    const response = await fetch(`${gateway.url}${request.path}`, {
      method: request.method,
      headers: request.headers,
      body: request.body === undefined ? undefined : Buffer.from(request.body),
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    return { status: response.status, contentType: response.headers.get('content-type'), text: await response.text() };
  } catch (error) {
    const cause = error instanceof Error ? `${error.name}: ${error.message}${error.cause ? ` (${String(error.cause)})` : ''}` : String(error);
    throw new Error(`no answer (${cause})`);
  }
}

/** Thrown instead of a failure that is a known bug. */
class KnownBugHit extends Error {}

/** Sends one case and checks its answer; records accepted reports. Throws with what went wrong. */
async function check(c: ReportCase): Promise<void> {
  try {
    await checkOne(c);
  } catch (error) {
    if (!(error instanceof KnownBugHit)) throw error;
  }
}

async function checkOne(c: ReportCase): Promise<void> {
  const request = buildReportRequest(c, { storedKeys, maxBodyBytes: MAX_BODY_BYTES, maxDevices: MAX_DEVICES });
  const answer = await send(request);
  const fail = (why: string): never => {
    const bug = FAIL_ON_KNOWN_BUGS ? undefined : KNOWN_BUGS.find((b) => b.matches(request, answer));
    if (bug) {
      knownBugHits.add(bug.id);
      throw new KnownBugHit(bug.id);
    }
    throw new Error(`${why}\n  request: ${request.method} ${request.path} ${JSON.stringify(request.headers)} body ${preview(request.body ? Buffer.from(request.body).toString('utf8') : '', 400)}\n  answer: ${answer.status} ${preview(answer.text, 400)}`);
  };
  if (answer.status >= 500) fail(`status ${answer.status}`);
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    fail('the answer is not JSON');
  }
  if (answer.status === 200) {
    const summary = body as Record<string, unknown>;
    if (typeof summary.licenseKey !== 'string' || typeof summary.boxId !== 'string' || typeof summary.devices !== 'number' || typeof summary.changes !== 'number' || !Array.isArray(summary.warnings)) {
      fail('a 200 without the summary');
    }
    answers.add('200');
    const key = summary.licenseKey as string;
    accepted.set(key, (accepted.get(key) ?? 0) + 1);
    if (storedKeys.includes(key)) fail(`a report for stored box ${key} was accepted`);
  } else {
    if (answer.contentType !== 'application/json; charset=utf-8') fail(`content type ${answer.contentType}`);
    const error = (body as { error?: Record<string, unknown> }).error;
    const exact = body !== null && typeof body === 'object' && Object.keys(body).length === 1 && error && Object.keys(error).sort().join() === 'code,message,path';
    if (!exact || typeof error.code !== 'string' || typeof error.message !== 'string' || error.message === '' || !(error.path === null || typeof error.path === 'string')) {
      fail('a refusal not shaped {"error": {code, message, path}}');
    }
    if (!REFUSAL_CODES.has(error!.code as string)) fail(`unknown code ${String(error!.code)}`);
    answers.add(`${answer.status} ${String(error!.code)}`);
  }
  const expected = request.expected;
  if (expected && 'accept' in expected && answer.status !== 200) fail('a valid report was refused');
  if (expected && 'refuse' in expected && answer.status === 200) fail('a report with a defect was accepted');
  if (expected && 'status' in expected) {
    const code = (body as { error?: { code?: string } }).error?.code;
    if (answer.status !== expected.status || code !== expected.code) fail(`expected ${expected.status} ${expected.code}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Bugs this fuzz found and that are still open. Each has a minimal reproduction at the end of this file,
// which fails until it is fixed; the properties count answers that match one (narrowly) instead of
// failing on it again with every seed. Once a bug is fixed, its entry goes and its reproduction stays.

/** The device names of a body, if it parses (strictly or as JSON5). */
function deviceNames(body: Uint8Array | undefined): string[] {
  if (!body) return [];
  let value: unknown;
  try {
    value = JSON5.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return [];
  }
  const lists = value && typeof value === 'object' ? Object.values(value as Record<string, unknown>).filter(Array.isArray) : [];
  return lists.flatMap((list) => (list as unknown[]).flatMap((d) => (d && typeof d === 'object' ? [(d as Record<string, unknown>).media_device_name, (d as Record<string, unknown>).ep_name] : []))).filter((n): n is string => typeof n === 'string');
}

const KNOWN_BUGS: Array<{ id: string; matches: (request: ReportRequest, answer: Answer) => boolean }> = [
  // Open bugs the fuzz has found go here (with where they come from) until fixed; none are open.
];
const knownBugHits = new RequestCounter();
/** `FUZZ_KNOWN_BUGS=fail`: the properties fail on the known bugs too (to see them shrink, or to check a fix). */
const FAIL_ON_KNOWN_BUGS = process.env.FUZZ_KNOWN_BUGS === 'fail';

const TIMEOUT = FUZZ_TEST_TIMEOUT_MS;

function run(name: string, cases: fc.Arbitrary<ReportCase>, runs: number) {
  return fuzz({ name, cases, runs, counter, describe: describeReportCase }, check);
}

describe('report fuzz', () => {
  it('valid reports of both formats and the vendor examples are accepted', { timeout: TIMEOUT }, async () => {
    await run('valid', validReportCase, 60);
  });

  it('mutated reports: below 500, refusals well formed', { timeout: TIMEOUT }, async () => {
    await run('mutated', mutatedReportCase, 210);
  });

  it('bodies that are no report, sent every way', { timeout: TIMEOUT }, async () => {
    await run('malformed', malformedReportCase, 90);
  });

  it('reports for stored boxes with a defect are all refused', { timeout: TIMEOUT }, async () => {
    await run('aimed at stored boxes', aimedAtStoredCase(storedKeys.length), 60);
  });

  it('what was refused changed nothing: stored boxes byte for byte, other boxes only by their 200s', async () => {
    const after = await storedRowsText(gateway.sql);
    const storedIds = new Set(before.boxes.map((b) => b.box_id));
    const ofStored = <T extends { box_id: number }>(rows: T[]) => rows.filter((r) => storedIds.has(r.box_id));
    expect(ofStored(after.boxes)).toEqual(before.boxes);
    expect(ofStored(after.reports)).toEqual(before.reports);
    expect(ofStored(after.devices)).toEqual(before.devices);
    expect(ofStored(after.events)).toEqual(before.events);

    // Every other box exists because of its 200s, and counts exactly as many reports: a refused report
    // for a box (fuzz keys repeat across cases) did not count, and no box exists from refusals alone.
    const boxes = (await gateway.sql.query<{ license_key: string; report_count: string }>('select license_key, report_count from boxes where not (id = any($1::int[]))', [[...storedIds]])).rows;
    const counted = Object.fromEntries(boxes.map((b) => [b.license_key, Number(b.report_count)]));
    const answered = Object.fromEntries([...accepted].filter(([key]) => !storedKeys.includes(key)));
    expect(counted).toEqual(answered);
    expect(boxes.length).toBeGreaterThan(100);
  });

  it('the gateway is healthy afterwards and takes reports as before', async () => {
    const health = await fetch(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
    const again = await postReport(gateway.url, newerReport('KEPT-NEW-2', [{ id: 'p' }, { id: 'q' }]));
    expect(again.status).toBe(200);
    expect(again.json.changes).toBe(0);
    // 420 runs of 12 reports; with the GraphQL fuzz (test/fuzz/graphql.test.ts, 5,976) more than 10,000 requests.
    expect(counter.total).toBeGreaterThanOrEqual(5_040);
  });

  // Open. Postgres refuses an index entry over 2,704 bytes (devices_name_idx on the name), the store's
  // statement fails and the report is answered 500 (nothing is stored; other reports of its batch pass).
  it('a device name of 2,800 characters that do not compress: refused or stored, not a 500', async () => {
    const name = incompressible(2_800);
    const answer = await postReport(gateway.url, { mq_license_key: 'FZ-LONG-NAME', media_devices: [{ media_device_id: 'a', media_device_name: name }] });
    expect(answer.status, answer.text).toBeLessThan(500);
  });
});
