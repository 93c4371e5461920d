import http from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkStored, describeTally, ReportLoad } from '../../bench/lib/acknowledged-reports';
import { createTestDatabase } from '../helpers/database';
import { postReport } from '../helpers/gateway';
import { spawnGateway, type GatewayProcess } from '../helpers/process';
import { subscriptionSetUps, wsClient, wsSubscribe } from '../helpers/subscriptions';

/** The bound: SIGTERM to exit. */
const EXIT_BOUND_MS = 10_000;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
const gateways: GatewayProcess[] = [];
const loads: ReportLoad[] = [];
const clients: Array<ReturnType<typeof wsClient>> = [];

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  for (const load of loads) await load.close();
  for (const client of clients) await client.dispose();
  for (const gateway of gateways) if (gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill('SIGKILL');
  await database?.drop();
});

const probe = (licenseKey: string, status: string) => ({
  mq_license_key: licenseKey,
  media_devices: [{ media_device_id: 'cam', media_device_status: status, media_device_type: 'rtsp' }],
});

/**
 * A report whose body is still arriving when the signal comes: headers and half the body now,
 * the rest when `finish()` is called. Resolves with the answer, or rejects if the connection breaks.
 */
function slowReport(url: string, body: unknown, agent: http.Agent | false = false) {
  const bytes = Buffer.from(JSON.stringify(body));
  const half = Math.floor(bytes.length / 2);
  let settle!: { resolve: (value: { status: number; text: string; connection?: string }) => void; reject: (error: Error) => void };
  const answer = new Promise<{ status: number; text: string; connection?: string }>((resolve, reject) => (settle = { resolve, reject }));
  const request = http.request(`${url}/DeviceStatus`, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': bytes.length },
  });
  request.on('response', (response) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (text += chunk));
    response.on('end', () => settle.resolve({ status: response.statusCode ?? 0, text, connection: response.headers.connection }));
    response.on('error', settle.reject);
  });
  request.on('error', settle.reject);
  request.flushHeaders();
  request.write(bytes.subarray(0, half));
  return { answer, finish: () => request.end(bytes.subarray(half)) };
}

