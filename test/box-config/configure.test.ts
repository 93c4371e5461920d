import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { FAKE_BOX_MESSAGES, GETCONFIGS, SETCONFIGS } from '../helpers/fake-box';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { createToken } from '../helpers/tokens';
import { closedPort } from '../helpers/net';
import {
  auditRows,
  BoxConfigChangesQuery,
  BoxConfigQuery,
  boxRow,
  closeFakeBoxes,
  configure,
  ConfigureBoxMutation,
  fakeBox,
  PointBoxAtGatewayMutation,
  RegisterBoxMutation,
  registerFakeBox,
  send,
  unknownBoxId,
} from './operations';

// configureBox, pointBoxAtGateway and boxConfig through a real gateway, against real loopback HTTP
// servers that answer as a box does, and as boxes go wrong.

const TIMEOUT_MS = 1_500;
const URL_KEY = 'MEDIA_DEVICE_MONITOR_URL';
const PERIOD_KEY = 'MEDIA_DEVICE_MONITOR_REPORT_PEROID';
const NEW_URL = 'http://10.0.0.5:4000/DeviceStatus';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway({ boxApiTimeoutMs: TIMEOUT_MS });
});
afterAll(() => gateway?.close());
afterEach(closeFakeBoxes);

/** A BoxConfigChange as selected by ConfigChangeFields, with its varying parts left open. */
function change(boxId: string, fields: Record<string, unknown>) {
  return {
    id: expect.any(String),
    requestedBy: 'ADMIN_TOKEN (token #1)',
    requestedAt: expect.any(String),
    durationMs: expect.any(Number),
    httpStatus: null,
    response: null,
    errorCode: null,
    errorMessage: null,
    box: { id: boxId },
    ...fields,
  };
}

/** The box row's monitor settings are still as they were: nothing applied. */
async function expectUnchanged(id: string) {
  expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: null, report_period_seconds: null });
}

describe('configureBox against a working box', () => {
  it('sends the documented request, answers the echo, and keeps the settings on the box row and in the audit trail', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    const sent = { [URL_KEY]: NEW_URL, [PERIOD_KEY]: 30, GATE_PASS_MODE: 'allpass' };

    const result = await configure(gateway, { boxId: id, monitorUrl: NEW_URL, reportPeriodSeconds: 30, settings: { GATE_PASS_MODE: 'allpass' } });

    expect(box.requests).toHaveLength(1);
    const [request] = box.requests;
    expect(request!.method).toBe('POST');
    expect(request!.path).toBe(SETCONFIGS);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.body).toEqual({ config_dict: sent });
    expect(result).toEqual({
      __typename: 'ConfigureBoxSuccess',
      applied: sent,
      monitorUrl: NEW_URL,
      reportPeriodSeconds: 30,
      unconfirmedKeys: [],
      readBack: null,
      box: { id, monitorUrl: NEW_URL, configuredReportPeriodSeconds: 30, reportPeriodSeconds: 30 },
      change: change(id, { request: sent, target: `127.0.0.1:${box.port}`, outcome: 'APPLIED', httpStatus: 200, response: sent }),
    });
    expect(box.config).toMatchObject(sent);

    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: NEW_URL, report_period_seconds: 30 });
    const rows = await auditRows(gateway, id);
    expect(rows).toEqual([
      expect.objectContaining({
        requested_by: 'ADMIN_TOKEN (token #1)',
        request: sent,
        target: `127.0.0.1:${box.port}`,
        outcome: 'applied',
        http_status: 200,
        response: sent,
        error_code: null,
        error_message: null,
      }),
    ]);
    expect(rows[0]!.duration_ms).toBeGreaterThanOrEqual(0);
    expect(rows[0]!.requested_at).toBeInstanceOf(Date);

    const { box: read } = await query(gateway.url, BoxConfigChangesQuery, { id });
    expect(read).toMatchObject({ monitorUrl: NEW_URL, configuredReportPeriodSeconds: 30, reportPeriodSeconds: 30, apiAddress: '127.0.0.1', apiPort: box.port });
    expect(read!.configChanges.totalCount).toBe(1);
    expect(read!.configChanges.nodes).toEqual([
      { id: (result as { change: { id: string } }).change.id, outcome: 'APPLIED', requestedBy: 'ADMIN_TOKEN (token #1)', request: sent, errorCode: null, response: sent, target: `127.0.0.1:${box.port}`, box: { id } },
    ]);
  });

  it('records who asked: the name and id of the API token used', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    const operator = await createToken(gateway.url, 'operator', 'ops-console');
    const response = await send(gateway.url, ConfigureBoxMutation, { input: { boxId: id, reportPeriodSeconds: 10 } }, { token: operator.token });
    const tokenNumber = Buffer.from(operator.id, 'base64').toString().split(':')[1];
    expect(response.body.data?.configureBox).toMatchObject({ change: { requestedBy: `ops-console (token #${tokenNumber})` } });
    expect((await auditRows(gateway, id))[0]).toMatchObject({ requested_by: `ops-console (token #${tokenNumber})` });
  });

  it('a call with other settings only leaves the monitor URL and period on the box row as they were', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    await configure(gateway, { boxId: id, reportPeriodSeconds: 20 });
    const result = await configure(gateway, { boxId: id, settings: { MATCH_THRESHOLD: 0.9 } });
    expect(result).toMatchObject({ __typename: 'ConfigureBoxSuccess', applied: { MATCH_THRESHOLD: 0.9 }, monitorUrl: null, reportPeriodSeconds: null });
    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: null, report_period_seconds: 20 });
  });

  it('pages Box.configChanges newest first', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    for (const period of [11, 12, 13]) await configure(gateway, { boxId: id, reportPeriodSeconds: period });
    const first = (await query(gateway.url, BoxConfigChangesQuery, { id, first: 2 })).box!.configChanges;
    expect(first.totalCount).toBe(3);
    expect(first.nodes.map((n) => (n.request as Record<string, number>)[PERIOD_KEY])).toEqual([13, 12]);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const rest = (await query(gateway.url, BoxConfigChangesQuery, { id, first: 2, after: first.pageInfo.endCursor })).box!.configChanges;
    expect(rest.nodes.map((n) => (n.request as Record<string, number>)[PERIOD_KEY])).toEqual([11]);
    expect(rest.pageInfo.hasNextPage).toBe(false);
  });
});

