import { randomUUID } from 'node:crypto';
import { deriveSeed, pick, randomHex, randomInt, randomUuid, seededRandom, type Random } from './random';

/** The four capture-device types the box documents. */
export const DEVICE_TYPES = ['photo', 'rtsp', 'file', 'gb28181'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];
export type DeviceStatus = 'online' | 'offline';

/** `new`: `mq_license_key` + `media_devices`; `old`: `dev_sno` + `sub_devices` of `ep_*` fields. */
export type ReportFormat = 'new' | 'old';
/** `mixed` alternates boxes between the two formats: even box numbers new, odd old. */
export type FleetFormat = ReportFormat | 'mixed';

/** A capture device watched by a simulated box. */
export interface SimulatedDevice {
  /** `media_device_id`: a uuid, unique per box. */
  id: string;
  name: string;
  /** Unique per box, so the older format's `ep_id` (= licence key + `__` + ip) is unique too. */
  ip: string;
  type: DeviceType;
  /** An rtsp URL, a plain IP, a file path or a gb28181 URL, as the type demands; unique per box. */
  url: string;
  /** `permission_id` (newer format): one of the box's few permission groups. */
  permissionId: string;
  /** `ep_location` (older format): one of the box's few locations. */
  locationId: string;
  status: DeviceStatus;
}

/** Box health an older box adds as `gateway_ext_data`; it drifts a little between reports. */
export interface BoxHealth {
  cpuUsage: number;
  memoryUsage: number;
  diskUsage: number;
  temperature: number;
}

export interface NewFormatDevice {
  media_device_id: string;
  media_device_name: string;
  media_device_status: DeviceStatus;
  media_device_ip: string;
  permission_id: string;
  media_device_type: DeviceType;
  media_device_url: string;
}

/** The newer report, field for field as in the vendor's "采集端设备状态获取方式" page. */
export interface NewFormatReport {
  mq_license_key: string;
  media_devices: NewFormatDevice[];
}

export interface OldFormatDevice {
  ep_id: string;
  ep_ip: string;
  ep_status: DeviceStatus;
  ep_location: string;
  ep_type: DeviceType;
  ep_name: string;
}

/** A figure is absent while the box's reading of it fails (see SimulatedBox.silentFigures). */
export interface GatewayExtData {
  sw_version: string;
  sdk_version: string;
  gateway_mac: string;
  cpu_usage?: number;
  memory_usage?: number;
  disk_usage?: number;
  temperature?: number;
}

/** The older report ("采集端设备状态信息上报") with the box-level `gateway_*` fields older boxes add. */
export interface OldFormatReport {
  dev_sno: string;
  sub_devices: OldFormatDevice[];
  gateway_ip: string;
  gateway_name: string;
  gateway_status: 'online';
  gateway_sn: string;
  gateway_port: number;
  gateway_ext_data: GatewayExtData;
}

export type DeviceStatusReport = NewFormatReport | OldFormatReport;

/** Most media devices a box watches: one more is refused with DEVICE_MAX_NUM_ERROR. */
export const MAX_MEDIA_DEVICES = 16;

/** A device added through the box's `addmediadevice`, as it was asked for. */
export interface AddedDevice {
  /** The box makes a uuid when none is given. */
  id?: string;
  name: string;
  type: DeviceType;
  url: string;
  permissionId?: string;
}

/** The box's `addmediadevice` answer: where a device would be added now, or why not. */
export type AddDeviceResult = { ok: true; device: SimulatedDevice } | { ok: false; code: string; message: string };

/** The box's own REST API port, reported as `gateway_port`. */
export const BOX_API_PORT = 5555;

const LICENSE_KEY_PREFIX = 'SIM';
const PLACES = ['前门', '后门', '大厅', '电梯口', '停车场', '东侧通道', '西侧通道', '食堂', '仓库', '会议室'];
const KIND_BY_TYPE: Record<DeviceType, string> = { rtsp: '摄像机', photo: '抓拍机', file: '录像', gb28181: '国标球机' };
const RTSP_PATHS = ['/main/av', '/ch1', '/h264/ch1/main/av_stream', '/Streaming/Channels/101'];
const SOFTWARE_VERSIONS = ['1.6.3', '1.7.0', '1.7.2'];
const SDK_VERSIONS = ['2.5.0', '2.6.0', '2.7.0'];

