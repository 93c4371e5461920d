import { afterEach, describe, expect, it } from 'vitest';
import {
  checkTarget,
  formatTarget,
  getConfigs,
  setConfigs,
} from '../../src/box-api/client';
import { unreachableReason, type BoxCallOutcome } from '../../src/box-api/box-answer';
import {
  MEDIA_DEVICE_MONITOR_REPORT_PEROID,
  MEDIA_DEVICE_MONITOR_URL,
  toConfigDict,
  validateConfigInput,
} from '../../src/box-api/config-keys';
import { FAKE_BOX_MESSAGES, GETCONFIGS, SETCONFIGS, startFakeBox, type FakeBox, type FakeBoxOptions } from '../helpers/fake-box';
import { closedPort } from '../helpers/net';

const open: FakeBox[] = [];
async function box(options: FakeBoxOptions = {}): Promise<FakeBox> {
  const b = await startFakeBox(options);
  open.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

const monitor = { [MEDIA_DEVICE_MONITOR_URL]: 'http://10.0.0.5:4000/DeviceStatus', [MEDIA_DEVICE_MONITOR_REPORT_PEROID]: 5 };

/** The outcome without its measured duration, for exact comparison. */
function timeless(outcome: BoxCallOutcome): Omit<BoxCallOutcome, 'durationMs'> {
  expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
  const { durationMs: _, ...rest } = outcome;
  return rest;
}

describe('setConfigs and getConfigs against a working box', () => {
  it('sends exactly the documented request and returns the echo', async () => {
    const b = await box();
    const outcome = await setConfigs(b.target, monitor);
    expect(timeless(outcome)).toEqual({ kind: 'applied', values: monitor, httpStatus: 200 });

    expect(b.requests).toHaveLength(1);
    const [req] = b.requests;
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe('/sophon/v2/face/setconfigs');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.rawBody).toBe(JSON.stringify({ config_dict: monitor }));
    expect(req!.body).toEqual({ config_dict: monitor });
    expect(b.config).toMatchObject(monitor);
  });

  it('reads one key with config_name, all keys with {}, several with one {} call', async () => {
    const b = await box({ config: { A: 'a', B: 2, C: true } });
    expect(timeless(await getConfigs(b.target, ['B']))).toEqual({ kind: 'applied', values: { B: 2 }, httpStatus: 200 });
    expect(timeless(await getConfigs(b.target, undefined))).toEqual({ kind: 'applied', values: { A: 'a', B: 2, C: true }, httpStatus: 200 });
    expect(timeless(await getConfigs(b.target, ['C', 'A', 'NOT_THERE']))).toEqual({ kind: 'applied', values: { C: true, A: 'a' }, httpStatus: 200 });
    expect(b.requests.map((r) => [r.method, r.path, r.headers['content-type'], r.rawBody])).toEqual([
      ['POST', GETCONFIGS, 'application/json', '{"config_name":"B"}'],
      ['POST', GETCONFIGS, 'application/json', '{}'],
      ['POST', GETCONFIGS, 'application/json', '{}'],
    ]);
  });

  it('falls back to one call per key when the box refuses {}', async () => {
    const b = await box({ config: { A: 'a', B: 2 }, listsAll: false });
    const outcome = await getConfigs(b.target, ['A', 'B']);
    expect(timeless(outcome)).toEqual({ kind: 'applied', values: { A: 'a', B: 2 }, httpStatus: 200 });
    expect(b.requests.map((r) => r.body)).toEqual([{}, { config_name: 'A' }, { config_name: 'B' }]);
  });

  it('in the per-key fallback, the first refused key is the outcome', async () => {
    const b = await box({ config: { A: 'a' }, listsAll: false });
    const outcome = await getConfigs(b.target, ['A', 'NOPE', 'A2']);
    expect(timeless(outcome)).toEqual({
      kind: 'rejected',
      code: 'INVALID_ARGUMENTS',
      message: 'unknown config_name: NOPE',
      httpStatus: 400,
      body: { error: { code: 'INVALID_ARGUMENTS', message: 'unknown config_name: NOPE' } },
    });
    expect(b.requests).toHaveLength(3);
  });

  it('reaches a box on an IPv6 literal', async () => {
    const b = await box({ host: '::1' });
    expect(formatTarget({ address: '::1', port: b.port })).toBe(`[::1]:${b.port}`);
    expect((await setConfigs({ address: '::1', port: b.port }, { A: 1 })).kind).toBe('applied');
    expect((await getConfigs({ address: '[::1]', port: b.port }, ['A'])).kind).toBe('applied');
  });
});

