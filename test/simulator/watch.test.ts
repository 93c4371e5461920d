import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatChange, startWatcher, type WatchedChange, type Watcher, type WatchOptions } from '../../tools/simulator/watch';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { runScript } from '../helpers/process';
import { until } from '../helpers/wait';

let gateway: TestGateway;
const watchers: Watcher[] = [];
const proxies: Proxy[] = [];

beforeAll(async () => {
  gateway = await startGateway();
});
afterAll(async () => {
  for (const watcher of watchers) await watcher.stop();
  for (const proxy of proxies) await proxy.close();
  await gateway?.close();
});

type Dev = { id: string; status?: 'online' | 'offline' };

async function post(key: string, devices: Dev[]): Promise<void> {
  const res = await postReport(gateway.url, {
    mq_license_key: key,
    media_devices: devices.map((d) => ({ media_device_id: d.id, media_device_status: d.status ?? 'online', media_device_type: 'rtsp', media_device_name: `cam ${d.id}` })),
  });
  expect(res.status, res.text).toBe(200);
}

const describeChange = (c: WatchedChange) => `${c.device?.externalId ?? 'box'}:${c.fromStatus ?? 'NEW'}→${c.toStatus}`;

/** A watcher collecting what it receives and the notices it gives. */
function watch(graphqlUrl: string, options: Partial<WatchOptions> = {}) {
  const changes: WatchedChange[] = [];
  const notices: string[] = [];
  const errors: Error[] = [];
  const watcher = startWatcher({
    graphqlUrl,
    onChange: (change) => changes.push(change),
    onNotice: (message) => notices.push(message),
    onError: (error) => errors.push(error),
    ...options,
  });
  watchers.push(watcher);
  const of = (key: string) => changes.filter((c) => c.licenseKey === key).map(describeChange);
  return { watcher, changes, notices, errors, of };
}

let probes = 0;
/**
 * The gateway does not acknowledge a subscription, so flip a device of a probe box of its own until
 * the watcher sees it: from then on its subscriptions are registered.
 */
async function untilWatching(w: ReturnType<typeof watch>): Promise<void> {
  await w.watcher.ready;
  const key = `WATCH-PROBE-${++probes}`;
  let status: Dev['status'] = 'online';
  let lastFlip = 0;
  await until(
    () => {
      if (w.of(key).length > 0) return true;
      if (Date.now() - lastFlip >= 100) {
        lastFlip = Date.now();
        status = status === 'online' ? 'offline' : 'online';
        void post(key, [{ id: 'probe', status }]);
      }
      return false;
    },
    () => JSON.stringify({ changes: w.changes.map(describeChange), errors: w.errors.map((e) => e.message) }),
  );
}