describe('a box that refuses', () => {
  it.each([
    ['UNSUPPORT_CONTENT_TYPE', FAKE_BOX_MESSAGES.UNSUPPORT_CONTENT_TYPE],
    ['INVALID_REQUEST_JSON', FAKE_BOX_MESSAGES.INVALID_REQUEST_JSON],
    ['MISSING_ARGUMENTS', FAKE_BOX_MESSAGES.MISSING_ARGUMENTS],
  ])('%s (a request-level refusal) is BoxRejectedConfig with its code and message; the read-back fails too', async (code, message) => {
    const box = await fakeBox({ behavior: { kind: 'error', error: { code, message } } });
    const id = await registerFakeBox(gateway, box);
    const sent = { [URL_KEY]: NEW_URL, [PERIOD_KEY]: 15 };

    const result = await configure(gateway, { boxId: id, monitorUrl: NEW_URL, reportPeriodSeconds: 15 });

    expect(result).toEqual({
      __typename: 'BoxRejectedConfig',
      message,
      code,
      httpStatus: 400,
      otherKeysMayHaveApplied: true,
      readBack: { values: null, appliedKeys: [], unappliedKeys: [], failure: `Could not read the settings back: the box refused getconfigs: ${code} (${message})` },
      change: change(id, {
        request: sent,
        target: `127.0.0.1:${box.port}`,
        outcome: 'REJECTED',
        httpStatus: 400,
        response: { error: { code, message } },
        errorCode: code,
        errorMessage: message,
      }),
    });
    // The read-back asks for both keys with `{}`, then (refused) key by key: the first refusal ends it.
    expect(box.requests.map((r) => [r.path, r.body])).toEqual([
      [SETCONFIGS, { config_dict: sent }],
      [GETCONFIGS, {}],
      [GETCONFIGS, { config_name: URL_KEY }],
    ]);
    await expectUnchanged(id);
  });

  it.each([
    ['INVALID_ARGUMENTS', 'invalid value for GATE_PASS_MODE', 400],
    ['NAME_REPEAT_ERROR', 'name repeat', 200],
  ])('%s for the one key sent is BoxRejectedConfig, whatever the HTTP status; the read-back shows it did not apply', async (code, message, errorStatus) => {
    const box = await fakeBox({ config: { GATE_PASS_MODE: 'normal' }, refuse: { GATE_PASS_MODE: { code, message } }, errorStatus });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, settings: { GATE_PASS_MODE: 'sideways' } });

    expect(result).toEqual({
      __typename: 'BoxRejectedConfig',
      message,
      code,
      httpStatus: errorStatus,
      otherKeysMayHaveApplied: false,
      readBack: { values: { GATE_PASS_MODE: 'normal' }, appliedKeys: [], unappliedKeys: ['GATE_PASS_MODE'], failure: null },
      change: change(id, {
        request: { GATE_PASS_MODE: 'sideways' },
        target: `127.0.0.1:${box.port}`,
        outcome: 'REJECTED',
        httpStatus: errorStatus,
        response: { error: { code, message } },
        errorCode: code,
        errorMessage: message,
      }),
    });
    expect(box.requests.map((r) => [r.path, r.body])).toEqual([
      [SETCONFIGS, { config_dict: { GATE_PASS_MODE: 'sideways' } }],
      [GETCONFIGS, { config_name: 'GATE_PASS_MODE' }],
    ]);
    await expectUnchanged(id);
  });

  it('partial failure: the other keys applied; the read-back says which, and the box row keeps those', async () => {
    const error = { code: 'INVALID_ARGUMENTS', message: 'MATCH_THRESHOLD out of range' };
    const box = await fakeBox({ config: { [URL_KEY]: '', [PERIOD_KEY]: 60, MATCH_THRESHOLD: 0.8 }, refuse: { MATCH_THRESHOLD: error } });
    const id = await registerFakeBox(gateway, box);
    const sent = { [URL_KEY]: NEW_URL, [PERIOD_KEY]: 15, MATCH_THRESHOLD: 7 };

    const result = await configure(gateway, { boxId: id, monitorUrl: NEW_URL, reportPeriodSeconds: 15, settings: { MATCH_THRESHOLD: 7 } });

    expect(result).toEqual({
      __typename: 'BoxRejectedConfig',
      ...error,
      httpStatus: 400,
      otherKeysMayHaveApplied: true,
      readBack: {
        values: { [URL_KEY]: NEW_URL, [PERIOD_KEY]: 15, MATCH_THRESHOLD: 0.8 },
        appliedKeys: [URL_KEY, PERIOD_KEY],
        unappliedKeys: ['MATCH_THRESHOLD'],
        failure: null,
      },
      change: change(id, {
        request: sent,
        target: `127.0.0.1:${box.port}`,
        outcome: 'REJECTED',
        httpStatus: 400,
        response: { error },
        errorCode: error.code,
        errorMessage: error.message,
      }),
    });
    // The box reports to the new URL every 15 s now: offline detection must use that period.
    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: NEW_URL, report_period_seconds: 15 });
  });
});

