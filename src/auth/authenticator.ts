import type pg from 'pg';
import { run, sql } from '../db/sql';
import type { Logger } from '../log';
import type { Principal } from './roles';
import { lookupApiToken } from './tokens';

/** Longest bearer value looked at; longer ones are not tokens. */
const MAX_TOKEN_LENGTH = 256;
/** Tokens remembered per process (by secret); beyond this the oldest is forgotten. */
const MAX_CACHED = 10_000;

export type Authentication =
  | { ok: true; principal: Principal }
  | { ok: false; reason: 'missing' | 'malformed' | 'invalid' };

/** Something that ends when its token is revoked: a websocket, an SSE subscription. */
export type Session = (principal: Principal) => void;

/**
 * Turns bearer tokens into principals. A token's row is read once and then kept; every `checkMs`
 * one statement asks which of the kept tokens were revoked (by this replica or another), drops them,
 * and ends their sessions (websockets, SSE subscriptions): a revocation takes effect everywhere
 * within about `checkMs`. The same tick records `last_used_at` (at most once a minute per token).
 */
export class Authenticator {
  private readonly cache = new Map<string, Principal>();
  private readonly sessions = new Map<number, Set<Session>>();
  private readonly used = new Set<number>();
  private readonly lastUseWritten = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly options: { checkMs: number },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.options.checkMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.checking;
  }

  /** An `Authorization` header value (`Bearer <token>`), or a bare token (websocket connection_init). */
  async authenticate(header: string | null | undefined, { bare = false } = {}): Promise<Authentication> {
    if (!header) return { ok: false, reason: 'missing' };
    let token = header.trim();
    if (!bare || /^bearer\s/i.test(token)) {
      const match = /^bearer\s+(\S+)$/i.exec(token);
      if (!match) return { ok: false, reason: 'malformed' };
      token = match[1]!;
    }
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
    let principal = this.cache.get(token);
    if (!principal) {
      principal = await lookupApiToken(this.pool, token);
      if (!principal) return { ok: false, reason: 'invalid' };
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(token, principal);
    }
    this.used.add(principal.tokenId);
    return { ok: true, principal };
  }

  /** Calls `end` when the principal's token is revoked; the returned function unregisters it. */
  track(principal: Principal, end: Session): () => void {
    let set = this.sessions.get(principal.tokenId);
    if (!set) this.sessions.set(principal.tokenId, (set = new Set()));
    set.add(end);
    return () => {
      set.delete(end);
      if (set.size === 0 && this.sessions.get(principal.tokenId) === set) this.sessions.delete(principal.tokenId);
    };
  }

  /** Forget a token at once (it was revoked here) and end its sessions; other replicas follow on their next check. */
  revoked(tokenId: number): void {
    for (const [token, principal] of this.cache) if (principal.tokenId === tokenId) this.cache.delete(token);
    const set = this.sessions.get(tokenId);
    this.sessions.delete(tokenId);
    for (const end of set ?? []) {
      try {
        end({ tokenId } as Principal);
      } catch (error) {
        this.log.warn({ err: error }, 'ending a revoked session failed');
      }
    }
  }

  /** One round of the periodic check; exposed for tests. */
  check(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async runCheck(): Promise<void> {
    const known = new Set<number>(this.sessions.keys());
    for (const principal of this.cache.values()) known.add(principal.tokenId);
    const now = Date.now();
    const touched = [...this.used].filter((id) => now - (this.lastUseWritten.get(id) ?? 0) >= 60_000);
    this.used.clear();
    try {
      if (known.size > 0) {
        const { rows } = await run<{ id: number }>(
          this.pool,
          sql`select id from unnest(${sql.param([...known])}::int[]) as k(id)
              where not exists (select 1 from api_tokens t where t.id = k.id and t.revoked_at is null)`,
          'fleetgate_auth_revoked',
        );
        for (const { id } of rows) this.revoked(id);
      }
      if (touched.length > 0) {
        await run(this.pool, sql`update api_tokens set last_used_at = now() where id = any(${sql.param(touched)}::int[])`, 'fleetgate_auth_used');
        for (const id of touched) this.lastUseWritten.set(id, now);
      }
    } catch (error) {
      // The database is away; keep what is known and try again next tick.
      this.log.debug({ err: error }, 'token check failed');
    }
  }
}
