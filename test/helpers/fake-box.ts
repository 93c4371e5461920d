import http from 'node:http';
import type { Socket } from 'node:net';

/** One request as the fake box got it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  rawBody: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  body: unknown;
}

export interface BoxErrorAnswer {
  code: string;
  message: string;
}

/** How the box answers; `box` is a working box, the others are ways a box goes wrong. */
export type FakeBoxBehavior =
  | { kind: 'box' }
  /** Reads the request and never answers. */
  | { kind: 'hang' }
  /** Sends headers and half a body, then nothing. */
  | { kind: 'stall_body' }
  /** Answers every request with this error (e.g. a firmware that refuses our Content-Type). */
  | { kind: 'error'; error: BoxErrorAnswer; status?: number }
  | { kind: 'redirect'; status: number; location: string }
  /** Answers with these bytes as they are. */
  | { kind: 'raw'; status: number; body: string; contentType?: string }
  /** Streams `bytes` of JSON-looking text in `chunkBytes` pieces every `intervalMs`, announcing the length or not. */
  | { kind: 'huge'; bytes: number; chunkBytes?: number; intervalMs?: number; announceLength?: boolean }
  /** Reads the request, then resets the connection (TCP RST). */
  | { kind: 'reset' };

export interface FakeBoxOptions {
  /** The box's settings at start. Default: the two monitor settings at the vendor's defaults. */
  config?: Record<string, string | number | boolean>;
  /** Keys setconfigs refuses, with the error it answers; the other keys of the call still apply. */
  refuse?: Record<string, BoxErrorAnswer>;
  /** HTTP status of error answers. Default 400 (the vendor does not document one). */
  errorStatus?: number;
  /** Whether getconfigs `{}` lists every key; false answers MISSING_ARGUMENTS. Default true. */
  listsAll?: boolean;
  behavior?: FakeBoxBehavior;
  /** Keys setconfigs neither applies nor echoes (a firmware that does not know them); the call still succeeds. */
  ignore?: string[];
  /** Keys setconfigs applies but leaves out of its echo. */
  echoOmits?: string[];
  /** How getconfigs answers when it should not answer as the box does (e.g. `hang`, `error`); setconfigs keeps `behavior`. */
  getconfigs?: FakeBoxBehavior;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** The box's media devices at start (addmediadevice / deletemediadevice change them). Default none. */
  mediaDevices?: FakeMediaDevice[];
  /** An error addmediadevice or deletemediadevice answers instead of acting (other calls answer as the box). */
  mediaErrors?: { add?: BoxErrorAnswer; delete?: BoxErrorAnswer };
  /** The media calls are held unanswered until `releaseMedia()`, as a busy box would (to see calls overlap or not). */
  holdMedia?: boolean;
}

/** A media device as the box keeps it. */
export interface FakeMediaDevice {
  media_device_id: string;
  media_device_name: string;
  media_device_type: string;
  media_device_url: string;
  permission_id?: string;
}