describe('a box that misbehaves', () => {
  it('a hanging box is BoxTimedOut after the configured deadline, without a read-back', async () => {
    const box = await fakeBox({ behavior: { kind: 'hang' } });
    const id = await registerFakeBox(gateway, box);
    const started = performance.now();
    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 5 });
    const took = performance.now() - started;

    const target = `127.0.0.1:${box.port}`;
    expect(result).toEqual({
      __typename: 'BoxTimedOut',
      message: `The box at ${target} did not answer within ${TIMEOUT_MS} ms. The request was sent, so the box may have applied it; check with boxConfig.`,
      timeoutMs: TIMEOUT_MS,
      requestSent: true,
      target,
      change: change(id, {
        request: { [PERIOD_KEY]: 5 },
        target,
        outcome: 'TIMED_OUT',
        errorCode: 'TIMED_OUT',
        errorMessage: `No complete answer within ${TIMEOUT_MS} ms.`,
      }),
    });
    expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(took).toBeLessThan(TIMEOUT_MS + 5_000);
    expect((result as { change: { durationMs: number } }).change.durationMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(box.requests).toHaveLength(1);
    await box.waitForNoConnections();
    await expectUnchanged(id);
  });

  it('a closed port is BoxUnreachable (REFUSED), nothing sent and nothing read back', async () => {
    const port = await closedPort();
    const { registerBox } = await query(gateway.url, RegisterBoxMutation, { licenseKey: 'CFG-CLOSED', address: '127.0.0.1', apiPort: port });
    const id = (registerBox as { box: { id: string } }).box.id;
    const target = `127.0.0.1:${port}`;

    const result = await configure(gateway, { boxId: id, monitorUrl: NEW_URL });

    expect(result).toEqual({
      __typename: 'BoxUnreachable',
      message: `Could not reach the box at ${target}: connect ECONNREFUSED ${target}`,
      reason: 'REFUSED',
      requestSent: false,
      target,
      readBack: null,
      change: change(id, {
        request: { [URL_KEY]: NEW_URL },
        target,
        outcome: 'UNREACHABLE',
        errorCode: 'REFUSED',
        errorMessage: `connect ECONNREFUSED ${target}`,
      }),
    });
    await expectUnchanged(id);
  });

  it('a box that resets the connection after reading the request is BoxUnreachable (RESET), read back', async () => {
    const box = await fakeBox({ behavior: { kind: 'reset' } });
    const id = await registerFakeBox(gateway, box);
    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 9 });
    expect(result).toMatchObject({
      __typename: 'BoxUnreachable',
      reason: 'RESET',
      requestSent: true,
      readBack: { values: null, appliedKeys: [], unappliedKeys: [], failure: expect.stringMatching(/^Could not read the settings back: /) },
      change: { outcome: 'UNREACHABLE', errorCode: 'RESET' },
    });
    expect(box.requests.map((r) => r.path)).toEqual([SETCONFIGS, GETCONFIGS]);
    await expectUnchanged(id);
  });

  it('a redirect is BoxBadAnswer (REDIRECT) and is not followed', async () => {
    const elsewhere = await fakeBox();
    const location = `http://127.0.0.1:${elsewhere.port}${SETCONFIGS}`;
    const box = await fakeBox({ behavior: { kind: 'redirect', status: 307, location } });
    const id = await registerFakeBox(gateway, box);
    const target = `127.0.0.1:${box.port}`;

    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 5 });

    const message = 'The box answered HTTP 307 with no body (text/html): a redirect, never followed. Its content is not shown.';
    expect(result).toEqual({
      __typename: 'BoxBadAnswer',
      message,
      defect: 'REDIRECT',
      httpStatus: 307,
      contentType: 'text/html',
      bodyBytes: 0,
      bodyPreview: '',
      target,
      readBack: { values: null, appliedKeys: [], unappliedKeys: [], failure: `Could not read the settings back: ${message}` },
      change: change(id, { request: { [PERIOD_KEY]: 5 }, target, outcome: 'BAD_ANSWER', httpStatus: 307, errorCode: 'REDIRECT', errorMessage: message }),
    });
    expect(elsewhere.requests).toHaveLength(0);
    expect(box.requests.map((r) => r.path)).toEqual([SETCONFIGS, GETCONFIGS]);
    await expectUnchanged(id);
  });

  it('an answer that is not JSON is BoxBadAnswer (NOT_JSON): its type and size are told, its content never', async () => {
    const html = '<!DOCTYPE html><title>502 Bad Gateway</title>';
    const box = await fakeBox({ behavior: { kind: 'raw', status: 200, body: html } });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 5 });

    const message = `The box answered HTTP 200 with ${html.length} bytes of text/html; charset=utf-8: not JSON. Its content is not shown.`;
    expect(result).toMatchObject({
      __typename: 'BoxBadAnswer',
      message,
      defect: 'NOT_JSON',
      httpStatus: 200,
      contentType: 'text/html; charset=utf-8',
      bodyBytes: html.length,
      bodyPreview: '',
      change: { outcome: 'BAD_ANSWER', httpStatus: 200, errorCode: 'NOT_JSON', errorMessage: message, response: null },
    });
    expect((await auditRows(gateway, id))[0]).toMatchObject({ outcome: 'bad_answer', response: null, error_code: 'NOT_JSON', error_message: message });
    await expectUnchanged(id);
  });

  it('a huge answer is BoxBadAnswer (TOO_LARGE): reading stops at 64 KiB', async () => {
    const box = await fakeBox({ behavior: { kind: 'huge', bytes: 20 * 1024 * 1024 } });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 5 });

    expect(result).toMatchObject({
      __typename: 'BoxBadAnswer',
      message: 'The box answered HTTP 200 with 65536 bytes of application/json: longer than the 65536 bytes read; reading stopped there. Its content is not shown.',
      defect: 'TOO_LARGE',
      httpStatus: 200,
      bodyBytes: 65536,
      bodyPreview: '',
      change: { outcome: 'BAD_ANSWER', errorCode: 'TOO_LARGE', response: null },
    });
    await box.waitForNoConnections();
    expect(box.streamed!.complete).toBe(false);
    expect(box.streamed!.bytes).toBeLessThan(20 * 1024 * 1024);
    await expectUnchanged(id);
  });
});

