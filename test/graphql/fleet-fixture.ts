import { expect } from 'vitest';
import { postReport, type TestGateway } from '../helpers/gateway';

export interface FixtureDevice {
  id: string;
  name?: string;
  status?: 'online' | 'offline' | string;
  type?: 'rtsp' | 'photo' | 'file' | 'gb28181' | string;
  ip?: string;
  url?: string;
  group?: string;
}

/** A newer-format report (`mq_license_key` + `media_devices`). */
export function newerReport(licenseKey: string, devices: FixtureDevice[]) {
  return {
    mq_license_key: licenseKey,
    media_devices: devices.map((d, i) => ({
      media_device_id: d.id,
      media_device_name: d.name ?? `camera ${d.id}`,
      media_device_status: d.status ?? 'online',
      media_device_type: d.type ?? 'rtsp',
      media_device_ip: d.ip ?? `192.168.1.${100 + i}`,
      media_device_url: d.url ?? `rtsp://${d.ip ?? `192.168.1.${100 + i}`}:554/${d.id}`,
      permission_id: d.group ?? 'group-1',
    })),
  };
}

/** An older-format report (`dev_sno` + `sub_devices` of `ep_*`) with the box's own `gateway_*` fields. */
export function olderReport(licenseKey: string, devices: FixtureDevice[], gateway: Record<string, unknown> = {}) {
  return {
    dev_sno: licenseKey,
    gateway_ip: '10.0.0.19',
    gateway_name: 'SE5 north gate',
    gateway_status: 'online',
    gateway_sn: 'HQDZKM6BJACJH0182',
    gateway_port: 5555,
    gateway_ext_data: {
      sw_version: '2.3.1',
      sdk_version: '3.0.0',
      gateway_mac: '00:11:22:33:44:55',
      cpu_usage: 23.5,
      memory_usage: '41.2',
      disk_usage: 63,
      temperature: '52℃',
    },
    ...gateway,
    sub_devices: devices.map((d, i) => ({
      ep_id: d.id,
      ep_ip: d.ip ?? `192.168.2.${100 + i}`,
      ep_status: d.status ?? 'online',
      ep_location: d.group ?? 'location-1',
      ep_type: d.type ?? 'rtsp',
      ep_name: d.name ?? `ep ${d.id}`,
    })),
  };
}

/** Posts a report through the ingest route and returns its answer (`boxId` is the box's global id). */
export async function post(gateway: TestGateway, body: unknown): Promise<{ boxId: string; changes: number }> {
  const res = await postReport(gateway.url, body);
  expect(res.status, res.text).toBe(200);
  return res.json;
}
