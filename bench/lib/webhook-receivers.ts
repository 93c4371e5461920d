// Webhook receivers for the alerts benchmark: real HTTP servers on loopback that check each POST's
// signature by the README's recipe and keep when it arrived and its Idempotency-Key.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the bench reads of a notification's JSON body (src/alerts/changes.ts, PAYLOAD). */
export interface WebhookPayload {
  idempotencyKey: string;
  event: 'FIRED' | 'ACKNOWLEDGED' | 'RESOLVED' | 'REPEAT';
  alert: { databaseId: number; firesAt: string | null; firedAt: string | null; conditionSince: string | null };
  rule: { databaseId: number; kind: string };
  subject: { kind: 'BOX' | 'DEVICE'; box: { databaseId: number }; device: { databaseId: number } | null };
}

export interface Receipt {
  /** Date.now() when the body was read: the gateway's clock is the same machine's wall clock. */
  receivedAt: number;
  idempotencyKey: string;
  payload: WebhookPayload;
}

/** Signature tolerance of the recipe: a `t` more than 5 minutes old is refused. */
const MAX_AGE_SECONDS = 300;

/** The documented check: HMAC-SHA256 over `<t>.<raw body>` with the secret's UTF-8 bytes, compared in constant time. */
export function signatureValid(header: string | undefined, body: Buffer, secret: string, nowSeconds: number): boolean {
  const parts = new Map((header ?? '').split(',').map((part) => part.split('=', 2) as [string, string]));
  const t = parts.get('t');
  const v1 = parts.get('v1');
  if (!t || !v1 || !/^\d+$/.test(t) || Math.abs(nowSeconds - Number(t)) > MAX_AGE_SECONDS) return false;
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${t}.`).update(body).digest();
  const given = Buffer.from(v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export class WebhookReceiver {
  readonly receipts: Receipt[] = [];
  /** POSTs whose signature did not verify (answered 401), or whose key header disagreed with the body. */
  badSignatures = 0;
  badKeys = 0;
  /** Set once the channel is created: the secret is shown once, at create. */
  secret = '';
  private server: Server | undefined;
  url = '';

  constructor(readonly name: string) {}

  setSecret(secret: string): void {
    this.secret = secret;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const receivedAt = Date.now();
        const body = Buffer.concat(chunks);
        if (!signatureValid(request.headers['fleetgate-signature'] as string | undefined, body, this.secret, receivedAt / 1000)) {
          this.badSignatures++;
          response.writeHead(401).end();
          return;
        }
        const payload = JSON.parse(body.toString('utf8')) as WebhookPayload;
        const idempotencyKey = String(request.headers['idempotency-key'] ?? '');
        if (idempotencyKey !== payload.idempotencyKey) this.badKeys++;
        this.receipts.push({ receivedAt, idempotencyKey, payload });
        response.writeHead(204).end();
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/${this.name}`;
  }

  /** Receipts of `event`, counted once per Idempotency-Key, and how many keys came more than once. */
  distinct(event: WebhookPayload['event']): { receipts: Map<string, Receipt>; duplicates: number } {
    const receipts = new Map<string, Receipt>();
    let duplicates = 0;
    for (const receipt of this.receipts) {
      if (receipt.payload.event !== event) continue;
      if (receipts.has(receipt.idempotencyKey)) duplicates++;
      else receipts.set(receipt.idempotencyKey, receipt);
    }
    return { receipts, duplicates };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