describe('input refused before anything is sent: InvalidConfig', () => {
  const PERIOD_PROBLEM = { field: 'reportPeriodSeconds', message: 'The report period must be a whole number of seconds from 1 to 3600.' };

  it.each([
    ['a period of 0', { reportPeriodSeconds: 0 }, [PERIOD_PROBLEM]],
    ['a period of 3601', { reportPeriodSeconds: 3601 }, [PERIOD_PROBLEM]],
    ['a period of 2.5 s', { reportPeriodSeconds: 2.5 }, [PERIOD_PROBLEM]],
    ['a negative period', { reportPeriodSeconds: -5 }, [PERIOD_PROBLEM]],
    ['an ftp URL', { monitorUrl: 'ftp://10.0.0.5/DeviceStatus' }, [{ field: 'monitorUrl', message: 'The monitor URL must use http or https, not ftp.' }]],
    [
      'a URL that is not one',
      { monitorUrl: 'gateway:4000' },
      [{ field: 'monitorUrl', message: 'The monitor URL must use http or https, not gateway.' }],
    ],
    [
      'the period among the other settings',
      { settings: { MEDIA_DEVICE_MONITOR_REPORT_PEROID: 5 } },
      [{ field: 'settings.MEDIA_DEVICE_MONITOR_REPORT_PEROID', message: 'Set MEDIA_DEVICE_MONITOR_REPORT_PEROID through reportPeriodSeconds, where it is checked.' }],
    ],
    ['nothing to set', {}, [{ field: 'input', message: 'Nothing to set: give monitorUrl, reportPeriodSeconds or settings.' }]],
  ])('%s', async (_name, input, problems) => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, ...input });

    expect(result).toEqual({
      __typename: 'InvalidConfig',
      message: problems.map((p) => p.message).join(' '),
      problems,
      change: change(id, {
        request: expect.any(Object),
        target: null,
        outcome: 'INVALID',
        errorCode: 'INVALID_INPUT',
        errorMessage: problems.map((p) => `${p.field}: ${p.message}`).join(' '),
        durationMs: 0,
      }),
    });
    expect(box.requests).toHaveLength(0);
    await expectUnchanged(id);
  });

  it('a __proto__ setting is refused by its name, and the audit row keeps it as asked', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    const settings = JSON.parse('{"__proto__": {"polluted": true}, "GATE_PASS_MODE": "allpass"}') as Record<string, unknown>;

    const result = await configure(gateway, { boxId: id, settings });

    const problem = { field: 'settings.__proto__', message: '"__proto__" is not a box setting name: upper-case letters, digits and _ , starting with a letter.' };
    expect(result).toMatchObject({ __typename: 'InvalidConfig', message: problem.message, problems: [problem] });
    expect(box.requests).toHaveLength(0);
    const [row] = await auditRows(gateway, id);
    expect(row).toMatchObject({ outcome: 'invalid', error_message: `${problem.field}: ${problem.message}` });
    expect(row!.request).toEqual(JSON.parse('{"__proto__": {"polluted": true}, "GATE_PASS_MODE": "allpass"}'));
    expect(Object.keys(row!.request as object)).toEqual(['__proto__', 'GATE_PASS_MODE']);
  });

  it('an unknown box, or an id that is not a Box id, has no audit row', async () => {
    for (const boxId of [unknownBoxId, 'not-an-id', encodeGlobalId('Device', 1)]) {
      const result = await configure(gateway, { boxId, reportPeriodSeconds: 5 });
      expect(result).toMatchObject({ __typename: 'InvalidConfig', problems: [{ field: 'boxId' }], change: null });
    }
    const result = await configure(gateway, { boxId: unknownBoxId, reportPeriodSeconds: 5 });
    expect(result).toEqual({
      __typename: 'InvalidConfig',
      message: 'There is no box with this id (Box 999999): it never reported, was never registered, or was removed.',
      problems: [{ field: 'boxId', message: 'There is no box with this id (Box 999999): it never reported, was never registered, or was removed.' }],
      change: null,
    });
  });

  it('a box whose address is not known (registered without one, never reported) is not called', async () => {
    const { registerBox } = await query(gateway.url, RegisterBoxMutation, { licenseKey: 'CFG-NO-ADDRESS' });
    const id = (registerBox as { box: { id: string } }).box.id;
    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 5 });
    expect(result).toMatchObject({
      __typename: 'InvalidConfig',
      problems: [{ field: 'apiAddress', message: 'The box has no known address: it has not reported yet. Set its address with updateBox.' }],
      change: { outcome: 'INVALID', target: null },
    });
  });

  it('a period that is not a number at all is a request error (the variable has the wrong type)', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    const response = await send(gateway.url, ConfigureBoxMutation, { input: { boxId: id, reportPeriodSeconds: 'often' as unknown as number } });
    expect(response.status).toBe(400);
    expect(response.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(box.requests).toHaveLength(0);
  });
});

