import type pg from 'pg';
import { generateSecret, hashSecret, INGEST_TOKEN_PREFIX } from '../auth/tokens';
import { run, sql, type Queryable } from '../db/sql';

// Per-box ingest secrets (INGEST_POLICY=token): the box posts to `/DeviceStatus/<secret>`. Only the
// SHA-256 is stored. pointBoxAtGateway issues a new secret, sends the URL to the box, and then keeps
// only the secret the box holds (both while that is unknown, e.g. after a timeout).

export interface IngestTokenOwner {
  boxId: number;
  licenseKey: string;
}

/** A new secret for the box; the old ones stay valid until `keepOnly`. */
export async function issueIngestToken(pool: pg.Pool, boxId: number): Promise<string> {
  const secret = generateSecret(INGEST_TOKEN_PREFIX);
  await run(pool, sql`insert into box_ingest_tokens (token_hash, box_id) values (${hashSecret(secret)}, ${boxId})`);
  return secret;
}

/** The box now holds `secret`: its other secrets stop working. */
export async function keepOnlyIngestToken(pool: pg.Pool, boxId: number, secret: string): Promise<void> {
  await run(pool, sql`delete from box_ingest_tokens where box_id = ${boxId} and token_hash <> ${hashSecret(secret)}`);
}

/** `secret` (made by the caller) is now the box's only one: for a box that fetched its URL itself (box login). */
export async function replaceIngestTokens(db: Queryable, boxId: number, secret: string): Promise<void> {
  await run(db, sql`delete from box_ingest_tokens where box_id = ${boxId}`);
  await run(db, sql`insert into box_ingest_tokens (token_hash, box_id) values (${hashSecret(secret)}, ${boxId})`);
}

/** The box did not take `secret`: it stops working (the one the box holds stays). */
export async function dropIngestToken(pool: pg.Pool, secret: string): Promise<void> {
  await run(pool, sql`delete from box_ingest_tokens where token_hash = ${hashSecret(secret)}`);
}

/** The box a secret belongs to, unless that box was removed. */
export async function ingestTokenOwner(pool: pg.Pool, secret: string): Promise<IngestTokenOwner | undefined> {
  const { rows } = await run<IngestTokenOwner>(
    pool,
    sql`select t.box_id as "boxId", b.license_key as "licenseKey"
        from box_ingest_tokens t join boxes b on b.id = t.box_id
        where t.token_hash = ${hashSecret(secret)} and b.removed_at is null`,
    'fleetgate_ingest_token_owner',
  );
  return rows[0];
}

/** `/fgi_…` in place of every ingest secret in a URL or answer kept in the audit trail. */
export function redactIngestSecrets<T>(value: T): T {
  if (typeof value === 'string') return value.replace(/fgi_[A-Za-z0-9_-]{43}/g, 'fgi_…') as T;
  if (Array.isArray(value)) return value.map(redactIngestSecrets) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactIngestSecrets(v)])) as T;
  }
  return value;
}
