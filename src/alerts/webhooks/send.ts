import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { DeliveryOutcome } from '../../db/schema';
import { AddressRefusedError, checkedLookup } from '../../net/address-policy';
import { AlertRequestError } from '../errors';
import { SIGNATURE_HEADER, sign } from './signature';
import { parseWebhookUrl } from './webhook-url';
import type { WebhookNetworks } from './webhook-networks';

// One attempt to send a webhook: one POST under one deadline, to an address the webhook networks
// allow, no redirect followed, at most maxAnswerBytes of the answer read. Never throws.

/** Most bytes of a receiver's answer read; more is `too_large` and the socket is destroyed. */
export const MAX_ANSWER_BYTES = 64 * 1024;

export interface Webhook {
  url: string;
  secret: string;
  /** `Fleetgate-Event`: FIRED, ACKNOWLEDGED, RESOLVED, REPEAT. */
  event: string;
  idempotencyKey: string;
  body: Buffer;
}

export interface AttemptResult {
  outcome: DeliveryOutcome;
  httpStatus: number | null;
  latencyMs: number;
  /** A short reason for anything but `delivered`. */
  error: string | null;
}

/**
 * Connections kept open to receivers between sends (one pool per receiver origin), so a busy channel
 * does not pay a TCP (and TLS) handshake per webhook. Each connection was checked against the webhook
 * networks when it was made. An idle one is closed after 4 s, before the 5 s after which Node's own
 * servers (and most receivers, later) close theirs: a send never picks a connection being closed.
 */
export function keepAliveAgents(): { http: http.Agent; https: https.Agent; destroy(): void } {
  const options = { keepAlive: true, timeout: 4_000, scheduling: 'lifo' as const };
  const agents = { http: new http.Agent(options), https: new https.Agent(options) };
  return { ...agents, destroy: () => (agents.http.destroy(), agents.https.destroy()) };
}

export interface SendOptions {
  /** Kept-alive connections (keepAliveAgents); without them, a connection per send. */
  agents?: { http: http.Agent; https: https.Agent };
  timeoutMs: number;
  networks: WebhookNetworks;
  maxAnswerBytes?: number;
  /** Aborts the attempt (the deliverer stopping); the result is then `timed_out`. */
  signal?: AbortSignal;
}

const short = (text: string) => (text.length > 300 ? `${text.slice(0, 297)}...` : text);

export function sendWebhook(webhook: Webhook, options: SendOptions): Promise<AttemptResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  const maxBytes = options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
  let target;
  try {
    target = parseWebhookUrl(webhook.url, 'url');
  } catch (error) {
    return Promise.resolve({ outcome: 'refused', httpStatus: null, latencyMs: 0, error: short((error as AlertRequestError).message) });
  }
  // A literal is connected to as it is (no lookup runs): check it here; names are checked in the lookup.
  const refused = net.isIP(target.host) ? options.networks.check(target.host, target.port) : null;
  if (refused) return Promise.resolve({ outcome: 'refused', httpStatus: null, latencyMs: 0, error: short(refused.message) });

  return new Promise((resolve) => {
    let settled = false;
    const secure = target.url.protocol === 'https:';
    const req = (secure ? https : http).request(target.url, {
      method: 'POST',
      agent: options.agents ? (secure ? options.agents.https : options.agents.http) : false,
      lookup: checkedLookup(options.networks, target.port),
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': webhook.body.length,
        'Idempotency-Key': webhook.idempotencyKey,
        'Fleetgate-Event': webhook.event,
        [SIGNATURE_HEADER]: sign(webhook.secret, webhook.body),
        'User-Agent': 'fleetgate',
      },
    });
    /** `keep`: the answer was read to its end, so its connection may serve the next send. */
    const finish = (outcome: DeliveryOutcome, httpStatus: number | null, error: string | null, keep = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (!keep) req.destroy(); // the socket too: nothing more read, nothing left open
      resolve({ outcome, httpStatus, latencyMs: latency(), error: error === null ? null : short(error) });
    };
    const timer = setTimeout(() => finish('timed_out', null, `No complete answer within ${options.timeoutMs} ms.`), options.timeoutMs);
    const onAbort = () => finish('timed_out', null, 'Abandoned: the deliverer stopped.');
    options.signal?.addEventListener('abort', onAbort);

    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof AddressRefusedError || error.code === 'EADDRESSREFUSED') return finish('refused', null, error.message);
      finish('unreachable', null, `${error.code ?? 'error'}: ${error.message}`);
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      // Not followed, and not passed on: a Location may point into another service.
      if (status >= 300 && status < 400) return finish('redirect', status, `Redirect (${status}) not followed.`);
      const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
      if (declared !== undefined && declared > maxBytes) return finish('too_large', status, `Answer of ${declared} bytes; at most ${maxBytes} are read.`);
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) finish('too_large', status, `Answer longer than ${maxBytes} bytes.`);
      });
      res.on('end', () => {
        if (status >= 200 && status < 300) finish('delivered', status, null, true);
        else finish('http_error', status, `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}.`, true);
      });
      res.on('error', (error: NodeJS.ErrnoException) => finish('unreachable', status, `${error.code ?? 'error'}: ${error.message}`));
      res.on('close', () => {
        if (!res.complete) finish('unreachable', status, 'The receiver closed the connection in the middle of its answer.');
      });
    });
    req.end(webhook.body);
  });
}
