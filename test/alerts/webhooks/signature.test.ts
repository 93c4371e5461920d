import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, verify } from '../../../src/alerts/webhooks/signature';

// The README's recipe, written here by hand with node:crypto, must accept what sign() makes.
function readmeRecipe(secret: string, rawBody: Buffer, header: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  const t = Number(parts.t);
  const expected = createHmac('sha256', secret).update(`${parts.t}.`).update(rawBody).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(nowSeconds - t) <= 300;
}

describe('webhook signatures', () => {
  const secret = 'whsec_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
  const body = Buffer.from(JSON.stringify({ event: 'FIRED', alert: { id: 'QWxlcnQ6MQ==', value: 61.5 }, name: 'Tür ünten' }));

  it('t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">, which the documented recipe verifies', () => {
    const at = new Date('2026-12-03T21:00:00.900Z');
    const header = sign(secret, body, at);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(header.startsWith(`t=${Math.floor(at.getTime() / 1000)},`)).toBe(true);
    expect(readmeRecipe(secret, body, header, Math.floor(at.getTime() / 1000))).toBe(true);
    expect(verify(secret, body, header, at)).toEqual({ ok: true, t: Math.floor(at.getTime() / 1000) });
  });

  it('refuses another body, another secret, an old timestamp and a malformed header', () => {
    const header = sign(secret, body);
    expect(verify(secret, Buffer.concat([body, Buffer.from(' ')]), header)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verify('whsec_other', body, header)).toEqual({ ok: false, reason: 'mismatch' });
    expect(readmeRecipe('whsec_other', body, header)).toBe(false);
    const old = sign(secret, body, new Date(Date.now() - 301_000));
    expect(verify(secret, body, old)).toEqual({ ok: false, reason: 'expired' });
    expect(readmeRecipe(secret, body, old)).toBe(false);
    expect(verify(secret, body, undefined)).toEqual({ ok: false, reason: 'malformed' });
    expect(verify(secret, body, 't=abc,v1=zz')).toEqual({ ok: false, reason: 'malformed' });
  });
});
