import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';
import { createToken } from '../helpers/tokens';
import { login, loginColumns, loginQuery, operate, registeredBox } from './helpers';

// rebindBoxHardware: an operator binds a key to a replacement box's serial (or unbinds it), audited.

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(() => gateway?.close());

const REBIND = `mutation Rebind($boxId: ID!, $hardwareSerial: String) {
  rebindBoxHardware(boxId: $boxId, hardwareSerial: $hardwareSerial) {
    __typename
    ... on Error { message }
    ... on InvalidBoxInput { problems { field message } }
    ... on RebindBoxHardwareSuccess {
      box { id hardwareSerial hardwareBoundAt }
      change { id action outcome target request requestedBy httpStatus box { id } }
    }
  }
}`;

const rebind = async (boxId: string, hardwareSerial: string | null, token?: string) =>
  (await operate(gateway, REBIND, { boxId, hardwareSerial }, token)).rebindBoxHardware;

const auditRows = async (dbId: number) =>
  (await gateway.sql.query('select action, outcome, target, request, requested_by from box_config_changes where box_id = $1 order by id', [dbId])).rows;

describe('rebindBoxHardware', () => {
  it('binds the key to the new serial, audited in the same transaction: the old serial is refused, the new one logs in', async () => {
    const { id, dbId } = await registeredBox(gateway, 'REBIND-1');
    expect(await login(gateway.url, loginQuery('REBIND-1', 'SN-OLD'))).toMatchObject({ status: 200 });
    const result = await rebind(id, 'SN-NEW');
    expect(result).toMatchObject({
      __typename: 'RebindBoxHardwareSuccess',
      box: { id, hardwareSerial: 'SN-NEW', hardwareBoundAt: expect.any(String) },
      change: {
        action: 'REBIND_HARDWARE',
        outcome: 'APPLIED',
        target: null,
        httpStatus: null,
        request: { hardwareSerial: { from: 'SN-OLD', to: 'SN-NEW' } },
        requestedBy: expect.stringMatching(/token #\d+/),
        box: { id },
      },
    });
    expect(await auditRows(dbId)).toEqual([
      { action: 'rebind_hardware', outcome: 'applied', target: null, request: { hardwareSerial: { from: 'SN-OLD', to: 'SN-NEW' } }, requested_by: result.change.requestedBy },
    ]);
    expect(await login(gateway.url, loginQuery('REBIND-1', 'SN-OLD'))).toMatchObject({ status: 409, json: { error: { code: 600002 } } });
    expect(await login(gateway.url, loginQuery('REBIND-1', 'SN-NEW'))).toMatchObject({ status: 200 });
    // Box.configChanges shows the action too.
    const changes = (await operate(gateway, 'query($id: ID!) { box(id: $id) { configChanges(first: 5) { nodes { action } } } }', { id })).box.configChanges.nodes;
    expect(changes).toEqual([{ action: 'REBIND_HARDWARE' }]);
  });

  it('null unbinds: the next login binds its serial', async () => {
    const { id, dbId } = await registeredBox(gateway, 'REBIND-2');
    await login(gateway.url, loginQuery('REBIND-2', 'SN-1'));
    expect(await rebind(id, null)).toMatchObject({ box: { hardwareSerial: null, hardwareBoundAt: null }, change: { request: { hardwareSerial: { from: 'SN-1', to: null } } } });
    expect(await loginColumns(gateway, 'REBIND-2')).toMatchObject({ hardware_serial: null, hardware_bound_at: null });
    expect(await login(gateway.url, loginQuery('REBIND-2', 'SN-2'))).toMatchObject({ status: 200 });
    expect(await loginColumns(gateway, 'REBIND-2')).toMatchObject({ hardware_serial: 'SN-2', hardware_bound_at: expect.any(Date) });
    expect(await login(gateway.url, loginQuery('REBIND-2', 'SN-1'))).toMatchObject({ status: 409 });
    expect((await auditRows(dbId)).map((r) => r.action)).toEqual(['rebind_hardware']);
  });

  it('bad input changes nothing and records nothing: an unknown box, a serial that cannot be one', async () => {
    const { id, dbId } = await registeredBox(gateway, 'REBIND-3');
    await login(gateway.url, loginQuery('REBIND-3', 'SN-KEEP'));
    const before = await loginColumns(gateway, 'REBIND-3');
    for (const serial of ['', ' SN', 'SN\u0001', 'S'.repeat(129)]) {
      expect(await rebind(id, serial), JSON.stringify(serial)).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'hardwareSerial' }] });
    }
    const unknown = Buffer.from('Box:999999').toString('base64');
    expect(await rebind(unknown, 'SN')).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'boxId' }] });
    expect(await rebind('not an id', 'SN')).toMatchObject({ __typename: 'InvalidBoxInput', problems: [{ field: 'boxId' }] });
    expect(await loginColumns(gateway, 'REBIND-3')).toEqual(before);
    expect(await auditRows(dbId)).toEqual([]);
  });

  it('needs the operator role', async () => {
    const { id, dbId } = await registeredBox(gateway, 'REBIND-4');
    const { token } = await createToken(gateway.url, 'viewer');
    const response = await graphql<any, any>(gateway.url, REBIND, { boxId: id, hardwareSerial: 'SN' }, { token });
    expect(response.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await auditRows(dbId)).toEqual([]);
    expect((await loginColumns(gateway, 'REBIND-4')).hardware_serial).toBeNull();
  });
});
