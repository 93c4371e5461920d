import { expect } from 'vitest';
import type { TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';

// The operations the media device tests send (as text: codegen covers test/graphql and
// test/box-config), and what those tests share.

const CHANGE_FIELDS = 'id action requestedBy request target outcome httpStatus response errorCode errorMessage box { id }';
const REQUEST_FIELDS = `id action mediaDeviceId name type url permissionId requestedBy requestedAt state box { id } change { id } device { id externalId removed }`;
const RESULT_FIELDS = `
  __typename
  ... on Error { message }
  ... on MediaDeviceRequested { request { ${REQUEST_FIELDS} } box { id } change { ${CHANGE_FIELDS} } }
  ... on BoxRejectedMediaDevice { code httpStatus change { ${CHANGE_FIELDS} } }
  ... on InvalidMediaDevice { code problems { field message } change { ${CHANGE_FIELDS} } }
  ... on BoxUnreachable { reason requestSent target readBack { failure } change { ${CHANGE_FIELDS} } }
  ... on BoxTimedOut { timeoutMs requestSent target change { ${CHANGE_FIELDS} } }
  ... on BoxBadAnswer { defect httpStatus contentType bodyBytes target change { ${CHANGE_FIELDS} } }
  ... on BoxAddressRefused { refusal address target change { ${CHANGE_FIELDS} } }
`;

export const AddMediaDeviceMutation = `mutation AddMediaDevice($boxId: ID!, $device: MediaDeviceInput!) { addMediaDevice(boxId: $boxId, device: $device) { ${RESULT_FIELDS} } }`;
export const DeleteMediaDeviceMutation = `mutation DeleteMediaDevice($boxId: ID!, $mediaDeviceId: String!) { deleteMediaDevice(boxId: $boxId, mediaDeviceId: $mediaDeviceId) { ${RESULT_FIELDS} } }`;
export const MediaDeviceRequestsQuery = `query MediaDeviceRequests($id: ID!, $state: [MediaDeviceRequestState!], $first: Int) {
  box(id: $id) { mediaDeviceRequests(state: $state, first: $first) { ${REQUEST_FIELDS} } }
}`;
const RegisterBoxMutation = `mutation RegisterBox($licenseKey: String!, $address: String, $apiPort: Int) {
  registerBox(licenseKey: $licenseKey, address: $address, apiPort: $apiPort) { __typename ... on Error { message } ... on RegisterBoxSuccess { box { id } } }
}`;

export type Result = Record<string, any>;

async function data(gateway: TestGateway, document: string, variables: Record<string, unknown>): Promise<Result> {
  const response = await graphql<Result, Record<string, unknown>>(gateway.url, document, variables);
  expect(response.body.errors, JSON.stringify(response.body.errors)).toBeUndefined();
  return response.body.data!;
}

export interface DeviceInput {
  name: string;
  type: string;
  url: string;
  mediaDeviceId?: string;
  permissionId?: string;
  netRelay?: { ip: string; port: number; channel: number; delayTime: number };
  doRtmpForward?: boolean;
  rtmpAddress?: string;
  roiArea?: number[];
}

export async function addDevice(gateway: TestGateway, boxId: string, device: DeviceInput): Promise<Result> {
  return (await data(gateway, AddMediaDeviceMutation, { boxId, device })).addMediaDevice;
}

export async function deleteDevice(gateway: TestGateway, boxId: string, mediaDeviceId: string): Promise<Result> {
  return (await data(gateway, DeleteMediaDeviceMutation, { boxId, mediaDeviceId })).deleteMediaDevice;
}

export async function mediaRequests(gateway: TestGateway, id: string, variables: { state?: string[]; first?: number } = {}): Promise<Result[]> {
  return (await data(gateway, MediaDeviceRequestsQuery, { id, ...variables })).box.mediaDeviceRequests;
}

let registered = 0;

/** A box registered at `address:apiPort`, and its id. */
export async function registerBoxAt(gateway: TestGateway, address: string, apiPort: number, licenseKey = `MED-${process.pid}-${++registered}`): Promise<string> {
  const { registerBox } = await data(gateway, RegisterBoxMutation, { licenseKey, address, apiPort });
  expect(registerBox.__typename).toBe('RegisterBoxSuccess');
  return registerBox.box.id;
}

export { closeFakeBoxes, fakeBox } from '../box-config/operations';

export function databaseId(id: string): number {
  return Number(Buffer.from(id, 'base64').toString('utf8').split(':')[1]);
}

/** What the box's calls left stored: its audit rows (oldest first), request rows and devices. */
export async function stored(gateway: TestGateway, id: string) {
  const boxId = databaseId(id);
  const audit = await gateway.sql.query('select * from box_config_changes where box_id = $1 order by id', [boxId]);
  const requests = await gateway.sql.query('select * from media_device_requests where box_id = $1 order by id', [boxId]);
  const devices = await gateway.sql.query('select external_id, url, removed_at from devices where box_id = $1 order by id', [boxId]);
  return { audit: audit.rows as Result[], requests: requests.rows as Result[], devices: devices.rows as Result[] };
}