describe('a box that refuses', () => {
  it.each([
    ['UNSUPPORT_CONTENT_TYPE', FAKE_BOX_MESSAGES.UNSUPPORT_CONTENT_TYPE],
    ['INVALID_REQUEST_JSON', FAKE_BOX_MESSAGES.INVALID_REQUEST_JSON],
    ['MISSING_ARGUMENTS', FAKE_BOX_MESSAGES.MISSING_ARGUMENTS],
  ])('%s is rejected with its code and message', async (code, message) => {
    const b = await box({ behavior: { kind: 'error', error: { code, message } } });
    expect(timeless(await setConfigs(b.target, monitor))).toEqual({
      kind: 'rejected',
      code,
      message,
      httpStatus: 400,
      body: { error: { code, message } },
    });
  });

  it.each([
    ['INVALID_ARGUMENTS', 'invalid value for GATE_PASS_MODE', 400],
    ['NAME_REPEAT_ERROR', 'name repeat', 200],
    ['SOMETHING_NEW', 'a code the vendor never documented', 500],
  ])('%s for a key is rejected whatever the HTTP status (%#)', async (code, message, errorStatus) => {
    const b = await box({ refuse: { GATE_PASS_MODE: { code, message } }, errorStatus });
    expect(timeless(await setConfigs(b.target, { GATE_PASS_MODE: 'sideways' }))).toEqual({
      kind: 'rejected',
      code,
      message,
      httpStatus: errorStatus,
      body: { error: { code, message } },
    });
  });

  it('partial failure: the error is reported, the other keys applied, and getConfigs shows which', async () => {
    const error = { code: 'INVALID_ARGUMENTS', message: 'MATCH_THRESHOLD out of range' };
    const b = await box({ config: { ...monitor, MATCH_THRESHOLD: 0.8 }, refuse: { MATCH_THRESHOLD: error } });
    const sent = { [MEDIA_DEVICE_MONITOR_URL]: 'http://gw:4000/DeviceStatus', MATCH_THRESHOLD: 7, [MEDIA_DEVICE_MONITOR_REPORT_PEROID]: 30 };
    expect(timeless(await setConfigs(b.target, sent))).toEqual({ kind: 'rejected', ...error, httpStatus: 400, body: { error } });

    const readBack = await getConfigs(b.target, Object.keys(sent));
    expect(timeless(readBack)).toEqual({
      kind: 'applied',
      values: { [MEDIA_DEVICE_MONITOR_URL]: 'http://gw:4000/DeviceStatus', MATCH_THRESHOLD: 0.8, [MEDIA_DEVICE_MONITOR_REPORT_PEROID]: 30 },
      httpStatus: 200,
    });
  });
});

describe('the fake box checks requests as the vendor documents', () => {
  const post = (b: FakeBox, path: string, body: string, contentType?: string) =>
    fetch(`http://127.0.0.1:${b.port}${path}`, {
      method: 'POST',
      headers: contentType ? { 'content-type': contentType } : {},
      body: Buffer.from(body),
    }).then(async (r) => ({ status: r.status, json: await r.json() }));

  it('refuses a wrong content type, a body that is not JSON, a missing config_dict', async () => {
    const b = await box();
    expect(await post(b, SETCONFIGS, '{"config_dict":{"A":1}}', 'text/plain')).toEqual({
      status: 400,
      json: { error: { code: 'UNSUPPORT_CONTENT_TYPE', message: FAKE_BOX_MESSAGES.UNSUPPORT_CONTENT_TYPE } },
    });
    expect(await post(b, SETCONFIGS, '{"config_dict":', 'application/json')).toEqual({
      status: 400,
      json: { error: { code: 'INVALID_REQUEST_JSON', message: FAKE_BOX_MESSAGES.INVALID_REQUEST_JSON } },
    });
    expect(await post(b, SETCONFIGS, '{"A":1}', 'application/json')).toEqual({
      status: 400,
      json: { error: { code: 'MISSING_ARGUMENTS', message: FAKE_BOX_MESSAGES.MISSING_ARGUMENTS } },
    });
    expect(b.config).not.toHaveProperty('A');
  });
});