/**
 * A 24-character licence key shaped like the vendor's `ZKZCPI000120190807142601`: `SIM`, the box number
 * (1-based, 7 digits) and a timestamp-like suffix ending in the seed, so two seeds make two fleets.
 */
export function licenseKeyFor(index: number, seed: number): string {
  const boxNumber = String(index + 1).padStart(7, '0');
  const suffix = `20240101${String(seed % 1_000_000).padStart(6, '0')}`;
  return `${LICENSE_KEY_PREFIX}${boxNumber}${suffix}`;
}

export function formatForBox(format: FleetFormat, index: number): ReportFormat {
  if (format !== 'mixed') return format;
  return index % 2 === 0 ? 'new' : 'old';
}

/** The n-th address from .101 up in the box's LAN, spilling into the next /24 after .254. */
function deviceIp(lanOctet: number, deviceIndex: number): string {
  const n = 100 + deviceIndex;
  return `192.168.${lanOctet + Math.floor(n / 254)}.${(n % 254) + 1}`;
}

/** Half rtsp, a quarter photo, an eighth each file and gb28181: roughly a real site's mix. */
function drawDeviceType(random: Random): DeviceType {
  const r = random();
  if (r < 0.5) return 'rtsp';
  if (r < 0.75) return 'photo';
  return r < 0.875 ? 'file' : 'gb28181';
}

