import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { metric } from '../helpers/metrics';
import { newerReport } from '../graphql/fleet-fixture';
import { login, loginColumns, loginQuery, operate, registeredBox } from './helpers';

// The box login route (/BoxLogin) over real HTTP against a real gateway: every answer, and that a
// refused login changes nothing.

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.close());

const ok = (base: string, seconds = 60) => ({ status: 200, json: { media_device_monitor_url: `${base}/DeviceStatus`, media_device_monitor_report_period: seconds } });

describe('a registered key', () => {
  it('binds the serial at its first login and answers where and how often to report', async () => {
    await registeredBox(gateway, 'LOGIN-1');
    const before = Date.now();
    const answer = await login(gateway.url, loginQuery('LOGIN-1', 'SN-A'));
    expect(answer).toMatchObject(ok(gateway.url));
    expect(Object.keys(answer.json).sort()).toEqual(['media_device_monitor_report_period', 'media_device_monitor_url']);
    const row = await loginColumns(gateway, 'LOGIN-1');
    expect(row).toMatchObject({ hardware_serial: 'SN-A', last_login_address: '127.0.0.1', report_period_seconds: 60, monitor_url: `${gateway.url}/DeviceStatus` });
    expect(row.hardware_bound_at.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(row.last_login_at.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it('logs in again with the same serial; another serial is 409 600002 and changes nothing', async () => {
    await registeredBox(gateway, 'LOGIN-2');
    expect(await login(gateway.url, loginQuery('LOGIN-2', 'SN-A'))).toMatchObject({ status: 200 });
    const bound = await loginColumns(gateway, 'LOGIN-2');
    expect(await login(gateway.url, loginQuery('LOGIN-2', 'SN-A'))).toMatchObject({ status: 200 });
    const again = await loginColumns(gateway, 'LOGIN-2');
    expect(again.hardware_bound_at).toEqual(bound.hardware_bound_at);

    const refused = await login(gateway.url, loginQuery('LOGIN-2', 'SN-B'));
    expect(refused).toMatchObject({ status: 409, json: { error: { code: 600002, message: expect.stringContaining('rebindBoxHardware') } } });
    expect(await loginColumns(gateway, 'LOGIN-2')).toEqual(again);
  });

  it('gives the period configured for the box rather than the default', async () => {
    const { dbId } = await registeredBox(gateway, 'LOGIN-PERIOD');
    await gateway.sql.query('update boxes set report_period_seconds = 15 where id = $1', [dbId]);
    expect(await login(gateway.url, loginQuery('LOGIN-PERIOD', 'SN'))).toMatchObject(ok(gateway.url, 15));
  });

  it('of two first logins with different serials exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const key = `LOGIN-RACE-${round}`;
      await registeredBox(gateway, key);
      const answers = await Promise.all(['SN-X', 'SN-Y', 'SN-X', 'SN-Y'].map((serial) => login(gateway.url, loginQuery(key, serial))));
      const winners = answers.filter((a) => a.status === 200);
      const bound = (await loginColumns(gateway, key)).hardware_serial;
      // Every login with the bound serial succeeded; every other one is 600002.
      expect(answers.map((a) => a.status)).toEqual(['SN-X', 'SN-Y', 'SN-X', 'SN-Y'].map((s) => (s === bound ? 200 : 409)));
      expect(winners).toHaveLength(2);
    }
  });
});

describe('keys that cannot log in', () => {
  it('an unknown key is 404 600000 and makes no box', async () => {
    const answer = await login(gateway.url, loginQuery('NOBODY-1', 'SN'));
    expect(answer).toMatchObject({ status: 404, json: { error: { code: 600000, message: expect.stringContaining('registerBox') } } });
    expect((await gateway.sql.query("select count(*)::int as n from boxes where license_key = 'NOBODY-1'")).rows[0].n).toBe(0);
  });

  it('a removed box\'s key is 600000', async () => {
    const { id } = await registeredBox(gateway, 'LOGIN-REMOVED');
    await operate(gateway, 'mutation($id: ID!) { removeBox(boxId: $id) { __typename } }', { id });
    expect(await login(gateway.url, loginQuery('LOGIN-REMOVED', 'SN'))).toMatchObject({ status: 404, json: { error: { code: 600000 } } });
    expect(await loginColumns(gateway, 'LOGIN-REMOVED')).toMatchObject({ hardware_serial: null, last_login_at: null });
  });
});

describe('the ways a box may ask', () => {
  it('takes mq_license_key, gateway_sn, any letter case of names (with or without _ or -) and path, a trailing slash, extra parameters', async () => {
    await registeredBox(gateway, 'LOGIN-VARIANTS');
    for (const [path, query] of [
      ['/BoxLogin', 'mq_license_key=LOGIN-VARIANTS&device_sn=SN-V'],
      ['/boxlogin/', 'DEV_SNO=LOGIN-VARIANTS&Device_SN=SN-V&mac=00:11:22:33:44:55'],
      ['/api/box-login', 'dev_sno=LOGIN-VARIANTS&gateway_sn=SN-V'],
      ['/API/Box-Login/', 'dev_sno=LOGIN-VARIANTS&mq_license_key=LOGIN-VARIANTS&device_sn=SN-V'],
      // camelCase and dashes, as some firmware and pages spell the names.
      ['/BoxLogin', 'devSno=LOGIN-VARIANTS&deviceSn=SN-V'],
      ['/BoxLogin', 'mqLicenseKey=LOGIN-VARIANTS&gateway-sn=SN-V'],
    ] as const) {
      expect(await login(gateway.url, query, { path }), `${path}?${query}`).toMatchObject(ok(gateway.url));
    }
    expect((await loginColumns(gateway, 'LOGIN-VARIANTS')).hardware_serial).toBe('SN-V');
  });

  it('takes POST with a JSON body, a form body, or the query string', async () => {
    await registeredBox(gateway, 'LOGIN-POST');
    const json = await login(gateway.url, '', { method: 'POST', body: JSON.stringify({ dev_sno: 'LOGIN-POST', device_sn: 'SN-P' }), headers: { 'content-type': 'application/json' } });
    expect(json).toMatchObject(ok(gateway.url));
    const form = await login(gateway.url, '', { method: 'POST', body: 'mq_license_key=LOGIN-POST&device_sn=SN-P', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form).toMatchObject(ok(gateway.url));
    expect(await login(gateway.url, loginQuery('LOGIN-POST', 'SN-P'), { method: 'POST' })).toMatchObject(ok(gateway.url));
    const other = await login(gateway.url, '', { method: 'POST', body: JSON.stringify({ dev_sno: 'LOGIN-POST', device_sn: 'SN-OTHER' }), headers: { 'content-type': 'application/json' } });
    expect(other).toMatchObject({ status: 409, json: { error: { code: 600002 } } });
  });

  it('refuses a compressed body (415, as reports are) rather than calling it not UTF-8', async () => {
    await registeredBox(gateway, 'LOGIN-GZIP');
    const json = JSON.stringify({ dev_sno: 'LOGIN-GZIP', device_sn: 'SN-G' });
    for (const [encoding, body] of [['gzip', gzipSync(json)], ['GZIP', json], ['br', json]] as const) {
      const answer = await login(gateway.url, '', { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
      expect(answer, encoding).toMatchObject({ status: 415, json: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining('uncompressed') } } });
    }
    expect((await loginColumns(gateway, 'LOGIN-GZIP')).hardware_serial).toBeNull();
    expect(await login(gateway.url, '', { method: 'POST', body: json, headers: { 'content-type': 'application/json', 'content-encoding': 'identity' } })).toMatchObject(ok(gateway.url));
  });

  it('refuses other methods (405) and bodies over 4 KiB (413)', async () => {
    expect(await login(gateway.url, loginQuery('X', 'Y'), { method: 'PUT' })).toMatchObject({ status: 405, headers: { allow: 'GET, POST' }, json: { error: { code: 'METHOD_NOT_ALLOWED' } } });
    const big = JSON.stringify({ dev_sno: 'LOGIN-BIG', device_sn: 'S', pad: 'x'.repeat(5000) });
    expect(await login(gateway.url, '', { method: 'POST', body: big, headers: { 'content-type': 'application/json' } })).toMatchObject({
      status: 413,
      json: { error: { code: 'PAYLOAD_TOO_LARGE' } },
    });
  });
});

describe('malformed logins: 400 with what to send, and nothing stored', () => {
  const cases: [string, string, string][] = [
    ['no parameters', '', 'MISSING_ARGUMENTS'],
    ['no serial', 'dev_sno=LOGIN-BAD', 'MISSING_ARGUMENTS'],
    ['empty key', 'dev_sno=&device_sn=SN', 'MISSING_ARGUMENTS'],
    ['empty serial', 'dev_sno=LOGIN-BAD&device_sn=', 'MISSING_ARGUMENTS'],
    ['a NUL in the key', 'dev_sno=LOGIN-BAD%00&device_sn=SN', 'INVALID_ARGUMENTS'],
    ['a byte that is not UTF-8', 'dev_sno=LOGIN-BAD&device_sn=SN%FF', 'INVALID_ARGUMENTS'],
    ['a broken percent-escape', 'dev_sno=LOGIN-BAD%G1&device_sn=SN', 'INVALID_ARGUMENTS'],
    ['a control character', 'dev_sno=LOGIN-BAD&device_sn=S%1BN', 'INVALID_ARGUMENTS'],
    ['a 10,000-character key', `dev_sno=${'K'.repeat(10_000)}&device_sn=SN`, 'INVALID_ARGUMENTS'],
    ['a 129-character serial', `dev_sno=LOGIN-BAD&device_sn=${'S'.repeat(129)}`, 'INVALID_ARGUMENTS'],
    ['a leading space', 'dev_sno=%20LOGIN-BAD&device_sn=SN', 'INVALID_ARGUMENTS'],
    ['a trailing space', 'dev_sno=LOGIN-BAD&device_sn=SN+', 'INVALID_ARGUMENTS'],
    ['the key twice, different', 'dev_sno=LOGIN-BAD&dev_sno=LOGIN-BAD2&device_sn=SN', 'INVALID_ARGUMENTS'],
    ['dev_sno and mq_license_key different', 'dev_sno=LOGIN-BAD&mq_license_key=LOGIN-OTHER&device_sn=SN', 'INVALID_ARGUMENTS'],
    ['device_sn and gateway_sn different', 'dev_sno=LOGIN-BAD&device_sn=SN&gateway_sn=SN2', 'INVALID_ARGUMENTS'],
  ];

  beforeAll(async () => {
    await registeredBox(gateway, 'LOGIN-BAD');
  });

  it.each(cases)('%s', async (_what, query, code) => {
    const answer = await login(gateway.url, query);
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({ error: { code, message: expect.any(String) } });
    expect(await loginColumns(gateway, 'LOGIN-BAD')).toMatchObject({ hardware_serial: null, last_login_at: null, monitor_url: null });
  });

  it('names the missing parameters', async () => {
    expect((await login(gateway.url, '')).json.error.message).toMatch(/dev_sno .* and device_sn/);
    expect((await login(gateway.url, 'dev_sno=K')).json.error.message).not.toMatch(/dev_sno \(/);
  });

  it('a JSON object naming the key or serial twice: the same value logs in, different values are refused like repeated parameters', async () => {
    const post = (body: string) => login(gateway.url, '', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    await registeredBox(gateway, 'LOGIN-JSON-TWICE');
    for (const body of [
      '{"dev_sno": "LOGIN-JSON-TWICE", "device_sn": "SN-J", "dev_sno": "LOGIN-BAD"}',
      '{"dev_sno": "LOGIN-BAD", "dev_sno": "LOGIN-JSON-TWICE", "device_sn": "SN-J"}',
      '{"dev_sno": "LOGIN-JSON-TWICE", "device_sn": "SN-OTHER", "device_sn": "SN-J"}',
      '{"dev_sno": "LOGIN-JSON-TWICE", "device_sn": "SN-J", "device_sn": 7}',
    ]) {
      expect(await post(body), body).toMatchObject({ status: 400, json: { error: { code: 'INVALID_ARGUMENTS', message: expect.stringContaining('more than once') } } });
    }
    expect(await loginColumns(gateway, 'LOGIN-JSON-TWICE')).toMatchObject({ hardware_serial: null, last_login_at: null });
    expect(await loginColumns(gateway, 'LOGIN-BAD')).toMatchObject({ hardware_serial: null, last_login_at: null });
    expect(await post('{"dev_sno": "LOGIN-JSON-TWICE", "device_sn": "SN-J", "dev_sno": "LOGIN-JSON-TWICE", "pad": {"dev_sno": "x", "a": [1, {"b": ","}]}}')).toMatchObject({ status: 200 });
    expect((await loginColumns(gateway, 'LOGIN-JSON-TWICE')).hardware_serial).toBe('SN-J');
  });

  it('a JSON body that is not an object, or not JSON, is INVALID_ARGUMENTS', async () => {
    for (const body of ['[1]', '{"dev_sno": ', '{"dev_sno": {"a": 1}, "device_sn": "SN"}']) {
      const answer = await login(gateway.url, '', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(answer, body).toMatchObject({ status: 400, json: { error: { code: 'INVALID_ARGUMENTS' } } });
    }
    expect(await loginColumns(gateway, 'LOGIN-BAD')).toMatchObject({ hardware_serial: null });
  });

  it('counts the outcomes for /metrics', async () => {
    expect(await metric(gateway.url, 'fleetgate_box_logins_total{outcome="invalid"}')).toBeGreaterThan(0);
    expect(await metric(gateway.url, 'fleetgate_box_logins_total{outcome="ok"}')).toBeGreaterThan(0);
  });
});

describe('the monitor URL', () => {
  it('is the origin the login came in on (its Host), or PUBLIC_URL when set', async () => {
    await registeredBox(gateway, 'LOGIN-HOST');
    const answer = await login(gateway.url, loginQuery('LOGIN-HOST', 'SN'), { headers: { host: 'fleet.lan:8080' } });
    expect(answer.json.media_device_monitor_url).toBe('http://fleet.lan:8080/DeviceStatus');
    // X-Forwarded-* count only behind a trusted proxy.
    const forwarded = await login(gateway.url, loginQuery('LOGIN-HOST', 'SN'), { headers: { host: 'fleet.lan:8080', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' } });
    expect(forwarded.json.media_device_monitor_url).toBe('http://fleet.lan:8080/DeviceStatus');

    // A Host no client could have connected to names no URL: the box gets the socket's origin.
    for (const host of ['fleet.lan:99999', 'fleet.lan:0', '..', 'a..b', '-', 'fleet-.lan', '[zz]:80']) {
      const odd = await login(gateway.url, loginQuery('LOGIN-HOST', 'SN'), { headers: { host } });
      expect(odd.json.media_device_monitor_url, host).toBe(`${gateway.url}/DeviceStatus`);
    }
    expect((await loginColumns(gateway, 'LOGIN-HOST')).monitor_url).toBe(`${gateway.url}/DeviceStatus`);
    for (const [host, url] of [['[::1]:9000', 'http://[::1]:9000'], ['fleet.lan.', 'http://fleet.lan.'], ['10.0.0.7:65535', 'http://10.0.0.7:65535']]) {
      expect((await login(gateway.url, loginQuery('LOGIN-HOST', 'SN'), { headers: { host: host! } })).json.media_device_monitor_url, host).toBe(`${url}/DeviceStatus`);
    }

    const pub = await startGateway({ publicUrl: 'https://fleet.example.com/gw' });
    try {
      await registeredBox(pub, 'LOGIN-PUBLIC');
      expect(await login(pub.url, loginQuery('LOGIN-PUBLIC', 'SN'), { headers: { host: 'elsewhere:1' } })).toMatchObject(ok('https://fleet.example.com/gw'));
      expect((await loginColumns(pub, 'LOGIN-PUBLIC')).monitor_url).toBe('https://fleet.example.com/gw/DeviceStatus');
    } finally {
      await pub.close();
    }
  });
});

describe('limits and policies', () => {
  it('a flood from one address gets 429 with Retry-After, and nothing of the refused logins is stored', async () => {
    const limited = await startGateway({ rateLimitLoginPerAddress: 3 });
    try {
      const answers = await Promise.all(Array.from({ length: 10 }, () => login(limited.url, loginQuery('NOBODY', 'SN'))));
      const refused = answers.filter((a) => a.status === 429);
      expect(refused.length).toBeGreaterThanOrEqual(7);
      expect(refused[0]).toMatchObject({ headers: { 'retry-after': expect.stringMatching(/^\d+$/) }, json: { error: { code: 'RATE_LIMITED' } } });
      expect(answers.filter((a) => a.status === 404)).toHaveLength(10 - refused.length);
      expect((await limited.sql.query('select count(*)::int as n from boxes')).rows[0].n).toBe(0);
      expect(await metric(limited.url, 'fleetgate_box_logins_total{outcome="rate_limited"}')).toBe(refused.length);
    } finally {
      await limited.close();
    }
  });

  it('under INGEST_POLICY=registered and open a login never creates a box', async () => {
    const registered = await startGateway({ ingestPolicy: 'registered' });
    try {
      expect(await login(registered.url, loginQuery('NEW-BOX', 'SN'))).toMatchObject({ status: 404, json: { error: { code: 600000 } } });
      expect((await registered.sql.query('select count(*)::int as n from boxes')).rows[0].n).toBe(0);
    } finally {
      await registered.close();
    }
  });

  it('under INGEST_POLICY=token the URL carries a new secret that works, and the previous login\'s stops', async () => {
    const token = await startGateway({ ingestPolicy: 'token' });
    try {
      await registeredBox(token, 'LOGIN-TOKEN');
      const first = await login(token.url, loginQuery('LOGIN-TOKEN', 'SN'));
      expect(first.json.media_device_monitor_url).toMatch(new RegExp(`^${token.url}/DeviceStatus/fgi_[A-Za-z0-9_-]{43}$`));
      const firstPath = new URL(first.json.media_device_monitor_url).pathname;
      expect(await postReport(token.url, newerReport('LOGIN-TOKEN', [{ id: 'd1' }]), { path: firstPath })).toMatchObject({ status: 200 });
      // The secret is never stored in the clear.
      expect((await loginColumns(token, 'LOGIN-TOKEN')).monitor_url).toBe(`${token.url}/DeviceStatus/fgi_…`);

      const second = await login(token.url, loginQuery('LOGIN-TOKEN', 'SN'));
      const secondPath = new URL(second.json.media_device_monitor_url).pathname;
      expect(secondPath).not.toBe(firstPath);
      expect(await postReport(token.url, newerReport('LOGIN-TOKEN', [{ id: 'd1' }]), { path: secondPath })).toMatchObject({ status: 200 });
      expect(await postReport(token.url, newerReport('LOGIN-TOKEN', [{ id: 'd1' }]), { path: firstPath })).toMatchObject({
        status: 403,
        json: { error: { code: 'INVALID_INGEST_TOKEN' } },
      });
      // A refused login issues no secret and keeps the box's.
      expect(await login(token.url, loginQuery('LOGIN-TOKEN', 'SN-OTHER'))).toMatchObject({ status: 409 });
      expect(await postReport(token.url, newerReport('LOGIN-TOKEN', [{ id: 'd1' }]), { path: secondPath })).toMatchObject({ status: 200 });
    } finally {
      await token.close();
    }
  });
});