describe('a box that cannot be reached', () => {
  it('closed port: unreachable, refused, nothing sent', async () => {
    const port = await closedPort();
    const outcome = await setConfigs({ address: '127.0.0.1', port }, monitor);
    expect(timeless(outcome)).toEqual({ kind: 'unreachable', reason: 'refused', message: `connect ECONNREFUSED 127.0.0.1:${port}`, requestSent: false });
  });

  it('a box that resets the connection: unreachable, reset, after the request went out', async () => {
    const b = await box({ behavior: { kind: 'reset' } });
    const outcome = await setConfigs(b.target, monitor);
    expect(outcome).toMatchObject({ kind: 'unreachable', reason: 'reset', requestSent: true });
    expect((outcome as { message: string }).message).toMatch(/ECONNRESET/);
    expect(b.requests).toHaveLength(1);
  });

  it('a name that does not resolve: unreachable, dns', async () => {
    const outcome = await setConfigs({ address: 'no-such-box.invalid', port: 5555 }, monitor, { timeoutMs: 3000 });
    expect(outcome).toMatchObject({ kind: 'unreachable', reason: 'dns', requestSent: false });
    expect((outcome as { message: string }).message).toMatch(/^getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-box\.invalid$/);
  });

  it('socket error codes map to reasons', () => {
    expect(
      ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', undefined].map(unreachableReason),
    ).toEqual(['refused', 'reset', 'reset', 'no_route', 'no_route', 'dns', 'dns', 'other', 'other']);
  });
});

describe('deadline', () => {
  it('a box that never answers times out at the deadline and its socket is closed', async () => {
    const b = await box({ behavior: { kind: 'hang' } });
    const outcome = await setConfigs(b.target, monitor, { timeoutMs: 300 });
    expect(timeless(outcome)).toEqual({ kind: 'timed_out', timeoutMs: 300, requestSent: true });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(300);
    expect(outcome.durationMs).toBeLessThan(1300);
    expect(b.requests).toHaveLength(1);
    await b.waitForNoConnections(1000);
  });

  it('the deadline covers the body: headers then silence times out too', async () => {
    const b = await box({ behavior: { kind: 'stall_body' } });
    const outcome = await getConfigs(b.target, undefined, { timeoutMs: 300 });
    expect(timeless(outcome)).toEqual({ kind: 'timed_out', timeoutMs: 300, requestSent: true });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(300);
    expect(outcome.durationMs).toBeLessThan(1300);
    await b.waitForNoConnections(1000);
  });

  it('a box that hangs on {} is not asked again per key', async () => {
    const b = await box({ behavior: { kind: 'hang' } });
    const outcome = await getConfigs(b.target, ['A', 'B'], { timeoutMs: 200 });
    expect(outcome.kind).toBe('timed_out');
    expect(b.requests).toHaveLength(1);
  });
});

