import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GETCONFIGS, SETCONFIGS } from '../helpers/fake-box';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { query } from '../helpers/graphql';
import { auditRows, boxRow, closeFakeBoxes, configure, fakeBox, PointBoxAtGatewayMutation, registerFakeBox } from './operations';

// Whatever bytes a box answers, the attempt has its audit row and the caller a result member; and
// only settings the box confirmed are kept on its row.

const URL_KEY = 'MEDIA_DEVICE_MONITOR_URL';
const PERIOD_KEY = 'MEDIA_DEVICE_MONITOR_REPORT_PEROID';
const NEW_URL = 'http://10.0.0.5:4000/DeviceStatus';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway({ boxApiTimeoutMs: 1_500 });
});
afterAll(() => gateway?.close());
afterEach(closeFakeBoxes);

/** A box that answers every request with `body` as JSON text, bytes as they are. */
function answering(body: string, status = 200) {
  return fakeBox({ behavior: { kind: 'raw', status, body, contentType: 'application/json' } });
}

describe('text Postgres cannot store is kept escaped, never dropped, never a GraphQL error', () => {
  it.each([
    ['a NUL', String.raw`all\u0000pass`],
    ['a lone surrogate', String.raw`\ud800`],
    ['a lone low surrogate after text', String.raw`x\udc00y`],
  ])('%s in an echoed value: success with the key unconfirmed, the audit row keeps the escape', async (_name, escaped) => {
    const box = await answering(`{"GATE_PASS_MODE": "${escaped}"}`);
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, settings: { GATE_PASS_MODE: 'allpass' } });

    const message = `Not confirmed: GATE_PASS_MODE: echoed "${escaped}", read back as "${escaped}".`;
    expect(result).toMatchObject({
      __typename: 'ConfigureBoxSuccess',
      applied: { GATE_PASS_MODE: escaped },
      unconfirmedKeys: ['GATE_PASS_MODE'],
      readBack: { values: { GATE_PASS_MODE: escaped }, appliedKeys: [], unappliedKeys: ['GATE_PASS_MODE'], failure: null },
      change: { outcome: 'APPLIED', httpStatus: 200, response: { GATE_PASS_MODE: escaped }, errorCode: 'UNCONFIRMED', errorMessage: message },
    });
    expect(box.requests.map((r) => r.path)).toEqual([SETCONFIGS, GETCONFIGS]);
    const rows = await auditRows(gateway, id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'applied', request: { GATE_PASS_MODE: 'allpass' }, response: { GATE_PASS_MODE: escaped }, error_message: message });
  });

  it('a NUL in a key of the echo: no box setting has such a name, so a bad answer, audited', async () => {
    const box = await answering(String.raw`{"GATE_PASS_MODE": "allpass", "X\u0000": 1}`);
    const id = await registerFakeBox(gateway, box);
    const result = await configure(gateway, { boxId: id, settings: { GATE_PASS_MODE: 'allpass' } });
    expect(result).toMatchObject({ __typename: 'BoxBadAnswer', defect: 'UNEXPECTED_SHAPE', change: { outcome: 'BAD_ANSWER' } });
    expect(await auditRows(gateway, id)).toEqual([expect.objectContaining({ outcome: 'bad_answer', response: null, error_code: 'UNEXPECTED_SHAPE' })]);
  });

  it('a NUL and a lone surrogate in an error message: BoxRejectedConfig, escaped in the answer and the audit row', async () => {
    const box = await answering(String.raw`{"error": {"code": "INVALID\u0000ARGUMENTS", "message": "bad\u0000value \udfff"}}`, 400);
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 15 });

    const code = String.raw`INVALID\u0000ARGUMENTS`;
    const message = String.raw`bad\u0000value \udfff`;
    expect(result).toMatchObject({
      __typename: 'BoxRejectedConfig',
      message,
      code,
      readBack: { values: null, failure: `Could not read the settings back: the box refused getconfigs: ${code} (${message})` },
      change: { outcome: 'REJECTED', httpStatus: 400, response: { error: { code, message } }, errorCode: code, errorMessage: message },
    });
    expect(await auditRows(gateway, id)).toEqual([
      expect.objectContaining({ outcome: 'rejected', response: { error: { code, message } }, error_code: code, error_message: message }),
    ]);
    expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: null });
  });

  it('a NUL in an answer that is not JSON: BoxBadAnswer with its audit row', async () => {
    const box = await fakeBox({ behavior: { kind: 'raw', status: 200, body: 'ok\u0000', contentType: 'text/plain' } });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 15 });

    const message = 'The box answered HTTP 200 with 3 bytes of text/plain: not JSON. Its content is not shown.';
    expect(result).toMatchObject({
      __typename: 'BoxBadAnswer',
      message,
      defect: 'NOT_JSON',
      httpStatus: 200,
      bodyBytes: 3,
      bodyPreview: '',
      change: { outcome: 'BAD_ANSWER', errorCode: 'NOT_JSON', response: null, errorMessage: message },
    });
    const rows = await auditRows(gateway, id);
    expect(rows).toEqual([expect.objectContaining({ outcome: 'bad_answer', http_status: 200, response: null, error_code: 'NOT_JSON', error_message: message })]);
    expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: null });
  });

  it('an operator value holding a NUL is InvalidConfig, nothing sent, and the audit row keeps it escaped', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, settings: { GATE_PASS_MODE: 'all\u0000pass', OTHER: '\ud800' } });

    const problems = [
      { field: 'settings.GATE_PASS_MODE', message: 'The value of GATE_PASS_MODE holds a NUL character or an unpaired UTF-16 surrogate; no box setting takes one.' },
      { field: 'settings.OTHER', message: 'The value of OTHER holds a NUL character or an unpaired UTF-16 surrogate; no box setting takes one.' },
    ];
    expect(result).toMatchObject({ __typename: 'InvalidConfig', problems, change: { outcome: 'INVALID' } });
    expect(box.requests).toHaveLength(0);
    expect((await auditRows(gateway, id))[0]).toMatchObject({
      outcome: 'invalid',
      request: { GATE_PASS_MODE: String.raw`all\u0000pass`, OTHER: String.raw`\ud800` },
    });
  });
});

