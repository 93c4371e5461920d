// The broadcast section's baseline in bench:live (issue 17): a bare `ws` server in a process of its
// own, no GraphQL and no database, that writes one message of a gateway message's size and shape to
// every subscribed socket, one `socket.send` per socket, when the driver asks. One syscall per socket
// per event is the floor of any websocket server on this machine; the gateway's broadcast delay is read
// against it as a ratio.
//
// It speaks just enough graphql-transport-ws for the bench's subscriber processes: connection_init ->
// connection_ack, subscribe remembered (its operation id), ping -> pong. Each broadcast is a `next`
// whose deviceStatusChanged.id is `StatusEvent:<sequence number>` (base64), so a receipt names its
// broadcast as a gateway receipt names its stored event.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { settlesWithin } from './common';

const THIS_FILE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(THIS_FILE), '../..');
/** Set on the bare server process only; holds the sample event (JSON) its messages copy. */
const BARE_SERVER_ENV = 'FLEETGATE_BENCH_BARE_BROADCAST_SAMPLE';

type ToBareServer = { type: 'broadcast'; sequence: number };

/** One broadcast as the bare server did it, in CLOCK_MONOTONIC ms. */
export interface BareSend {
  type: 'sent';
  sequence: number;
  /** Before the message was built and the first `socket.send`. */
  startedAt: number;
  /** After the last `socket.send` returned (ws has written or queued every frame by then). */
  finishedAt: number;
  sockets: number;
  bytes: number;
}

type FromBareServer = { type: 'listening'; port: number } | BareSend;

/** CLOCK_MONOTONIC in ms (`process.hrtime`): one clock for every process on the machine. */
function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/**
 * The StatusEvent global id the subscriber processes decode (see statusEventNumber), its number padded
 * with zeros to `digits` so the message is as long as one carrying the sample's id.
 */
function bareEventId(sequence: number, digits: number): string {
  const number = `${sequence < 0 ? '-' : ''}${String(Math.abs(sequence)).padStart(digits, '0')}`;
  return Buffer.from(`StatusEvent:${number}`, 'latin1').toString('base64');
}

function runBareServer(sample: Record<string, unknown>): void {
  const send = (message: FromBareServer) => process.send?.(message);
  /** Sockets that have sent their subscribe message, with its operation id. */
  const subscribed = new Map<WebSocket, string>();
  const digits = Buffer.from(String(sample.id), 'base64').toString('latin1').length - 'StatusEvent:'.length;
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });

  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      let message: { type?: string; id?: string };
      try {
        message = JSON.parse(data.toString()) as typeof message;
      } catch {
        socket.close(4400, 'Invalid message received');
        return;
      }
      if (message.type === 'connection_init') socket.send('{"type":"connection_ack"}');
      else if (message.type === 'subscribe' && typeof message.id === 'string') subscribed.set(socket, message.id);
      else if (message.type === 'ping') socket.send('{"type":"pong"}');
    });
    socket.on('close', () => subscribed.delete(socket));
    socket.on('error', () => subscribed.delete(socket));
  });

  function broadcast(sequence: number): void {
    const startedAt = monotonicMs();
    const event = { ...sample, id: bareEventId(sequence, digits) };
    // Serialized once per operation id (the subscribers all use one), as the gateway builds one payload.
    const payloads = new Map<string, Buffer>();
    const payloadFor = (id: string) => {
      let payload = payloads.get(id);
      if (!payload) payloads.set(id, (payload = Buffer.from(JSON.stringify({ id, type: 'next', payload: { data: { deviceStatusChanged: event } } }))));
      return payload;
    };
    let sockets = 0;
    for (const [socket, id] of subscribed) {
      if (socket.readyState !== socket.OPEN) continue;
      socket.send(payloadFor(id));
      sockets++;
    }
    const finishedAt = monotonicMs();
    send({ type: 'sent', sequence, startedAt, finishedAt, sockets, bytes: payloads.values().next().value?.length ?? 0 });
  }

  process.on('message', (message: ToBareServer) => {
    if (message.type === 'broadcast') broadcast(message.sequence);
  });
  // The driver went away (or closed the channel): stop.
  process.on('disconnect', () => process.exit(0));
  server.on('listening', () => {
    const address = server.address();
    send({ type: 'listening', port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
}

/** The bare server, seen from the driver. */
export class BareBroadcastServer {
  readonly child: ChildProcess;
  private readonly listening: Promise<number>;
  private readonly pendingSends = new Map<number, (send: BareSend) => void>();
  exited = false;

  /** `sample`: a StatusEvent as the gateway sends it (the bench's selection), whose shape and size each message copies. */
  constructor(sample: Record<string, unknown>) {
    this.child = fork(THIS_FILE, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [BARE_SERVER_ENV]: JSON.stringify(sample) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.once('exit', () => (this.exited = true));
    this.listening = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`the bare websocket server exited (${code}) before listening`)));
      this.child.on('message', (message: FromBareServer) => {
        if (message.type === 'listening') resolve(message.port);
        else {
          this.pendingSends.get(message.sequence)?.(message);
          this.pendingSends.delete(message.sequence);
        }
      });
    });
  }

  /** ws:// address once it accepts connections. */
  async url(timeoutMs: number): Promise<string> {
    if (!(await settlesWithin(this.listening, timeoutMs))) throw new Error(`the bare websocket server did not listen within ${timeoutMs / 1000} s`);
    return `ws://127.0.0.1:${await this.listening}/graphql`;
  }

  /** Asks for broadcast `sequence`; resolves with the server's account of it. */
  broadcast(sequence: number): Promise<BareSend> {
    return new Promise((resolve) => {
      this.pendingSends.set(sequence, resolve);
      this.child.send({ type: 'broadcast', sequence } satisfies ToBareServer);
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    if (!(await settlesWithin(exited, 5_000))) {
      this.child.kill('SIGKILL');
      await settlesWithin(exited, 2_000);
    }
  }
}

if (process.env[BARE_SERVER_ENV]) runBareServer(JSON.parse(process.env[BARE_SERVER_ENV]) as Record<string, unknown>);
