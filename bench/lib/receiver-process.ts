// The webhook receivers in a process of their own, so the load generator's event loop never delays a
// receipt (or slows the gateway's sends). Receipts come back over IPC every 250 ms.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebhookReceiver, type Receipt } from './webhook-receivers';

const ROLE_ENV = 'FLEETGATE_BENCH_WEBHOOK_RECEIVERS';

type ToChild = { type: 'secret'; name: string; secret: string } | { type: 'stop' };
type FromChild =
  | { type: 'ready'; urls: Record<string, string> }
  | { type: 'receipts'; name: string; receipts: Receipt[]; badSignatures: number; badKeys: number };

/** The receivers as the bench sees them: same fields as WebhookReceiver, filled from the child. */
export class RemoteReceiver extends WebhookReceiver {
  constructor(
    name: string,
    private readonly child: ChildProcess,
  ) {
    super(name);
  }

  override async start(): Promise<void> {}

  override setSecret(secret: string): void {
    this.secret = secret;
    this.child.send({ type: 'secret', name: this.name, secret } satisfies ToChild);
  }

  override async close(): Promise<void> {}
}

/** Forks the receiver process with one receiver per name; resolves once they listen. */
export async function startReceiverProcess(names: string[]): Promise<{ receivers: RemoteReceiver[]; stop(): Promise<void> }> {
  const child = fork(fileURLToPath(import.meta.url), names, { env: { ...process.env, [ROLE_ENV]: '1' }, execArgv: ['--import', 'tsx'] });
  const receivers = names.map((name) => new RemoteReceiver(name, child));
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the webhook receiver process exited (code ${code})`)));
    child.on('message', (message: FromChild) => {
      if (message.type === 'ready') {
        for (const r of receivers) r.url = message.urls[r.name]!;
        resolve();
      } else {
        const r = receivers.find((x) => x.name === message.name)!;
        r.receipts.push(...message.receipts);
        r.badSignatures = message.badSignatures;
        r.badKeys = message.badKeys;
      }
    });
  });
  await ready;
  return {
    receivers,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'stop' } satisfies ToChild);
      await exited;
    },
  };
}

async function childMain(): Promise<void> {
  const receivers = process.argv.slice(2).map((name) => new WebhookReceiver(name));
  for (const r of receivers) await r.start();
  const sent = new Map(receivers.map((r) => [r, 0]));
  const flush = () => {
    for (const r of receivers) {
      const from = sent.get(r)!;
      if (from === r.receipts.length) continue;
      sent.set(r, r.receipts.length);
      process.send!({ type: 'receipts', name: r.name, receipts: r.receipts.slice(from), badSignatures: r.badSignatures, badKeys: r.badKeys } satisfies FromChild);
    }
  };
  const timer = setInterval(flush, 250);
  process.on('message', async (message: ToChild) => {
    if (message.type === 'secret') receivers.find((r) => r.name === message.name)!.secret = message.secret;
    else {
      clearInterval(timer);
      flush();
      for (const r of receivers) await r.close();
      process.disconnect();
    }
  });
  process.send!({ type: 'ready', urls: Object.fromEntries(receivers.map((r) => [r.name, r.url])) } satisfies FromChild);
}

if (process.env[ROLE_ENV] === '1') await childMain();