interface Proxy {
  url: string;
  /** Closes every connection through it and refuses new ones until `restore()`. */
  drop(): void;
  /** Connections refused since the last `drop()`. */
  readonly refused: number;
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy on loopback in front of the gateway: dropping it is a network cut the gateway did not cause. */
async function startProxy(target: string): Promise<Proxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  let refusing = false;
  let refused = 0;
  const server = net.createServer((client) => {
    if (refusing) {
      refused++;
      return void client.destroy();
    }
    const upstream = net.connect(Number(port), hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: Proxy = {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    get refused() {
      return refused;
    },
    drop() {
      refusing = true;
      refused = 0;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        proxy.drop();
        server.close(() => resolve());
      }),
  };
  proxies.push(proxy);
  return proxy;
}

describe('the simulator watcher', () => {
  it('prints a device change posted to the gateway: time, box, device, from → to, delay', async () => {
    await post('WATCH-A', [{ id: 'cam1' }, { id: 'cam2' }]);
    const w = watch(`${gateway.url}/graphql`, { token: gateway.token });
    await untilWatching(w);

    await post('WATCH-A', [{ id: 'cam1', status: 'offline' }, { id: 'cam2' }]);
    await until(() => w.of('WATCH-A').length >= 1, () => w.changes.map(describeChange).join(', '));

    const change = w.changes.find((c) => c.licenseKey === 'WATCH-A')!;
    expect(change).toMatchObject({ subject: 'DEVICE', licenseKey: 'WATCH-A', device: { externalId: 'cam1', name: 'cam cam1' }, fromStatus: 'ONLINE', toStatus: 'OFFLINE', missedWhileDisconnected: false });
    expect(change.delayMs).toBeGreaterThanOrEqual(0);
    expect(change.delayMs).toBeLessThan(5_000);
    expect(formatChange(change)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}WATCH-A {2}device cam1 \(cam cam1\) {2}ONLINE → OFFLINE {2}\d+ ms$/);
    expect(w.of('WATCH-A')).toEqual(['cam1:ONLINE→OFFLINE']);
    expect(w.errors).toEqual([]);
  });

  it('reconnects after the connection drops and replays the changes of the gap, once each, then goes on live', async () => {
    await post('WATCH-R', [{ id: 'a' }]);
    const proxy = await startProxy(gateway.url);
    const w = watch(`${proxy.url}/graphql`, { retryDelayMs: { min: 50, max: 200 }, token: gateway.token });
    await untilWatching(w);

    await post('WATCH-R', [{ id: 'a', status: 'offline' }]);
    await until(() => w.of('WATCH-R').length === 1, () => w.of('WATCH-R').join(', '));

    proxy.drop();
    await until(() => w.notices.some((n) => n.startsWith('connection lost')), () => w.notices.join(' | '));
    // While it is cut off: a comes back, b appears, b goes offline.
    await post('WATCH-R', [{ id: 'a' }]);
    await post('WATCH-R', [{ id: 'a' }, { id: 'b' }]);
    await post('WATCH-R', [{ id: 'a' }, { id: 'b', status: 'offline' }]);
    await until(() => proxy.refused >= 3, () => `3 refused reconnects; saw ${proxy.refused}`);
    expect(w.of('WATCH-R')).toHaveLength(1);

    proxy.restore();
    await until(() => w.of('WATCH-R').length === 4, () => `${w.of('WATCH-R').join(', ')} | ${w.notices.join(' | ')}`);
    // Live again after the replay: the resumed subscription carries new changes too.
    await post('WATCH-R', [{ id: 'a', status: 'offline' }, { id: 'b', status: 'offline' }]);
    await until(() => w.of('WATCH-R').length === 5, () => w.of('WATCH-R').join(', '));
    // Nothing arrives twice: a change of another box posted last comes after any repeat would.
    await post('WATCH-R-LAST', [{ id: 'z' }]);
    await until(() => w.of('WATCH-R-LAST').length >= 1, () => w.changes.map(describeChange).join(', '));

    expect(w.of('WATCH-R')).toEqual(['a:ONLINE→OFFLINE', 'a:OFFLINE→ONLINE', 'b:NEW→ONLINE', 'b:ONLINE→OFFLINE', 'a:ONLINE→OFFLINE']);
    const missed = w.changes.filter((c) => c.licenseKey === 'WATCH-R').map((c) => c.missedWhileDisconnected);
    expect(missed).toEqual([false, true, true, true, false]);
    expect(w.watcher.reconnects).toBe(1);
    expect(w.notices).toEqual([expect.stringMatching(/^connection lost/), 'reconnected; replaying the changes missed since the last one received']);
    expect(w.errors).toEqual([]);
  });

  it('resumes without a gap even when the connection drops before any change arrived', async () => {
    await post('WATCH-Q', [{ id: 'q' }]);
    const proxy = await startProxy(gateway.url);
    const w = watch(`${proxy.url}/graphql`, { retryDelayMs: { min: 50, max: 200 }, token: gateway.token });
    await w.watcher.ready;
    expect(w.watcher.lastCursor).toBeDefined(); // the newest change when watching began

    proxy.drop();
    await until(() => w.notices.some((n) => n.startsWith('connection lost')), () => w.notices.join(' | '));
    await post('WATCH-Q', [{ id: 'q', status: 'offline' }]);
    proxy.restore();
    await until(() => w.of('WATCH-Q').length === 1, () => `${w.of('WATCH-Q').join(', ')} | ${w.notices.join(' | ')}`);
    expect(w.of('WATCH-Q')).toEqual(['q:ONLINE→OFFLINE']);
    expect(w.changes.find((c) => c.licenseKey === 'WATCH-Q')!.missedWhileDisconnected).toBe(true);
  });
});

const run = (script: string, args: string[]) => runScript(script, args);

describe('bench/live.ts options', () => {
  it('--help prints every option and exits 0 without starting anything', async () => {
    const { code, stdout } = await run('bench/live.ts', ['--help']);
    expect(code).toBe(0);
    for (const option of ['--subscribers', '--interval-ms', '--duration', '--boxes', '--watch-all', '--single-only', '--replicas-only', '--connections-per-process', '--profile']) {
      expect(stdout).toContain(option);
    }
  });

  it('refuses a bad option with its reason and exit status 2', async () => {
    const bad = await run('bench/live.ts', ['--subscribers', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--subscribers 0: expected a whole number from 1 to 100000');
    const both = await run('bench/live.ts', ['--single-only', '--replicas-only']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('exclude each other');
  });
});