describe('an answer that is not the box protocol is told by status, type and size, never by its content', () => {
  const SECRET = 'db-password-hunter2';
  it.each([
    ['another service’s HTML page', 200, `<html><body>admin console ${SECRET}</body></html>`, 'text/html', 'NOT_JSON'],
    ['another service’s JSON', 200, `{"status": "ok", "token": "${SECRET}"}`, 'application/json', 'UNEXPECTED_SHAPE'],
    ['cloud-metadata-like nested JSON', 200, `{"Credentials": {"SecretAccessKey": "${SECRET}"}}`, 'application/json', 'UNEXPECTED_SHAPE'],
    ['an error page', 500, `Internal error: ${SECRET}`, 'text/plain', 'UNEXPECTED_STATUS'],
  ])('%s', async (_name, status, body, contentType, defect) => {
    const box = await fakeBox({ behavior: { kind: 'raw', status, body, contentType } });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 15 });

    expect(result).toMatchObject({
      __typename: 'BoxBadAnswer',
      defect,
      httpStatus: status,
      contentType,
      bodyBytes: Buffer.byteLength(body),
      bodyPreview: '',
      change: { outcome: 'BAD_ANSWER', response: null, errorCode: defect },
    });
    expect(JSON.stringify(result)).not.toContain(SECRET);
    const rows = await auditRows(gateway, id);
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(SECRET);
    expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: null });
  });

  it('an error object is passed on without the rest of the JSON around it', async () => {
    const box = await answering(`{"error": {"code": "INVALID_ARGUMENTS", "message": "bad", "trace": "${SECRET}"}, "debug": "${SECRET}"}`, 400);
    const id = await registerFakeBox(gateway, box);
    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 15 });
    expect(result).toMatchObject({ __typename: 'BoxRejectedConfig', code: 'INVALID_ARGUMENTS', change: { response: { error: { code: 'INVALID_ARGUMENTS', message: 'bad' } } } });
    expect(JSON.stringify(result)).not.toContain(SECRET);
    expect(JSON.stringify(await auditRows(gateway, id))).not.toContain(SECRET);
  });
});