describe('one call per box at a time', () => {
  it('two calls to one box do not interleave: the second is sent once the first is answered and recorded', async () => {
    // A box that takes 300 ms to answer and records when each exchange started and ended.
    const exchanges: Array<{ period: unknown; start: number; end: number }> = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const dict = JSON.parse(Buffer.concat(chunks).toString()).config_dict as Record<string, unknown>;
        const exchange = { period: dict[PERIOD_KEY], start: performance.now(), end: 0 };
        exchanges.push(exchange);
        setTimeout(() => {
          exchange.end = performance.now();
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(dict));
        }, 300);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const { registerBox } = await query(gateway.url, RegisterBoxMutation, { licenseKey: 'CFG-SERIAL', address: '127.0.0.1', apiPort: port });
      const id = (registerBox as { box: { id: string } }).box.id;

      const [first, second] = await Promise.all([
        configure(gateway, { boxId: id, reportPeriodSeconds: 10 }),
        configure(gateway, { boxId: id, reportPeriodSeconds: 20 }),
      ]);

      expect([first.__typename, second.__typename]).toEqual(['ConfigureBoxSuccess', 'ConfigureBoxSuccess']);
      expect(exchanges.map((e) => e.period).sort()).toEqual([10, 20]);
      expect(exchanges[1]!.start).toBeGreaterThanOrEqual(exchanges[0]!.end);
      // The row holds what the box got last, and the audit trail has them in the order sent.
      const last = exchanges[1]!.period;
      expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: last });
      expect((await auditRows(gateway, id)).map((r) => (r.request as Record<string, unknown>)[PERIOD_KEY])).toEqual(exchanges.map((e) => e.period));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('pointBoxAtGateway', () => {
  it('sets the monitor URL to the gateway’s own ingest URL (here: as it listens, PUBLIC_URL unset)', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    const { pointBoxAtGateway } = await query(gateway.url, PointBoxAtGatewayMutation, { boxId: id });
    const ingestUrl = `${gateway.url}/DeviceStatus`;
    expect(pointBoxAtGateway).toEqual({ __typename: 'ConfigureBoxSuccess', applied: { [URL_KEY]: ingestUrl }, monitorUrl: ingestUrl, box: { id, monitorUrl: ingestUrl } });
    expect(box.requests[0]!.body).toEqual({ config_dict: { [URL_KEY]: ingestUrl } });
  });

  it('answers InvalidConfig for an unknown box, and BoxUnreachable when the box is down', async () => {
    expect((await query(gateway.url, PointBoxAtGatewayMutation, { boxId: unknownBoxId })).pointBoxAtGateway.__typename).toBe('InvalidConfig');
    const port = await closedPort();
    const { registerBox } = await query(gateway.url, RegisterBoxMutation, { licenseKey: 'CFG-POINT-DOWN', address: '127.0.0.1', apiPort: port });
    const { pointBoxAtGateway } = await query(gateway.url, PointBoxAtGatewayMutation, { boxId: (registerBox as { box: { id: string } }).box.id });
    expect(pointBoxAtGateway).toEqual({ __typename: 'BoxUnreachable', message: `Could not reach the box at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}` });
  });
});