/** A GET on a connection of its own: the status, or the error code when the connection is refused or broken. */
function freshGet(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const request = http.get(`${url}/healthz`, { agent: false, timeout: 5_000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

it('SIGTERM under load: answers the reports in flight, closes websockets with 1001, refuses new connections, exits 0 within 10 s', { timeout: 120_000 }, async () => {
  const gateway = await spawnGateway({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'warn' });
  gateways.push(gateway);
  const { url } = gateway;

  // A subscriber, known to be live: it received a change.
  const first = await postReport(url, probe('FAULT-TERM-PROBE', 'online'));
  expect(first.status).toBe(200);
  const client = wsClient(url);
  clients.push(client);
  const setUps = await subscriptionSetUps(url);
  const sub = wsSubscribe(client, `subscription ($boxes: [ID!]) { deviceStatusChanged(filter: { boxes: $boxes }) { toStatus } }`, { boxes: [first.json.boxId] });
  await setUps.reach(1);
  expect((await postReport(url, probe('FAULT-TERM-PROBE', 'offline'))).status).toBe(200);
  expect((await sub.next(15_000)).data.deviceStatusChanged.toStatus).toBe('OFFLINE');

  const load = new ReportLoad({ url, boxes: 16, devicesPerBox: 4, retryPauseMs: 100, timeoutMs: 30_000 });
  loads.push(load);
  load.start();
  await load.until(() => load.total.acknowledged >= 300, 60_000, '300 reports acknowledged before SIGTERM');

  // In flight at the signal: a report whose body is half sent (the server has its headers), and every
  // box's current report. The boxes send nothing new after the signal (that case is the test below).
  const slow = slowReport(url, probe('FAULT-TERM-SLOW', 'online'));
  await new Promise((r) => setTimeout(r, 500));
  const signalled = Date.now();
  gateway.child.kill('SIGTERM');
  const loadStopped = load.stop();
  setTimeout(slow.finish, 300);

  expect((await client.closed).code).toBe(1001);

  // New connections are refused once the server has closed (the process may be gone by then).
  const fresh: Array<number | string> = [];
  while (Date.now() - signalled < EXIT_BOUND_MS) {
    fresh.push(await freshGet(url));
    if (fresh.at(-1) === 'ECONNREFUSED') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const refusedWhileRunning = gateway.child.exitCode === null;
  expect(fresh.at(-1)).toBe('ECONNREFUSED');
  const lateClient = wsClient(url);
  clients.push(lateClient);
  expect((await lateClient.closed).code).not.toBe(1000); // never connected

  const exitCode = await gateway.exited;
  const exitMs = Date.now() - signalled;
  console.info(
    `exited with ${exitCode} ${exitMs} ms after SIGTERM; fresh connections after the 1001: ${fresh.join(', ')}` +
      ` (refused while the process was ${refusedWhileRunning ? 'still running' : 'already gone'}); ${describeTally(load.total)}`,
  );
  expect(exitCode, gateway.output().slice(-4000)).toBe(0);
  expect(exitMs).toBeLessThan(EXIT_BOUND_MS);

  // The reports in flight got their answers: 200 (or the documented 503), never another status or a hang.
  await loadStopped;
  const slowAnswer = await slow.answer;
  expect(slowAnswer.status, slowAnswer.text).toBe(200);
  expect(load.total.otherAnswers, load.total.samples.join('\n')).toBe(0);
  expect(load.total.timeouts).toBe(0);

  // Every 200 is stored, the slow report's included.
  const check = await checkStored(database.url, load);
  console.info(`${check.acknowledged} acknowledged, ${check.stored} stored, ${check.lost} lost; ${check.unanswered} unanswered`);
  expect(check.lostDetails).toEqual([]);
  expect(check.lost).toBe(0);
  const sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  try {
    const { rows } = await sql.query(`select d.status from devices d join boxes b on b.id = d.box_id where b.license_key = 'FAULT-TERM-SLOW'`);
    expect(rows).toEqual([{ status: 'online' }]);
  } finally {
    await sql.end();
  }
});

// Under steady load every box's connection is kept alive: if the gateway went on taking reports on
// them after SIGTERM, writer.drain() would wait for a queue they refill and the exit would come late.
// Answers after the signal say `Connection: close`; a request that comes anyway gets 503 SHUTTING_DOWN.
it('SIGTERM: a connection kept alive takes no new report once its report in flight is answered', { timeout: 60_000 }, async () => {
  const gateway = await spawnGateway({ DATABASE_URL: database.url, PORT: '0', LOG_LEVEL: 'warn' });
  gateways.push(gateway);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const inFlight = slowReport(gateway.url, probe('FAULT-TERM-KEEPALIVE', 'online'), agent);
    await new Promise((r) => setTimeout(r, 500));
    const signalled = Date.now();
    gateway.child.kill('SIGTERM');
    setTimeout(inFlight.finish, 300);
    const answer = await inFlight.answer;
    expect(answer.status, answer.text).toBe(200);

    // The next report of the same box, on the same agent, a second after the signal.
    await new Promise((r) => setTimeout(r, Math.max(0, signalled + 1_000 - Date.now())));
    const next = slowReport(gateway.url, probe('FAULT-TERM-KEEPALIVE', 'offline'), agent);
    next.finish();
    const nextAnswer = await next.answer.then(
      (a) => `HTTP ${a.status}`,
      (error: NodeJS.ErrnoException) => error.code ?? error.message,
    );
    console.info(`in-flight answer: ${answer.status}, connection: ${answer.connection ?? '(keep-alive)'}; a second after SIGTERM the next report got ${nextAnswer}`);
    expect(nextAnswer).not.toBe('HTTP 200');
    expect(await gateway.exited).toBe(0);
  } finally {
    agent.destroy();
  }
});