describe('a box that answers what no box should', () => {
  it.each([301, 302, 307, 308])('a %i redirect is a bad answer and is never followed', async (status) => {
    const elsewhere = await box();
    const location = `http://127.0.0.1:${elsewhere.port}${SETCONFIGS}`;
    const b = await box({ behavior: { kind: 'redirect', status, location } });
    expect(timeless(await setConfigs(b.target, monitor))).toEqual({
      kind: 'bad_answer',
      reason: 'redirect',
      httpStatus: status,
      message: `The box answered HTTP ${status} with no body (text/html): a redirect, never followed. Its content is not shown.`,
      contentType: 'text/html',
      bodyBytes: 0,
    });
    expect(timeless(await getConfigs(b.target, ['A', 'B']))).toMatchObject({ kind: 'bad_answer', reason: 'redirect' });
    expect(b.requests).toHaveLength(2);
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('a 2xx that is not JSON', async () => {
    const b = await box({ behavior: { kind: 'raw', status: 200, body: '<html>SOPHON login</html>' } });
    expect(timeless(await setConfigs(b.target, monitor))).toEqual({
      kind: 'bad_answer',
      reason: 'not_json',
      httpStatus: 200,
      message: 'The box answered HTTP 200 with 25 bytes of text/html; charset=utf-8: not JSON. Its content is not shown.',
      contentType: 'text/html; charset=utf-8',
      bodyBytes: 25,
    });
  });

  it.each([
    ['a list', '[1, 2]'],
    ['a nested object', '{"A": {"B": 1}}'],
    ['an error that is not the documented object', '{"error": "nope"}'],
    ['a bare string', '"ok"'],
    ['another service’s flat JSON', '{"status": "ok", "version": "1.2.3"}'],
    ['a lower-case key among settings', '{"A": 1, "token": "secret"}'],
  ])('a 2xx with %s is an unexpected shape, its content not passed on', async (_, body) => {
    const b = await box({ behavior: { kind: 'raw', status: 200, body, contentType: 'application/json' } });
    expect(timeless(await setConfigs(b.target, monitor))).toEqual({
      kind: 'bad_answer',
      reason: 'unexpected_shape',
      httpStatus: 200,
      message: `The box answered HTTP 200 with ${Buffer.byteLength(body)} bytes of application/json: JSON that is not a flat object of box settings. Its content is not shown.`,
      contentType: 'application/json',
      bodyBytes: Buffer.byteLength(body),
    });
  });

  it.each([
    [500, '{"detail": "internal"}', 'application/json'],
    [404, '<h1>Not Found</h1>', 'text/html'],
  ])('a %i without the error object is an unexpected status', async (status, body, contentType) => {
    const b = await box({ behavior: { kind: 'raw', status, body, contentType } });
    expect(timeless(await setConfigs(b.target, monitor))).toEqual({
      kind: 'bad_answer',
      reason: 'unexpected_status',
      httpStatus: status,
      message: `The box answered HTTP ${status} with ${body.length} bytes of ${contentType}: not 2xx, and without the box’s error object. Its content is not shown.`,
      contentType,
      bodyBytes: body.length,
    });
  });

  it('a 10 MiB answer is cut at the cap, quickly, and the box sees the connection go', async () => {
    const b = await box({ behavior: { kind: 'huge', bytes: 10 * 1024 * 1024, chunkBytes: 16 * 1024, intervalMs: 2 } });
    const outcome = await getConfigs(b.target, undefined);
    expect(timeless(outcome)).toEqual({
      kind: 'bad_answer',
      reason: 'too_large',
      httpStatus: 200,
      message: 'The box answered HTTP 200 with 65536 bytes of application/json: longer than the 65536 bytes read; reading stopped there. Its content is not shown.',
      contentType: 'application/json',
      bodyBytes: 65536,
    });
    expect(outcome.durationMs).toBeLessThan(1000);
    await b.waitForNoConnections(1000);
    expect(b.streamed!.complete).toBe(false);
    expect(b.streamed!.bytes).toBeLessThan(10 * 1024 * 1024);
  });

  it('an answer announced larger than the cap is not read at all', async () => {
    const b = await box({ behavior: { kind: 'huge', bytes: 10 * 1024 * 1024, announceLength: true, intervalMs: 50 } });
    const outcome = await setConfigs(b.target, monitor, { maxResponseBytes: 1024 });
    expect(timeless(outcome)).toEqual({
      kind: 'bad_answer',
      reason: 'too_large',
      httpStatus: 200,
      message: `The box answered HTTP 200 with no body (application/json): it announced ${10 * 1024 * 1024} bytes; at most 1024 are read. Its content is not shown.`,
      contentType: 'application/json',
      bodyBytes: 0,
    });
    expect(outcome.durationMs).toBeLessThan(1000);
    await b.waitForNoConnections(1000);
    expect(b.streamed!.complete).toBe(false);
  });
});

describe('targets', () => {
  it.each([
    [{ address: '127.0.0.1', port: 0 }, 'port'],
    [{ address: '127.0.0.1', port: 65536 }, 'port'],
    [{ address: '127.0.0.1', port: 5555.5 }, 'port'],
    [{ address: '', port: 5555 }, 'address'],
    [{ address: 'http://192.168.150.1', port: 5555 }, 'address'],
    [{ address: '192.168.150.1/sophon', port: 5555 }, 'address'],
    [{ address: '192.168.150.1:5555', port: 5555 }, 'address'],
    [{ address: 'user@box.local', port: 5555 }, 'address'],
    [{ address: '999.1.1.1', port: 5555 }, 'address'],
    [{ address: '127.1', port: 5555 }, 'address'],
    [{ address: 'box .local', port: 5555 }, 'address'],
  ])('%o is an invalid target (%s), and nothing is called', async (target, field) => {
    const outcome = await setConfigs(target, monitor);
    expect(outcome).toMatchObject({ kind: 'invalid_target', field, durationMs: 0 });
    expect((await getConfigs(target, ['A', 'B'])).kind).toBe('invalid_target');
  });

  it('accepts IPv4, IPv6 with or without brackets, and host names', () => {
    expect(checkTarget({ address: '192.168.150.1', port: 5555 })).toEqual({ host: '192.168.150.1' });
    expect(checkTarget({ address: 'fe80::1', port: 5555 })).toEqual({ host: 'fe80::1' });
    expect(checkTarget({ address: '[2001:db8::5]', port: 1 })).toEqual({ host: '2001:db8::5' });
    expect(checkTarget({ address: 'box-12.site.example', port: 65535 })).toEqual({ host: 'box-12.site.example' });
    expect(formatTarget({ address: '192.168.150.1', port: 5555 })).toBe('192.168.150.1:5555');
  });
});

describe('what an operator may set', () => {
  it('takes a valid input and builds the config_dict under the box names', () => {
    const input = { monitorUrl: 'https://gw.example/DeviceStatus', reportPeriodSeconds: 3600, settings: { GATE_PASS_MODE: 'allpass', MATCH_THRESHOLD: 0.75, GRAB_ON: true } };
    expect(validateConfigInput(input)).toEqual([]);
    expect(toConfigDict(input)).toEqual({
      MEDIA_DEVICE_MONITOR_URL: 'https://gw.example/DeviceStatus',
      MEDIA_DEVICE_MONITOR_REPORT_PEROID: 3600,
      GATE_PASS_MODE: 'allpass',
      MATCH_THRESHOLD: 0.75,
      GRAB_ON: true,
    });
    expect(validateConfigInput({ reportPeriodSeconds: 1, monitorUrl: null, settings: null })).toEqual([]);
  });

  it('names every refused field', () => {
    expect(
      validateConfigInput({
        monitorUrl: 'ftp://gw/x',
        reportPeriodSeconds: 0,
        settings: { lower: 1, NESTED: { A: 1 }, LIST: [1], NULLED: null, [MEDIA_DEVICE_MONITOR_URL]: 'http://x', OK: 'fine' },
      }),
    ).toEqual([
      { field: 'monitorUrl', message: 'The monitor URL must use http or https, not ftp.' },
      { field: 'reportPeriodSeconds', message: 'The report period must be a whole number of seconds from 1 to 3600.' },
      { field: 'settings.lower', message: '"lower" is not a box setting name: upper-case letters, digits and _ , starting with a letter.' },
      { field: 'settings.NESTED', message: 'The value of NESTED must be a string, a number or a boolean; objects, lists and null are not box settings.' },
      { field: 'settings.LIST', message: 'The value of LIST must be a string, a number or a boolean; objects, lists and null are not box settings.' },
      { field: 'settings.NULLED', message: 'The value of NULLED must be a string, a number or a boolean; objects, lists and null are not box settings.' },
      { field: `settings.${MEDIA_DEVICE_MONITOR_URL}`, message: `Set ${MEDIA_DEVICE_MONITOR_URL} through monitorUrl, where it is checked.` },
    ]);
  });

  it.each([
    ['/DeviceStatus', 'is not a URL'],
    ['http://gw/ Device', 'without spaces'],
    ['http://user:pw@gw/DeviceStatus', 'user name or password'],
  ])('refuses the monitor URL %s', (monitorUrl, part) => {
    const errors = validateConfigInput({ monitorUrl });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.field).toBe('monitorUrl');
    expect(errors[0]!.message).toContain(part);
  });

  it.each([1.5, 3601, -1, Number.NaN])('refuses the period %s', (reportPeriodSeconds) => {
    expect(validateConfigInput({ reportPeriodSeconds }).map((e) => e.field)).toEqual(['reportPeriodSeconds']);
  });

  it('names what was refused for keys Object.prototype has: __proto__, constructor, toString', () => {
    const settings = JSON.parse('{"__proto__": "x", "constructor": 1, "toString": true}') as Record<string, unknown>;
    const notAName = (key: string) => ({ field: `settings.${key}`, message: `"${key}" is not a box setting name: upper-case letters, digits and _ , starting with a letter.` });
    expect(validateConfigInput({ settings })).toEqual([notAName('__proto__'), notAName('constructor'), notAName('toString')]);
  });

  it('refuses an empty input and a settings list', () => {
    expect(validateConfigInput({})).toEqual([{ field: 'input', message: 'Nothing to set: give monitorUrl, reportPeriodSeconds or settings.' }]);
    expect(validateConfigInput({ settings: [] as unknown as Record<string, unknown> }).map((e) => e.field)).toEqual(['settings']);
    expect(() => toConfigDict({ reportPeriodSeconds: 0 })).toThrow(TypeError);
  });
});
