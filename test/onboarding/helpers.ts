import { request } from 'node:http';
import { expect } from 'vitest';
import type { TestGateway } from '../helpers/gateway';
import { graphql } from '../helpers/graphql';

// What the onboarding tests share: a box's login over raw HTTP (so odd bytes and headers go out as
// written), and the registration and rebind mutations as an operator sends them.

export interface LoginAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

/**
 * A login as a box sends it: `query` is put after `?` as written (no encoding added), `body` sent as
 * it is; `headers` may set Host.
 */
export function login(
  baseUrl: string,
  query: string,
  { method = 'GET', path = '/BoxLogin', body, headers = {} }: { method?: string; path?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<LoginAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path: `${path}${query === '' ? '' : `?${query}`}`, headers: { ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          resolve({ status: res.statusCode!, headers: res.headers, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The query of a login with these (encoded) values. */
export const loginQuery = (key: string, serial: string) => `dev_sno=${encodeURIComponent(key)}&device_sn=${encodeURIComponent(serial)}`;

/** The data of an operation that must have no errors. */
export async function operate(gateway: TestGateway, document: string, variables: Record<string, unknown> = {}, token?: string): Promise<any> {
  const response = await graphql<any, Record<string, unknown>>(gateway.url, document, variables, { token });
  expect(response.body.errors, JSON.stringify(response.body.errors)).toBeUndefined();
  return response.body.data;
}

const REGISTER = `mutation Register($licenseKey: String, $name: String, $hardwareSerial: String) {
  registerBox(licenseKey: $licenseKey, name: $name, hardwareSerial: $hardwareSerial) {
    __typename
    ... on Error { message }
    ... on InvalidBoxInput { problems { field message } }
    ... on RegisterBoxSuccess { box { id licenseKey name hardwareSerial hardwareBoundAt lastLoginAt } }
  }
}`;

export async function registerBox(gateway: TestGateway, variables: { licenseKey?: string; name?: string; hardwareSerial?: string }): Promise<any> {
  return (await operate(gateway, REGISTER, variables)).registerBox;
}

/** A registered box's database id and global id. */
export async function registeredBox(gateway: TestGateway, licenseKey: string): Promise<{ id: string; dbId: number }> {
  const result = await registerBox(gateway, { licenseKey });
  expect(result.__typename).toBe('RegisterBoxSuccess');
  const id = result.box.id as string;
  return { id, dbId: Number(Buffer.from(id, 'base64').toString('utf8').split(':')[1]) };
}

/** The box row's login columns. */
export async function loginColumns(gateway: TestGateway, licenseKey: string) {
  const { rows } = await gateway.sql.query(
    `select hardware_serial, hardware_bound_at, last_login_at, last_login_address, report_period_seconds, monitor_url
     from boxes where license_key = $1`,
    [licenseKey],
  );
  return rows[0];
}