export interface FakeBox {
  host: string;
  port: number;
  /** `{ address, port }` for the client. */
  target: { address: string; port: number };
  /** The box's current settings. */
  config: Record<string, unknown>;
  requests: RecordedRequest[];
  /** The box's media devices now. */
  mediaDevices: FakeMediaDevice[];
  /** When each media call arrived and was answered (ms since the epoch), in arrival order. */
  mediaCalls: Array<{ path: string; arrivedAt: number; answeredAt?: number }>;
  /** With `holdMedia`: answers the media calls held so far; returns how many. */
  releaseMedia(): number;
  /** What a `huge` answer got out before it ended or its connection closed. */
  streamed: { bytes: number; complete: boolean } | undefined;
  behave(behavior: FakeBoxBehavior): void;
  /** Sockets still open on the box's side. */
  openConnections(): number;
  /** Resolves once no socket is open, or rejects after `timeoutMs`. */
  waitForNoConnections(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const SETCONFIGS = '/sophon/v2/face/setconfigs';
export const GETCONFIGS = '/sophon/v2/face/getconfigs';
export const ADDMEDIADEVICE = '/sophon/v2/face/addmediadevice';
export const DELETEMEDIADEVICE = '/sophon/v2/face/deletemediadevice';
const MEDIA_PATHS = [ADDMEDIADEVICE, DELETEMEDIADEVICE];

/** The messages the fake box uses for the documented request-level errors. */
export const FAKE_BOX_MESSAGES = {
  UNSUPPORT_CONTENT_TYPE: 'Content-Type must be application/json',
  INVALID_REQUEST_JSON: 'request body is not valid json',
  MISSING_ARGUMENTS: 'missing argument: config_dict',
  MISSING_CONFIG_NAME: 'missing argument: config_name',
} as const;

const DEFAULT_CONFIG = { MEDIA_DEVICE_MONITOR_URL: '', MEDIA_DEVICE_MONITOR_REPORT_PEROID: 60 };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A box's REST API as a real node:http server on a loopback port of its own. */
export async function startFakeBox(options: FakeBoxOptions = {}): Promise<FakeBox> {
  const config: Record<string, unknown> = { ...(options.config ?? DEFAULT_CONFIG) };
  const refuse = options.refuse ?? {};
  const errorStatus = options.errorStatus ?? 400;
  const listsAll = options.listsAll ?? true;
  const ignore = new Set(options.ignore ?? []);
  const echoOmits = new Set(options.echoOmits ?? []);
  let behavior: FakeBoxBehavior = options.behavior ?? { kind: 'box' };
  const requests: RecordedRequest[] = [];
  const mediaDevices: FakeMediaDevice[] = (options.mediaDevices ?? []).map((device) => ({ ...device }));
  const mediaCalls: FakeBox['mediaCalls'] = [];
  let generated = 0;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  /** Media answers waiting for releaseMedia (holdMedia). */
  const heldMedia: Array<() => void> = [];

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const sendError = (res: http.ServerResponse, error: BoxErrorAnswer, status = errorStatus) => send(res, status, { error });

  function answerAsBox(req: RecordedRequest, res: http.ServerResponse): void {
    if (req.path !== SETCONFIGS && req.path !== GETCONFIGS && !MEDIA_PATHS.includes(req.path)) {
      // What the vendor's Flask-based service would say.
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end('<!DOCTYPE html><title>404 Not Found</title><h1>Not Found</h1>');
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'text/html; charset=utf-8', allow: 'POST' });
      return void res.end('<!DOCTYPE html><title>405 Method Not Allowed</title>');
    }
    const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') return sendError(res, { code: 'UNSUPPORT_CONTENT_TYPE', message: FAKE_BOX_MESSAGES.UNSUPPORT_CONTENT_TYPE });
    if (req.body === undefined) return sendError(res, { code: 'INVALID_REQUEST_JSON', message: FAKE_BOX_MESSAGES.INVALID_REQUEST_JSON });
    const body = isPlainObject(req.body) ? req.body : {};

    if (MEDIA_PATHS.includes(req.path)) return answerMedia(req.path, body, res);
    if (req.path === SETCONFIGS) {
      const dict = body.config_dict;
      if (!isPlainObject(dict)) return sendError(res, { code: 'MISSING_ARGUMENTS', message: FAKE_BOX_MESSAGES.MISSING_ARGUMENTS });
      // The box applies key by key and reports the first failure: the other keys stay applied.
      const echo: Record<string, unknown> = {};
      let failure: BoxErrorAnswer | undefined;
      for (const [key, value] of Object.entries(dict)) {
        const refused = refuse[key];
        if (refused) failure ??= refused;
        else if (ignore.has(key)) continue;
        else {
          config[key] = value;
          if (!echoOmits.has(key)) echo[key] = value;
        }
      }
      return failure ? sendError(res, failure) : send(res, 200, echo);
    }

    const name = body.config_name;
    if (name === undefined) {
      if (!listsAll) return sendError(res, { code: 'MISSING_ARGUMENTS', message: FAKE_BOX_MESSAGES.MISSING_CONFIG_NAME });
      return send(res, 200, config);
    }
    if (typeof name !== 'string' || !Object.hasOwn(config, name)) {
      return sendError(res, { code: 'INVALID_ARGUMENTS', message: `unknown config_name: ${String(name)}` });
    }
    return send(res, 200, { [name]: config[name] });
  }

