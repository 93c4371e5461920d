import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

// Request rates per token and per address, kept in each process's memory (rate-limiter-flexible):
// with N replicas behind a balancer a client gets up to N times the rate. That is the usual trade:
// a limiter in Postgres would cost a write per request on the hot paths it is meant to protect.

export type Limited = { ok: true } | { ok: false; retryAfterSeconds: number };

/** A requests-per-second budget per key (token id, address); 0 turns it off. */
export class RateLimit {
  private readonly limiter: RateLimiterMemory | undefined;

  constructor(readonly perSecond: number) {
    // A one-second window: a client over its budget waits at most a second, and bursts up to the rate pass.
    this.limiter = perSecond > 0 ? new RateLimiterMemory({ points: perSecond, duration: 1 }) : undefined;
  }

  async take(key: string): Promise<Limited> {
    if (!this.limiter) return { ok: true };
    try {
      await this.limiter.consume(key);
      return { ok: true };
    } catch (rejected) {
      if (rejected instanceof RateLimiterRes) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(rejected.msBeforeNext / 1000)) };
      throw rejected;
    }
  }
}

/** Open things (websocket connections, subscriptions) per key, against a cap; 0 turns it off. */
export class Cap {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Takes a slot; false when the key is at its cap. */
  acquire(key: string): boolean {
    const count = this.open.get(key) ?? 0;
    if (this.max > 0 && count >= this.max) return false;
    this.open.set(key, count + 1);
    return true;
  }

  release(key: string): void {
    const count = (this.open.get(key) ?? 0) - 1;
    if (count > 0) this.open.set(key, count);
    else this.open.delete(key);
  }

  count(key: string): number {
    return this.open.get(key) ?? 0;
  }
}
