import dns from 'node:dns/promises';
import net from 'node:net';
import { AlertRequestError } from '../errors';
import type { WebhookNetworks } from './webhook-networks';

/** Longest webhook URL taken (as browsers and most proxies handle). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** Where a webhook URL connects: the host without IPv6 brackets, and the port (the scheme's when none). */
export interface WebhookTarget {
  url: URL;
  host: string;
  port: number;
}

/** The host and port of an http(s) URL; throws AlertRequestError (BAD_USER_INPUT) naming `argument` when it is not one. */
export function parseWebhookUrl(raw: string, argument: string): WebhookTarget {
  const bad = (message: string) => new AlertRequestError(message, argument);
  if (typeof raw !== 'string' || raw.trim() === '') throw bad('The webhook URL is empty; give an http:// or https:// URL.');
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) throw bad(`The webhook URL is ${raw.length} characters long; at most ${MAX_WEBHOOK_URL_LENGTH} are taken.`);
  const url = URL.canParse(raw.trim()) ? new URL(raw.trim()) : undefined;
  if (!url) throw bad(`${JSON.stringify(raw)} is not a URL; give an http:// or https:// URL.`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`Webhooks are sent over http or https, not ${url.protocol.replace(/:$/, '')}; give an http:// or https:// URL.`);
  if (url.hostname === '') throw bad('The webhook URL names no host.');
  // Operators read channel URLs back; the signature, not a password in the URL, is how a receiver knows the sender.
  if (url.username || url.password) throw bad('The webhook URL carries credentials (user:password@); leave them out: receivers check the Fleetgate-Signature header instead.');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { url, host, port };
}

/**
 * Checks a channel's URL when it is created or changed: an http(s) URL whose host (a literal, or
 * every address its name resolves to now) `networks` allows. The deliverer checks again at each send,
 * on the address it connects to, as DNS may change. Returns the URL as stored.
 */
export async function checkWebhookUrl(raw: string, argument: string, networks: WebhookNetworks): Promise<string> {
  const target = parseWebhookUrl(raw, argument);
  let addresses: string[];
  if (net.isIP(target.host)) addresses = [target.host];
  else {
    try {
      addresses = (await dns.lookup(target.host, { all: true })).map((entry) => entry.address);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'lookup failed';
      throw new AlertRequestError(`${target.host} does not resolve (${code}); give a host name that resolves, or an address.`, argument);
    }
  }
  const refusals = addresses.map((address) => networks.check(address, target.port));
  // As at send: the connection may use any allowed address, so one allowed address is enough.
  if (refusals.length > 0 && refusals.every((refusal) => refusal !== null)) {
    const first = refusals[0]!;
    throw new AlertRequestError(`Webhooks are not sent to ${target.host}: ${first.message}`, argument, 'WEBHOOK_URL_REFUSED', { refusal: first.refusal, address: first.address });
  }
  return target.url.href;
}
