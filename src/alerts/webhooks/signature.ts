import { createHmac, timingSafeEqual } from 'node:crypto';

// The signature every webhook carries, as the README documents it for receivers:
// `Fleetgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret as UTF-8, "<t>.<raw body>")>`.

export const SIGNATURE_HEADER = 'Fleetgate-Signature';
/** A receiver refuses a signature older than this (replay of a captured webhook). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

function hmac(secret: string, t: number, body: Buffer | string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${t}.`).update(body).digest('hex');
}

/** The `Fleetgate-Signature` value for `body` sent at `at`. */
export function sign(secret: string, body: Buffer | string, at: Date = new Date()): string {
  const t = Math.floor(at.getTime() / 1000);
  return `t=${t},v1=${hmac(secret, t, body)}`;
}

export type SignatureCheck = { ok: true; t: number } | { ok: false; reason: 'malformed' | 'mismatch' | 'expired' };

/**
 * Checks a `Fleetgate-Signature` header against the raw body as received: the HMAC compared in
 * constant time, and `t` no more than SIGNATURE_TOLERANCE_SECONDS from `now` either way.
 */
export function verify(secret: string, body: Buffer | string, header: string | undefined, now: Date = new Date()): SignatureCheck {
  const parts = Object.fromEntries((header ?? '').split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!/^\d+$/.test(parts.t ?? '') || !/^[0-9a-f]{64}$/.test(parts.v1 ?? '')) return { ok: false, reason: 'malformed' };
  const expected = Buffer.from(hmac(secret, t, body), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(parts.v1!, 'hex'))) return { ok: false, reason: 'mismatch' };
  if (Math.abs(now.getTime() / 1000 - t) > SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'expired' };
  return { ok: true, t };
}