describe('keys the echo leaves out are read back; only confirmed values are kept', () => {
  it('a firmware that ignores the report period: the key stays unconfirmed and the box row keeps its period', async () => {
    const box = await fakeBox({ ignore: [PERIOD_KEY] });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, monitorUrl: NEW_URL, reportPeriodSeconds: 15 });

    const message = `Not confirmed: ${PERIOD_KEY}: left out of the echo, read back as 60.`;
    expect(result).toMatchObject({
      __typename: 'ConfigureBoxSuccess',
      applied: { [URL_KEY]: NEW_URL },
      monitorUrl: NEW_URL,
      reportPeriodSeconds: null,
      unconfirmedKeys: [PERIOD_KEY],
      readBack: { values: { [PERIOD_KEY]: 60 }, appliedKeys: [], unappliedKeys: [PERIOD_KEY], failure: null },
      box: { id, monitorUrl: NEW_URL, configuredReportPeriodSeconds: null },
      change: { outcome: 'APPLIED', response: { [URL_KEY]: NEW_URL }, errorCode: 'UNCONFIRMED', errorMessage: message },
    });
    expect(box.requests.map((r) => [r.path, r.body])).toEqual([
      [SETCONFIGS, { config_dict: { [URL_KEY]: NEW_URL, [PERIOD_KEY]: 15 } }],
      [GETCONFIGS, { config_name: PERIOD_KEY }],
    ]);
    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: NEW_URL, report_period_seconds: null });
    expect(await auditRows(gateway, id)).toEqual([expect.objectContaining({ outcome: 'applied', error_code: 'UNCONFIRMED', error_message: message })]);
  });

  it('a period confirmed earlier is not overwritten by one the box did not take', async () => {
    const box = await fakeBox();
    const id = await registerFakeBox(gateway, box);
    expect(await configure(gateway, { boxId: id, reportPeriodSeconds: 30 })).toMatchObject({ __typename: 'ConfigureBoxSuccess', reportPeriodSeconds: 30 });
    // The firmware now echoes nothing and keeps 30 (it ignores the key).
    box.behave({ kind: 'raw', status: 200, body: '{}', contentType: 'application/json' });
    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 5 });
    // The read-back got `{}` too, which lists nothing.
    expect(result).toMatchObject({ __typename: 'ConfigureBoxSuccess', reportPeriodSeconds: null, unconfirmedKeys: [PERIOD_KEY], readBack: { values: {}, unappliedKeys: [PERIOD_KEY] } });
    expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: 30 });
  });

  it('a key left out of the echo but read back as sent is confirmed and kept', async () => {
    const box = await fakeBox({ echoOmits: [PERIOD_KEY] });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, monitorUrl: NEW_URL, reportPeriodSeconds: 15 });

    expect(result).toMatchObject({
      __typename: 'ConfigureBoxSuccess',
      monitorUrl: NEW_URL,
      reportPeriodSeconds: 15,
      unconfirmedKeys: [],
      readBack: { values: { [PERIOD_KEY]: 15 }, appliedKeys: [PERIOD_KEY], unappliedKeys: [], failure: null },
      change: { outcome: 'APPLIED', errorCode: null, errorMessage: null },
    });
    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: NEW_URL, report_period_seconds: 15 });
  });

  it('an echo of another value is read back: the box row keeps nothing the box did not confirm', async () => {
    const box = await fakeBox({ behavior: { kind: 'raw', status: 200, body: `{"${PERIOD_KEY}": 20}`, contentType: 'application/json' } });
    const id = await registerFakeBox(gateway, box);
    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 15 });
    expect(result).toMatchObject({
      __typename: 'ConfigureBoxSuccess',
      reportPeriodSeconds: null,
      unconfirmedKeys: [PERIOD_KEY],
      change: { errorMessage: `Not confirmed: ${PERIOD_KEY}: echoed 20, read back as 20.` },
    });
    expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: null });
  });

  it('a read-back that fails leaves the key unconfirmed, and is not an error', async () => {
    const box = await fakeBox({ echoOmits: [PERIOD_KEY], getconfigs: { kind: 'error', error: { code: 'INTERNAL_ERROR', message: 'busy' } } });
    const id = await registerFakeBox(gateway, box);

    const result = await configure(gateway, { boxId: id, monitorUrl: NEW_URL, reportPeriodSeconds: 15 });

    const failure = 'Could not read the settings back: the box refused getconfigs: INTERNAL_ERROR (busy)';
    expect(result).toMatchObject({
      __typename: 'ConfigureBoxSuccess',
      monitorUrl: NEW_URL,
      reportPeriodSeconds: null,
      unconfirmedKeys: [PERIOD_KEY],
      readBack: { values: null, appliedKeys: [], unappliedKeys: [], failure },
      change: { errorCode: 'UNCONFIRMED', errorMessage: `Not confirmed: ${PERIOD_KEY}: left out of the echo; ${failure}.` },
    });
    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: NEW_URL, report_period_seconds: null });
  });

  it('a read-back that times out leaves the key unconfirmed', async () => {
    const box = await fakeBox({ echoOmits: [PERIOD_KEY], getconfigs: { kind: 'hang' } });
    const id = await registerFakeBox(gateway, box);
    const result = await configure(gateway, { boxId: id, reportPeriodSeconds: 15 });
    expect(result).toMatchObject({
      __typename: 'ConfigureBoxSuccess',
      unconfirmedKeys: [PERIOD_KEY],
      readBack: { values: null, failure: 'Could not read the settings back: getconfigs got no answer within 1500 ms' },
    });
    expect(await boxRow(gateway, id)).toMatchObject({ report_period_seconds: null });
  });

  it('pointBoxAtGateway on a box that ignores the monitor URL keeps no monitor URL on the row', async () => {
    const box = await fakeBox({ ignore: [URL_KEY] });
    const id = await registerFakeBox(gateway, box);
    const { pointBoxAtGateway } = await query(gateway.url, PointBoxAtGatewayMutation, { boxId: id });
    expect(pointBoxAtGateway).toMatchObject({ __typename: 'ConfigureBoxSuccess', applied: {}, box: { id, monitorUrl: null } });
    expect(await boxRow(gateway, id)).toMatchObject({ monitor_url: null });
  });
});
