import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { run, sql, type Queryable } from '../db/sql';
import type { ApiRole, Principal } from './roles';

// API tokens: `fgt_` + 43 base64url characters (256 random bits). Only their SHA-256 is stored; a
// token is shown once, when it is created. Box ingest secrets (`fgi_...`) are made the same way.

export const API_TOKEN_PREFIX = 'fgt_';
export const INGEST_TOKEN_PREFIX = 'fgi_';
const TOKEN_PATTERN = /^fg[ti]_[A-Za-z0-9_-]{43}$/;

export function generateSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** Whether a string has the shape of a token this gateway issues (cheap check before hashing). */
export function looksLikeToken(value: string, prefix: string): boolean {
  return value.startsWith(prefix) && TOKEN_PATTERN.test(value);
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** `fgt_` and 4 more characters: enough to tell tokens apart in lists and logs, useless to an attacker. */
export function displayPrefix(token: string): string {
  return token.slice(0, API_TOKEN_PREFIX.length + 4);
}

export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface ApiTokenRow {
  id: number;
  name: string;
  role: ApiRole;
  prefix: string;
  createdAt: Date;
  createdBy: string | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  revokedBy: string | null;
}

const COLUMNS = sql.raw(`id, name, role, prefix, created_at as "createdAt", created_by as "createdBy",
  last_used_at as "lastUsedAt", revoked_at as "revokedAt", revoked_by as "revokedBy"`);

export class TokenInputError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

export function checkTokenName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 100 || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new TokenInputError('A token name is 1 to 100 printable characters, e.g. "dashboard" or "ci".', 'name');
  }
  return trimmed;
}

/** Creates a token; the secret is returned here and nowhere else. */
export async function createApiToken(
  db: Queryable,
  input: { name: string; role: ApiRole; createdBy: string | null; secret?: string },
): Promise<{ token: string; row: ApiTokenRow }> {
  const token = input.secret ?? generateSecret(API_TOKEN_PREFIX);
  const { rows } = await run<ApiTokenRow>(
    db,
    sql`insert into api_tokens (name, role, token_hash, prefix, created_by)
        values (${checkTokenName(input.name)}, ${input.role}, ${hashSecret(token)}, ${displayPrefix(token)}, ${input.createdBy})
        returning ${COLUMNS}`,
  );
  return { token, row: rows[0]! };
}

export async function listApiTokens(db: pg.Pool, { includeRevoked = false } = {}): Promise<ApiTokenRow[]> {
  const { rows } = await run<ApiTokenRow>(db, sql`select ${COLUMNS} from api_tokens ${includeRevoked ? sql`` : sql`where revoked_at is null`} order by id`);
  return rows;
}

export async function findApiToken(db: pg.Pool, id: number): Promise<ApiTokenRow | undefined> {
  const { rows } = await run<ApiTokenRow>(db, sql`select ${COLUMNS} from api_tokens where id = ${id}`);
  return rows[0];
}

/** Revokes a token (kept, for the audit trail). Revoking it again changes nothing. */
export async function revokeApiToken(db: pg.Pool, id: number, revokedBy: string | null): Promise<ApiTokenRow | undefined> {
  const { rows } = await run<ApiTokenRow>(
    db,
    sql`update api_tokens set revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, ${revokedBy})
        where id = ${id} returning ${COLUMNS}`,
  );
  return rows[0];
}

/** The live token with this secret, or undefined. */
export async function lookupApiToken(db: pg.Pool, token: string): Promise<Principal | undefined> {
  const { rows } = await run<{ id: number; name: string; role: ApiRole; prefix: string }>(
    db,
    sql`select id, name, role, prefix from api_tokens where token_hash = ${hashSecret(token)} and revoked_at is null`,
    'fleetgate_auth_token',
  );
  const row = rows[0];
  return row && { tokenId: row.id, name: row.name, role: row.role, prefix: row.prefix };
}

/** Advisory lock key for creating the first admin token, so replicas starting together make one. */
const BOOTSTRAP_LOCK = 0x666c_6761; // "flga"

export type BootstrapOutcome =
  /** The database had no token: this one was made, and must be shown to whoever started the gateway. */
  | { kind: 'created'; token: string; row: ApiTokenRow }
  /** ADMIN_TOKEN was given and is now a live admin token. */
  | { kind: 'configured'; row: ApiTokenRow }
  | { kind: 'none' };

/**
 * At start-up: with `configured` (ADMIN_TOKEN), make sure that token exists as an admin token (unless it
 * was revoked: a revoked token stays revoked). Otherwise, when no token exists at all, create one
 * admin token for the first user. Runs under an advisory lock across replicas.
 */
export async function bootstrapAdminToken(pool: pg.Pool, configured: string | undefined): Promise<BootstrapOutcome> {
  const client = await pool.connect();
  try {
    await run(client, sql`select pg_advisory_lock(${BOOTSTRAP_LOCK})`);
    if (configured !== undefined) {
      const { rows } = await run<ApiTokenRow>(client, sql`select ${COLUMNS} from api_tokens where token_hash = ${hashSecret(configured)}`);
      if (rows[0]) return { kind: 'configured', row: rows[0] };
      const { row } = await createApiToken(client, { name: 'ADMIN_TOKEN', role: 'admin', createdBy: 'ADMIN_TOKEN', secret: configured });
      return { kind: 'configured', row };
    }
    const { rowCount } = await run(client, sql`select 1 from api_tokens limit 1`);
    if (rowCount) return { kind: 'none' };
    const { token, row } = await createApiToken(client, { name: 'first admin', role: 'admin', createdBy: 'first start' });
    return { kind: 'created', token, row };
  } finally {
    await run(client, sql`select pg_advisory_unlock(${BOOTSTRAP_LOCK})`).catch(() => {});
    client.release();
  }
}