function deviceUrl(random: Random, type: DeviceType, ip: string, deviceIndex: number): string {
  const number = String(deviceIndex + 1).padStart(6, '0');
  switch (type) {
    case 'rtsp':
      return `rtsp://${ip}:554${pick(random, RTSP_PATHS)}`;
    case 'photo':
      return ip;
    case 'file':
      return `/data/video/record_${number}.mp4`;
    case 'gb28181':
      // A 20-digit GB/T 28181 device code: area 34020000, industry 00, type 132 (IP camera), serial.
      return `gb28181://34020000001320${number}`;
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Where each health figure goes in `gateway_ext_data`. */
export const EXT_DATA_KEYS = {
  cpuUsage: 'cpu_usage',
  memoryUsage: 'memory_usage',
  diskUsage: 'disk_usage',
  temperature: 'temperature',
} as const satisfies Record<keyof BoxHealth, keyof GatewayExtData>;
const HEALTH_FIELDS = Object.keys(EXT_DATA_KEYS) as Array<keyof BoxHealth>;

/**
 * Per report and figure, the chance that a box's reading of it starts failing, and then that it
 * recovers: a gap in one figure or another every 500 reports of a box (about 3 hours at 20 s), 50
 * reports long on average, so a day of health shows thinner hours and empty ones now and then.
 */
const FIGURE_LOST_RATE = 0.0005;
const FIGURE_BACK_RATE = 0.02;

/** A random walk step kept inside [min, max], with one decimal like a box's own figures. */
function drift(random: Random, value: number, step: number, min: number, max: number): number {
  return round1(Math.min(max, Math.max(min, value + (random() * 2 - 1) * step)));
}

export interface SimulatedBoxOptions {
  index: number;
  seed: number;
  format: ReportFormat;
  devicesPerBox: number;
  reportPeriodSeconds: number;
  monitorUrl: string;
  /** Share of devices offline in the first report. Default 0.05. */
  initialOfflineRate?: number;
  /** Its licence key and hardware serial when given (keys issued by the gateway); else drawn from the seed. */
  identity?: BoxIdentity;
}

/** What a box knows of itself before it logs in: the licence key it was given, and its hardware serial. */
export interface BoxIdentity {
  licenseKey: string;
  serialNumber?: string;
}

/**
 * One simulated SE AI box: its licence key, its devices and their statuses, and the report it sends.
 * Content comes from a generator seeded by (seed, box number), so a re-run sends the same reports.
 */
export class SimulatedBox {
  readonly index: number;
  readonly licenseKey: string;
  readonly format: ReportFormat;
  readonly name: string;
  readonly ip: string;
  /** Its hardware serial (`device_sn` at login, `gateway_sn` in older reports); new hardware has a new one. */
  serialNumber: string;
  /** Counts hardware swaps (see `replaceHardware`): a box logs in again after one. */
  hardwareGeneration = 0;
  /** Login mode: the hardware generation of its last successful login; undefined before its first. */
  loggedInGeneration: number | undefined;
  /** Swap the hardware right after the next successful login (a swap asked for before the box ever logged in). */
  replaceAfterLogin = false;
  readonly mac: string;
  readonly softwareVersion: string;
  readonly sdkVersion: string;
  readonly devices: SimulatedDevice[];
  readonly health: BoxHealth;
  /**
   * Seconds between reports: the box's `MEDIA_DEVICE_MONITOR_REPORT_PEROID` (sic, the vendor's spelling).
   * Read at every tick, so a `setconfigs` call can change it while the simulator runs.
   */
  reportPeriodSeconds: number;
  /** Where reports go: the box's `MEDIA_DEVICE_MONITOR_URL`. Read at every tick, like the period. */
  monitorUrl: string;
  /** Port of the box's own REST API, reported as `gateway_port`; the simulator sets the one it listens on. */
  apiPort = BOX_API_PORT;
  /** The box's other settings, as its REST API lists and sets them (tools/simulator/box-api.ts). */
  readonly settings: Record<string, string | number | boolean> = {
    HISTORY_EVENT_UPLOAD_URL: '',
    HISTORY_REPORT_PEROID: 60,
    MATCH_THRESHOLD: 0.75,
    GATE_PASS_MODE: 'normal',
  };
  /** Health figures the box leaves out of its reports for now: reading them fails (older boxes only). */
  readonly silentFigures = new Set<keyof BoxHealth>();
  /** Reports built so far. */
  reportCount = 0;
  /** A silenced box sends nothing (as if unplugged) until recovered; see faults.ts. */
  silent = false;
  /** Indexes of devices that change status at every report of the box until recovered; see faults.ts. */
  readonly flapping = new Set<number>();
  /** Indexes of recovered devices that come back online at the box's next report (a change like any other). */
  readonly recovering = new Set<number>();
  private readonly random: Random;
  private readonly timing: Random;
  /** Its own stream, so figures coming and going leave every other draw (statuses, drift) as it was. */
  private readonly sensors: Random;

  constructor(options: SimulatedBoxOptions) {
    const { index, seed, format } = options;
    this.index = index;
    this.format = format;
    this.licenseKey = options.identity?.licenseKey ?? licenseKeyFor(index, seed);
    this.reportPeriodSeconds = options.reportPeriodSeconds;
    this.monitorUrl = options.monitorUrl;
    const random = seededRandom(deriveSeed(seed, 'box', index));
    this.random = random;
    this.timing = seededRandom(deriveSeed(seed, 'timing', index));
    this.sensors = seededRandom(deriveSeed(seed, 'sensors', index));

    const lanOctet = randomInt(random, 1, 200);
    const boxNumber = String(index + 1).padStart(4, '0');
    this.name = `SE5-${boxNumber}`;
    this.ip = `192.168.${lanOctet}.19`;
    const drawnSerial = `SE5A${randomHex(random, 12)}`;
    this.serialNumber = options.identity?.serialNumber ?? drawnSerial;
    this.mac = ['02', ...Array.from({ length: 5 }, () => randomHex(random, 2))].join(':').toLowerCase();
    this.softwareVersion = pick(random, SOFTWARE_VERSIONS);
    this.sdkVersion = pick(random, SDK_VERSIONS);
    this.health = {
      cpuUsage: round1(10 + random() * 40),
      memoryUsage: round1(30 + random() * 30),
      diskUsage: round1(20 + random() * 40),
      temperature: round1(45 + random() * 15),
    };

    // A handful of permission groups / locations per box, shared by its devices as on a real site.
    const permissionIds = Array.from({ length: 3 }, () => randomUuid(random));
    const locationIds = Array.from({ length: 3 }, () => randomUuid(random));
    const offlineRate = options.initialOfflineRate ?? 0.05;
    this.devices = Array.from({ length: options.devicesPerBox }, (_, d) => {
      const ip = deviceIp(lanOctet, d);
      const type = drawDeviceType(random);
      return {
        id: randomUuid(random),
        name: `${pick(random, PLACES)}${KIND_BY_TYPE[type]}${d + 1}`,
        ip,
        type,
        url: deviceUrl(random, type, ip, d),
        permissionId: pick(random, permissionIds),
        locationId: pick(random, locationIds),
        status: random() < offlineRate ? 'offline' : 'online',
      };
    });
  }

  /**
   * Moves the box one report forward: each device flips online/offline with probability `flipRate`,
   * and an older box's health figures drift, now and then one going silent for a while. Returns the
   * indexes of the devices that flipped.
   */
  advance(flipRate: number): number[] {
    const flipped: number[] = [];
    this.devices.forEach((device, i) => {
      // The draw is taken for a flapping device too, so flapping leaves every other device's flips as they were.
      if (this.random() < flipRate || this.flapping.has(i)) {
        device.status = device.status === 'online' ? 'offline' : 'online';
        flipped.push(i);
      } else if (this.recovering.has(i) && device.status === 'offline') {
        device.status = 'online';
        flipped.push(i);
      }
    });
    this.recovering.clear();
    if (this.format === 'old') {
      this.driftHealth();
      this.failOrRecoverSensors();
    }
    return flipped;
  }

  private failOrRecoverSensors(): void {
    for (const field of HEALTH_FIELDS) {
      const draw = this.sensors();
      if (this.silentFigures.has(field)) {
        if (draw < FIGURE_BACK_RATE) this.silentFigures.delete(field);
      } else if (draw < FIGURE_LOST_RATE) this.silentFigures.add(field);
    }
  }

  private driftHealth(): void {
    const h = this.health;
    h.cpuUsage = drift(this.random, h.cpuUsage, 3, 1, 99);
    h.memoryUsage = drift(this.random, h.memoryUsage, 1, 10, 95);
    h.diskUsage = drift(this.random, h.diskUsage, 0.1, 5, 98);
    h.temperature = drift(this.random, h.temperature, 0.5, 35, 85);
  }

  /** The report for the box's current state, in its format. Does not change the state. */
  buildReport(): DeviceStatusReport {
    return this.format === 'new' ? this.buildNewFormatReport() : this.buildOldFormatReport();
  }

  /** `advance` then `buildReport`: what the box sends at each tick. */
  nextReport(flipRate: number): { report: DeviceStatusReport; flipped: number[] } {
    const flipped = this.reportCount === 0 ? [] : this.advance(flipRate);
    this.reportCount++;
    return { report: this.buildReport(), flipped };
  }

  buildNewFormatReport(): NewFormatReport {
    return {
      mq_license_key: this.licenseKey,
      media_devices: this.devices.map((d) => ({
        media_device_id: d.id,
        media_device_name: d.name,
        media_device_status: d.status,
        media_device_ip: d.ip,
        permission_id: d.permissionId,
        media_device_type: d.type,
        media_device_url: d.url,
      })),
    };
  }

  buildOldFormatReport(): OldFormatReport {
    return {
      dev_sno: this.licenseKey,
      sub_devices: this.devices.map((d, i) => ({
        ep_id: `${this.licenseKey}__${d.ip}`,
        ep_ip: d.ip,
        ep_status: d.status,
        ep_location: d.locationId,
        ep_type: d.type,
        // ep_name is optional; the vendor's own example sends it empty, so every tenth device does too.
        ep_name: i % 10 === 9 ? '' : d.name,
      })),
      gateway_ip: this.ip,
      gateway_name: this.name,
      gateway_status: 'online',
      gateway_sn: this.serialNumber,
      gateway_port: this.apiPort,
      gateway_ext_data: this.extData(),
    };
  }

  /** `gateway_ext_data`: the box's versions and the health figures it can read now. */
  private extData(): GatewayExtData {
    const ext: GatewayExtData = { sw_version: this.softwareVersion, sdk_version: this.sdkVersion, gateway_mac: this.mac };
    for (const field of HEALTH_FIELDS) if (!this.silentFigures.has(field)) ext[EXT_DATA_KEYS[field]] = this.health[field];
    return ext;
  }

  /**
   * The box's hardware is replaced (same licence key, new serial), as after a repair: it logs in again
   * before its next report, and the gateway refuses the key (600002) until an operator rebinds it.
   */
  replaceHardware(): void {
    this.hardwareGeneration++;
    this.serialNumber = `SE5R${String(this.hardwareGeneration).padStart(2, '0')}${this.serialNumber.slice(6)}`;
  }

  /**
   * `addmediadevice`: the device is watched (online) from the box's next report. Refused, as a box
   * does, past MAX_MEDIA_DEVICES, for a URL it already has, or an id it already has. The draw-free
   * uuid keeps the seeded streams (statuses, timing) as they were.
   */
  addDevice(added: AddedDevice): AddDeviceResult {
    if (this.devices.length >= MAX_MEDIA_DEVICES) return { ok: false, code: 'DEVICE_MAX_NUM_ERROR', message: `the box watches ${MAX_MEDIA_DEVICES} media devices at most` };
    if (this.devices.some((d) => d.url === added.url)) return { ok: false, code: 'DEVICE_ADDRESS_DUPLICATE_ERROR', message: `media device url already exists: ${added.url}` };
    if (added.id !== undefined && this.devices.some((d) => d.id === added.id)) return { ok: false, code: 'INVALID_ARGUMENTS', message: `media_device_id already exists: ${added.id}` };
    const host = added.type === 'rtsp' && URL.canParse(added.url) ? new URL(added.url).hostname : added.type === 'photo' ? added.url : this.ip;
    const device: SimulatedDevice = {
      id: added.id ?? randomUUID(),
      name: added.name,
      ip: host,
      type: added.type,
      url: added.url,
      permissionId: added.permissionId ?? '',
      locationId: added.permissionId ?? '',
      status: 'online',
    };
    this.devices.push(device);
    return { ok: true, device };
  }

  /** `deletemediadevice`: the device is gone from the box's next report; undefined when it has none with this id. */
  removeDevice(id: string): SimulatedDevice | undefined {
    const index = this.devices.findIndex((d) => d.id === id);
    if (index === -1) return undefined;
    const [removed] = this.devices.splice(index, 1);
    // Faults name devices by index: those after the removed one move down by one.
    for (const set of [this.flapping, this.recovering]) {
      const kept = [...set].filter((i) => i !== index).map((i) => (i > index ? i - 1 : i));
      set.clear();
      for (const i of kept) set.add(i);
    }
    return removed;
  }

  /** Delay before the first report: anywhere in the first period, so a fleet does not report in lockstep. */
  firstDelayMs(): number {
    return this.timing() * this.reportPeriodSeconds * 1000;
  }

  /** Delay before the next report: the current period ±`jitter` (a share, default 10%). */
  nextDelayMs(jitter = 0.1): number {
    return this.reportPeriodSeconds * 1000 * (1 + (this.timing() * 2 - 1) * jitter);
  }
}

export interface FleetOptions {
  boxes: number;
  devicesPerBox: number;
  format: FleetFormat;
  seed: number;
  reportPeriodSeconds: number;
  monitorUrl: string;
  initialOfflineRate?: number;
  /** Box n takes identity n (licence keys issued by the gateway, with or without serials). */
  identities?: readonly BoxIdentity[];
}

export function createFleet(options: FleetOptions): SimulatedBox[] {
  return Array.from(
    { length: options.boxes },
    (_, index) =>
      new SimulatedBox({
        index,
        seed: options.seed,
        format: formatForBox(options.format, index),
        devicesPerBox: options.devicesPerBox,
        reportPeriodSeconds: options.reportPeriodSeconds,
        monitorUrl: options.monitorUrl,
        initialOfflineRate: options.initialOfflineRate,
        identity: options.identities?.[index],
      }),
  );
}
