import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { recordAlertChanges } from '../../src/alerts/changes';
import { inTransaction } from '../../src/db/sql';

/** One webhook as a receiver got it: headers and the raw body bytes. */
export interface ReceivedWebhook {
  headers: IncomingMessage['headers'];
  body: Buffer;
  json: any;
  at: number;
}

/** What a receiver does with a request: answer it (or not) as the test needs. */
export type ReceiverBehavior = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

export const answer200: ReceiverBehavior = (_req, res) => res.end('ok');

/** A webhook receiver on loopback; `behavior` may be swapped while it runs. */
export interface Receiver {
  url: string;
  port: number;
  received: ReceivedWebhook[];
  behavior: ReceiverBehavior;
  server: Server;
  close(): Promise<void>;
}

export async function startReceiver(behavior: ReceiverBehavior = answer200, port = 0): Promise<Receiver> {
  const receiver = { received: [] as ReceivedWebhook[], behavior } as Receiver;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let json: any;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = undefined;
      }
      receiver.received.push({ headers: req.headers, body, json, at: Date.now() });
      receiver.behavior(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const actual = (server.address() as AddressInfo).port;
  Object.assign(receiver, {
    server,
    port: actual,
    url: `http://127.0.0.1:${actual}/hook`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return receiver;
}

let serial = 0;

/**
 * A box with a device, a device_offline rule routed to `channelIds`, and `alerts` firing alerts on
 * it (hand-made rows, as the evaluator would write: offline 61 s, so that a gateway's evaluator finds
 * them due and leaves them open): the outbox is filled by recordAlertChanges.
 */
export async function alertFixture(pool: pg.Pool, channelIds: number[], alerts = 1) {
  serial++;
  const { rows: [box] } = await pool.query<{ id: number }>(`insert into boxes (license_key, name) values ($1, 'gate') returning id`, [`K-${process.pid}-${serial}-${Math.random()}`]);
  const { rows: [rule] } = await pool.query<{ id: number }>(
    `insert into alert_rules (name, kind, severity, for_seconds) values ('cam down', 'device_offline', 'major', 60) returning id`,
  );
  for (const channelId of channelIds) await pool.query(`insert into alert_rule_channels (rule_id, channel_id) values ($1, $2)`, [rule!.id, channelId]);
  const alertIds: number[] = [];
  for (let n = 0; n < alerts; n++) {
    const { rows: [device] } = await pool.query<{ id: number }>(
      `insert into devices (box_id, external_id, name, type, status, status_since, first_seen_at, updated_at)
       values ($1, $2, 'door', 'rtsp', 'offline', now() - interval '61 s', now(), now()) returning id`,
      [box!.id, `cam-${n}`],
    );
    const { rows: [alert] } = await pool.query<{ id: string }>(
      `insert into alerts (rule_id, subject, box_id, device_id, state, severity, value, condition_since, fires_at, fired_at, updated_at)
       values ($1, $2, $3, $4, 'firing', 'major', 61, now() - interval '61 s', now() - interval '1 s', now(), now()) returning id`,
      [rule!.id, `device:${device!.id}`, box!.id, device!.id],
    );
    alertIds.push(Number(alert!.id));
  }
  return { boxId: box!.id, ruleId: rule!.id, alertIds };
}

/** Records `kind` changes of alerts (one transaction), queueing their notifications: the outbox as the evaluator fills it. */
export async function recordChanges(pool: pg.Pool, changes: Array<{ alertId: number; kind: 'fired' | 'acknowledged' | 'resolved' }>) {
  return inTransaction(pool, (client) => recordAlertChanges(client, changes, new Date()));
}

/** A channel row made directly (channels.ts is tested on its own); returns its id. */
export async function insertChannel(pool: pg.Pool, url: string, secret = 'whsec_test', notifyAcknowledged = false): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(`insert into webhook_channels (name, url, secret, notify_acknowledged) values ('c', $1, $2, $3) returning id`, [url, secret, notifyAcknowledged]);
  return rows[0]!.id;
}