  /** addmediadevice / deletemediadevice as the vendor documents them; with `holdMedia`, once released. */
  function answerMedia(path: string, body: Record<string, unknown>, res: http.ServerResponse): void {
    const call: FakeBox['mediaCalls'][number] = { path, arrivedAt: Date.now() };
    mediaCalls.push(call);
    const answer = () => {
      call.answeredAt = Date.now();
      if (path === ADDMEDIADEVICE) {
        if (options.mediaErrors?.add) return sendError(res, options.mediaErrors.add);
        for (const field of ['media_device_name', 'media_device_type', 'media_device_url']) {
          if (typeof body[field] !== 'string' || body[field] === '') return sendError(res, { code: 'MISSING_ARGUMENTS', message: `missing argument: ${field}` });
        }
        if (mediaDevices.some((d) => d.media_device_url === body.media_device_url)) {
          return sendError(res, { code: 'DEVICE_ADDRESS_DUPLICATE_ERROR', message: 'media device url already exists' });
        }
        const id = typeof body.media_device_id === 'string' && body.media_device_id !== '' ? body.media_device_id : `fake-${port}-${++generated}`;
        const device: FakeMediaDevice = {
          media_device_id: id,
          media_device_name: body.media_device_name as string,
          media_device_type: body.media_device_type as string,
          media_device_url: body.media_device_url as string,
          ...(typeof body.permission_id === 'string' ? { permission_id: body.permission_id } : {}),
        };
        mediaDevices.push(device);
        return send(res, 200, { media_device_id: id, media_device_name: device.media_device_name });
      }
      if (options.mediaErrors?.delete) return sendError(res, options.mediaErrors.delete);
      if (typeof body.media_device_id !== 'string') return sendError(res, { code: 'MISSING_ARGUMENTS', message: 'missing argument: media_device_id' });
      const index = mediaDevices.findIndex((d) => d.media_device_id === body.media_device_id);
      if (index === -1) return sendError(res, { code: 'DEVICE_ID_NOT_FOUND', message: 'media device not found' });
      const [removed] = mediaDevices.splice(index, 1);
      return send(res, 200, { media_device_id: removed!.media_device_id, media_device_name: removed!.media_device_name });
    };
    if (options.holdMedia) heldMedia.push(answer);
    else answer();
  }

  function streamHuge(res: http.ServerResponse, b: Extract<FakeBoxBehavior, { kind: 'huge' }>): void {
    const chunkBytes = b.chunkBytes ?? 64 * 1024;
    const intervalMs = b.intervalMs ?? 5;
    const chunk = Buffer.alloc(chunkBytes, 'x');
    const streamed = { bytes: 0, complete: false };
    box.streamed = streamed;
    res.writeHead(200, { 'content-type': 'application/json', ...(b.announceLength ? { 'content-length': b.bytes } : {}) });
    res.write('{"X":"');
    streamed.bytes = 6;
    const tick = () => {
      if (res.destroyed) return;
      const left = b.bytes - streamed.bytes;
      if (left <= 2) {
        res.end('"}');
        streamed.bytes = b.bytes;
        streamed.complete = true;
        return;
      }
      const piece = chunk.subarray(0, Math.min(chunkBytes, left - 2));
      res.write(piece);
      streamed.bytes += piece.length;
      const timer = setTimeout(() => {
        timers.delete(timer);
        tick();
      }, intervalMs);
      timers.add(timer);
    };
    tick();
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, rawBody, body };
      requests.push(recorded);

      const b = recorded.path === GETCONFIGS && options.getconfigs ? options.getconfigs : behavior;
      switch (b.kind) {
        case 'box':
          return answerAsBox(recorded, res);
        case 'hang':
          return;
        case 'stall_body':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 });
          return void res.write('{"MEDIA_DEVICE_MONITOR_URL": "http://');
        case 'error':
          return sendError(res, b.error, b.status);
        case 'redirect':
          res.writeHead(b.status, { location: b.location, 'content-type': 'text/html' });
          return void res.end(`<a href="${b.location}">moved</a>`);
        case 'raw':
          res.writeHead(b.status, { 'content-type': b.contentType ?? 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(b.body) });
          return void res.end(b.body);
        case 'huge':
          return streamHuge(res, b);
        case 'reset':
          return void req.socket.resetAndDestroy();
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };

  const box: FakeBox = {
    host,
    port,
    target: { address: host, port },
    config,
    requests,
    mediaDevices,
    mediaCalls,
    streamed: undefined,
    behave(next) {
      behavior = next;
    },
    releaseMedia() {
      const held = heldMedia.splice(0);
      for (const answer of held) answer();
      return held.length;
    },
    openConnections: () => sockets.size,
    async waitForNoConnections(timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      while (sockets.size > 0) {
        if (Date.now() > deadline) throw new Error(`${sockets.size} connection(s) still open on the fake box after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return box;
}
