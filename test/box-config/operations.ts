import { expect } from 'vitest';
import { encodeGlobalId } from '../../src/graphql/global-id';
import { startFakeBox, type FakeBox, type FakeBoxOptions } from '../helpers/fake-box';
import type { TestGateway } from '../helpers/gateway';
import { graphql as send, query } from '../helpers/graphql';
import { graphql } from '../graphql/generated';

// The operations the box-config tests send (typed by `npm run codegen`), and what they share.

export const ConfigureBoxMutation = graphql(`
  mutation ConfigureBox($input: ConfigureBoxInput!) {
    configureBox(input: $input) {
      __typename
      ... on Error { message }
      ... on ConfigureBoxSuccess {
        applied
        monitorUrl
        reportPeriodSeconds
        unconfirmedKeys
        readBack { ...ReadBackFields }
        box { id monitorUrl configuredReportPeriodSeconds reportPeriodSeconds }
        change { ...ConfigChangeFields }
      }
      ... on BoxRejectedConfig { code httpStatus otherKeysMayHaveApplied readBack { ...ReadBackFields } change { ...ConfigChangeFields } }
      ... on BoxUnreachable { reason requestSent target readBack { ...ReadBackFields } change { ...ConfigChangeFields } }
      ... on BoxTimedOut { timeoutMs requestSent target change { ...ConfigChangeFields } }
      ... on BoxBadAnswer { defect httpStatus contentType bodyBytes bodyPreview target readBack { ...ReadBackFields } change { ...ConfigChangeFields } }
      ... on BoxAddressRefused { refusal address target change { ...ConfigChangeFields } }
      ... on InvalidConfig { problems { field message } change { ...ConfigChangeFields } }
    }
  }
  fragment ConfigChangeFields on BoxConfigChange {
    id requestedBy requestedAt request target outcome httpStatus response errorCode errorMessage durationMs box { id }
  }
  fragment ReadBackFields on ConfigReadBack { values appliedKeys unappliedKeys failure }
`);

export const PointBoxAtGatewayMutation = graphql(`
  mutation PointBoxAtGateway($boxId: ID!) {
    pointBoxAtGateway(boxId: $boxId) {
      __typename
      ... on Error { message }
      ... on ConfigureBoxSuccess { applied monitorUrl box { id monitorUrl } }
    }
  }
`);

export const BoxConfigQuery = graphql(`
  query BoxConfig($boxId: ID!, $keys: [String!]) {
    boxConfig(boxId: $boxId, keys: $keys) {
      __typename
      ... on Error { message }
      ... on BoxConfigValues { values missingKeys box { id } }
      ... on BoxRejectedConfig { code httpStatus readBack { appliedKeys } change { id } }
      ... on BoxUnreachable { reason target }
      ... on BoxTimedOut { timeoutMs target }
      ... on BoxBadAnswer { defect httpStatus }
      ... on BoxAddressRefused { refusal address target }
      ... on InvalidConfig { problems { field message } }
    }
  }
`);

export const BoxConfigChangesQuery = graphql(`
  query BoxConfigChanges($id: ID!, $first: Int, $after: String) {
    box(id: $id) {
      monitorUrl
      configuredReportPeriodSeconds
      reportPeriodSeconds
      apiAddress
      apiPort
      configuredApiAddress
      configuredApiPort
      configChanges(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { id outcome requestedBy request errorCode response target box { id } }
      }
    }
  }
`);

export const BoxVisibleQuery = graphql(`
  query BoxVisible($id: ID!) {
    box(id: $id) { id status }
  }
`);

export const RegisterBoxMutation = graphql(`
  mutation RegisterBox($licenseKey: String!, $name: String, $address: String, $apiPort: Int) {
    registerBox(licenseKey: $licenseKey, name: $name, address: $address, apiPort: $apiPort) {
      __typename
      ... on Error { message }
      ... on RegisterBoxSuccess {
        restored
        box { id licenseKey name status address apiAddress apiPort configuredApiAddress configuredApiPort lastReportAt }
      }
      ... on LicenseKeyTaken { licenseKey box { id } }
      ... on InvalidBoxInput { problems { field message } }
    }
  }
`);

export const UpdateBoxMutation = graphql(`
  mutation UpdateBox($boxId: ID!, $name: String, $address: String, $apiPort: Int) {
    updateBox(boxId: $boxId, name: $name, address: $address, apiPort: $apiPort) {
      __typename
      ... on Error { message }
      ... on UpdateBoxSuccess { box { id name address apiAddress apiPort configuredApiAddress configuredApiPort } }
      ... on InvalidBoxInput { problems { field message } }
    }
  }
`);

export const RemoveBoxMutation = graphql(`
  mutation RemoveBox($boxId: ID!, $deleteHistory: Boolean) {
    removeBox(boxId: $boxId, deleteHistory: $deleteHistory) {
      __typename
      ... on Error { message }
      ... on RemoveBoxSuccess { removedBoxId licenseKey historyDeleted }
      ... on InvalidBoxInput { problems { field message } }
    }
  }
`);

export type ConfigureResult = Awaited<ReturnType<typeof configure>>;

/** Sends configureBox and returns its result member (the request itself must succeed). */
export async function configure(gateway: TestGateway, input: { boxId: string; monitorUrl?: string | null; reportPeriodSeconds?: number | null; settings?: unknown }) {
  return (await query(gateway.url, ConfigureBoxMutation, { input })).configureBox;
}

let registered = 0;

/** A box the gateway calls at `box.target` (registered with that address and API port), and its id. */
export async function registerFakeBox(gateway: TestGateway, box: FakeBox, licenseKey = `CFG-${process.pid}-${++registered}`): Promise<string> {
  const { registerBox } = await query(gateway.url, RegisterBoxMutation, { licenseKey, address: box.host, apiPort: box.port });
  expect(registerBox.__typename).toBe('RegisterBoxSuccess');
  return (registerBox as { box: { id: string } }).box.id;
}

/** Fake boxes closed by `closeFakeBoxes`. */
const open: FakeBox[] = [];
export async function fakeBox(options: FakeBoxOptions = {}): Promise<FakeBox> {
  const box = await startFakeBox(options);
  open.push(box);
  return box;
}
export async function closeFakeBoxes(): Promise<void> {
  await Promise.all(open.splice(0).map((box) => box.close()));
}

/** The row the box keeps, as stored. */
export async function boxRow(gateway: TestGateway, id: string) {
  const dbId = Number(Buffer.from(id, 'base64').toString('utf8').split(':')[1]);
  const { rows } = await gateway.sql.query(
    'select id, monitor_url, report_period_seconds, api_address, api_port, removed_at from boxes where id = $1',
    [dbId],
  );
  return rows[0] as { id: number; monitor_url: string | null; report_period_seconds: number | null; api_address: string | null; api_port: number | null; removed_at: Date | null } | undefined;
}

/** The audit rows of a box, oldest first, as stored. */
export async function auditRows(gateway: TestGateway, id: string) {
  const dbId = Number(Buffer.from(id, 'base64').toString('utf8').split(':')[1]);
  const { rows } = await gateway.sql.query('select * from box_config_changes where box_id = $1 order by id', [dbId]);
  return rows as Array<Record<string, unknown>>;
}

export const unknownBoxId = encodeGlobalId('Box', 999_999);
export { send };
