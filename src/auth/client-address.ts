import type { IncomingMessage } from 'node:http';

/**
 * Where a request came from: the socket's peer, or with `trustProxy` the left-most `X-Forwarded-For`
 * entry (set it only behind a proxy that overwrites that header). IPv4-mapped IPv6 is shown as IPv4.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string | null {
  const forwarded = trustProxy ? req.headers['x-forwarded-for'] : undefined;
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  const address = first || req.socket.remoteAddress || null;
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}