describe('boxConfig', () => {
  it('reads every setting, or the keys asked for, from the box itself; nothing is audited', async () => {
    const box = await fakeBox({ config: { [URL_KEY]: NEW_URL, [PERIOD_KEY]: 60, GATE_PASS_MODE: 'normal' } });
    const id = await registerFakeBox(gateway, box);

    expect((await query(gateway.url, BoxConfigQuery, { boxId: id })).boxConfig).toEqual({
      __typename: 'BoxConfigValues',
      values: { [URL_KEY]: NEW_URL, [PERIOD_KEY]: 60, GATE_PASS_MODE: 'normal' },
      missingKeys: [],
      box: { id },
    });
    expect((await query(gateway.url, BoxConfigQuery, { boxId: id, keys: [PERIOD_KEY, 'NOT_A_SETTING'] })).boxConfig).toEqual({
      __typename: 'BoxConfigValues',
      values: { [PERIOD_KEY]: 60 },
      missingKeys: ['NOT_A_SETTING'],
      box: { id },
    });
    expect(box.requests.map((r) => [r.path, r.body])).toEqual([
      [GETCONFIGS, {}],
      [GETCONFIGS, {}],
    ]);
    expect(await auditRows(gateway, id)).toEqual([]);
  });

  it('is never answered from the response cache: a second read sees what changed on the box', async () => {
    const box = await fakeBox({ config: { [PERIOD_KEY]: 60 } });
    const id = await registerFakeBox(gateway, box);
    const read = async () => (await query(gateway.url, BoxConfigQuery, { boxId: id, keys: [PERIOD_KEY] })).boxConfig;
    expect(await read()).toMatchObject({ values: { [PERIOD_KEY]: 60 } });
    box.config[PERIOD_KEY] = 7; // as if someone used the box's own web page
    expect(await read()).toMatchObject({ values: { [PERIOD_KEY]: 7 } });
    expect(box.requests).toHaveLength(2);
  });

  it('answers the same failures as configureBox', async () => {
    const box = await fakeBox({ config: { A: 1 }, listsAll: false });
    const id = await registerFakeBox(gateway, box);
    expect((await query(gateway.url, BoxConfigQuery, { boxId: id, keys: ['NOPE'] })).boxConfig).toEqual({
      __typename: 'BoxRejectedConfig',
      message: 'unknown config_name: NOPE',
      code: 'INVALID_ARGUMENTS',
      httpStatus: 400,
      readBack: null,
      change: null,
    });
    expect((await query(gateway.url, BoxConfigQuery, { boxId: id, keys: ['lower-case'] })).boxConfig).toEqual({
      __typename: 'InvalidConfig',
      message: '"lower-case" is not a box setting name: upper-case letters, digits and _ , starting with a letter.',
      problems: [{ field: 'keys.lower-case', message: '"lower-case" is not a box setting name: upper-case letters, digits and _ , starting with a letter.' }],
    });
    box.behave({ kind: 'raw', status: 500, body: 'oops' });
    expect((await query(gateway.url, BoxConfigQuery, { boxId: id })).boxConfig).toMatchObject({ __typename: 'BoxBadAnswer', defect: 'UNEXPECTED_STATUS', httpStatus: 500 });
    const port = await closedPort();
    const { registerBox } = await query(gateway.url, RegisterBoxMutation, { licenseKey: 'CFG-READ-DOWN', address: '127.0.0.1', apiPort: port });
    expect((await query(gateway.url, BoxConfigQuery, { boxId: (registerBox as { box: { id: string } }).box.id })).boxConfig).toMatchObject({
      __typename: 'BoxUnreachable',
      reason: 'REFUSED',
      target: `127.0.0.1:${port}`,
    });
    expect((await query(gateway.url, BoxConfigQuery, { boxId: unknownBoxId })).boxConfig).toMatchObject({ __typename: 'InvalidConfig', problems: [{ field: 'boxId' }] });
  });
});
