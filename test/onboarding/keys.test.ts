import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISSUED_LICENSE_KEY, licenseKeyAt } from '../../src/models/license-keys';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { createToken } from '../helpers/tokens';
import { login, loginColumns, loginQuery, operate, registerBox } from './helpers';
import { graphql } from '../helpers/graphql';

// Licence keys this gateway issues: registerBox without a key, registerBoxes in bulk.

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway({ licenseKeyPrefix: 'TESTKY' });
});
afterAll(() => gateway?.close());

const REGISTER_BOXES = `mutation RegisterBoxes($count: Int!, $namePrefix: String) {
  registerBoxes(count: $count, namePrefix: $namePrefix) {
    __typename
    ... on Error { message }
    ... on InvalidBoxInput { problems { field message } }
    ... on RegisterBoxesSuccess { boxes { id licenseKey name status hardwareSerial } }
  }
}`;

const boxCount = async () => (await gateway.sql.query('select count(*)::int as n from boxes')).rows[0].n as number;

describe('the key shape', () => {
  it('is 6 letters, 4 digits and the UTC time yyyyMMddHHmmss', () => {
    const key = licenseKeyAt('ZKZCPI', new Date('2019-08-07T14:26:01.999Z'));
    expect(key).toMatch(/^ZKZCPI\d{4}20190807142601$/);
    expect(key).toHaveLength(24);
  });
});

describe('registerBox without a key', () => {
  it('issues one with LICENSE_KEY_PREFIX and the current UTC time', async () => {
    const before = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const result = await registerBox(gateway, { name: 'issued' });
    const after = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    expect(result).toMatchObject({ __typename: 'RegisterBoxSuccess', box: { name: 'issued', hardwareSerial: null } });
    const key: string = result.box.licenseKey;
    expect(key).toMatch(ISSUED_LICENSE_KEY);
    expect(key.slice(0, 6)).toBe('TESTKY');
    expect(key.slice(10) >= before && key.slice(10) <= after).toBe(true);
    // The box logs in with it.
    expect(await login(gateway.url, loginQuery(key, 'SN-ISSUED'))).toMatchObject({ status: 200 });
  });

  it('with hardwareSerial binds it now: that serial logs in, another is 600002', async () => {
    const result = await registerBox(gateway, { hardwareSerial: 'SN-PRE' });
    expect(result.box).toMatchObject({ hardwareSerial: 'SN-PRE', hardwareBoundAt: expect.any(String), lastLoginAt: null });
    expect(await login(gateway.url, loginQuery(result.box.licenseKey, 'SN-OTHER'))).toMatchObject({ status: 409, json: { error: { code: 600002 } } });
    expect(await login(gateway.url, loginQuery(result.box.licenseKey, 'SN-PRE'))).toMatchObject({ status: 200 });
  });

  it('refuses a serial with control characters or spaces around it, and stores nothing', async () => {
    const before = await boxCount();
    for (const hardwareSerial of ['SN\u0000', ' SN', 'S'.repeat(129), '']) {
      const result = await registerBox(gateway, { hardwareSerial });
      expect(result, JSON.stringify(hardwareSerial)).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'hardwareSerial', message: expect.stringContaining('hardware serial') }] });
    }
    expect(await boxCount()).toBe(before);
  });
});

describe('registerBoxes', () => {
  it('issues 1000 distinct keys of the shape in one call, named in order', async () => {
    const result = (await operate(gateway, REGISTER_BOXES, { count: 1000, namePrefix: 'gate-' })).registerBoxes;
    expect(result.__typename).toBe('RegisterBoxesSuccess');
    const boxes: { licenseKey: string; name: string; status: string }[] = result.boxes;
    expect(boxes).toHaveLength(1000);
    expect(new Set(boxes.map((b) => b.licenseKey)).size).toBe(1000);
    for (const box of boxes) expect(box.licenseKey).toMatch(/^TESTKY\d{18}$/);
    expect(boxes.map((b) => b.name)).toEqual(Array.from({ length: 1000 }, (_, i) => `gate-${String(i + 1).padStart(4, '0')}`));
    expect(boxes.every((b) => b.status === 'OFFLINE')).toBe(true);
  });

  it('without a prefix the boxes have no names', async () => {
    const result = (await operate(gateway, REGISTER_BOXES, { count: 2 })).registerBoxes;
    expect(result.boxes.map((b: { name: string | null }) => b.name)).toEqual([null, null]);
  });

  it('bad input registers none: count out of range, a name prefix with control characters or too long', async () => {
    const before = await boxCount();
    const cases: [Record<string, unknown>, string][] = [
      [{ count: 0 }, 'count'],
      [{ count: 1001 }, 'count'],
      [{ count: -5 }, 'count'],
      [{ count: 3, namePrefix: 'gate\u0007' }, 'namePrefix'],
      [{ count: 3, namePrefix: 'x'.repeat(200) }, 'namePrefix'],
    ];
    for (const [variables, field] of cases) {
      const result = (await operate(gateway, REGISTER_BOXES, variables)).registerBoxes;
      expect(result, JSON.stringify(variables)).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field, message: expect.any(String) }] });
    }
    expect(await boxCount()).toBe(before);
  });

  it('needs the operator role', async () => {
    const { token } = await createToken(gateway.url, 'viewer');
    const before = await boxCount();
    const response = await graphql<any, any>(gateway.url, REGISTER_BOXES, { count: 2 }, { token });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await boxCount()).toBe(before);
  });

  it('a viewer reads the bound serial and last login', async () => {
    const { token } = await createToken(gateway.url, 'viewer');
    const result = await registerBox(gateway, { licenseKey: 'KEYS-VIEW', hardwareSerial: 'SN-VIEW' });
    await login(gateway.url, loginQuery('KEYS-VIEW', 'SN-VIEW'));
    const data = (await operate(gateway, 'query($id: ID!) { box(id: $id) { hardwareSerial hardwareBoundAt lastLoginAt } }', { id: result.box.id }, token)).box;
    const row = await loginColumns(gateway, 'KEYS-VIEW');
    expect(data).toEqual({ hardwareSerial: 'SN-VIEW', hardwareBoundAt: row.hardware_bound_at.toISOString(), lastLoginAt: row.last_login_at.toISOString() });
  });
});
