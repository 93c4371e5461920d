import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { WebhookChannel } from '../../db/schema';
import { run, sql, type SQL } from '../../db/sql';
import { AlertRequestError } from '../errors';
import { checkWebhookUrl } from './webhook-url';
import type { WebhookNetworks } from './webhook-networks';

// Channel writes for GraphQL's mutations (operator+). A channel's secret is made here, returned once
// by create and rotate, kept to sign, and never read back by any API or log line.

/** A channel as the API shows it: everything but its secret. */
export type WebhookChannelView = Omit<WebhookChannel, 'secret'>;

export interface WebhookChannelInput {
  name: string;
  url: string;
  enabled?: boolean | null;
  notifyAcknowledged?: boolean | null;
}

/** Fields left out (or null) stay as they are. */
export type WebhookChannelPatch = Partial<WebhookChannelInput>;

const MAX_NAME_LENGTH = 200;

/** `whsec_` + 32 random bytes, base64url: 256 bits, and recognisable when pasted in the wrong place. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

const VIEW = sql`id, name, url, enabled, notify_acknowledged as "notifyAcknowledged", created_at as "createdAt", created_by as "createdBy", updated_at as "updatedAt"`;

function checkName(name: unknown, argument: string): string {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  if (trimmed === '') throw new AlertRequestError('A channel needs a name.', argument);
  if (trimmed.length > MAX_NAME_LENGTH) throw new AlertRequestError(`A channel name has at most ${MAX_NAME_LENGTH} characters; this one has ${trimmed.length}.`, argument);
  return trimmed;
}

function notFound(id: number): AlertRequestError {
  return new AlertRequestError(`No webhook channel ${id}.`, 'id', 'NOT_FOUND');
}

/** Makes a channel; its secret is in the answer and nowhere else ever after. */
export async function createWebhookChannel(
  pool: pg.Pool,
  input: WebhookChannelInput,
  actor: string | null,
  networks: WebhookNetworks,
): Promise<{ channel: WebhookChannelView; secret: string }> {
  const name = checkName(input.name, 'input.name');
  const url = await checkWebhookUrl(input.url, 'input.url', networks);
  const secret = newWebhookSecret();
  const { rows } = await run<WebhookChannelView>(
    pool,
    sql`insert into webhook_channels (name, url, secret, enabled, notify_acknowledged, created_by)
        values (${name}, ${url}, ${secret}, ${input.enabled ?? true}, ${input.notifyAcknowledged ?? false}, ${actor})
        returning ${VIEW}`,
  );
  return { channel: rows[0]!, secret };
}

/**
 * Changes a channel's name, URL (checked as at create), enabled flag or acknowledgement setting.
 * Notifications already queued keep going to the channel, to its URL as it is when each is sent;
 * a disabled channel gets no new ones (changes.ts routes only to enabled channels).
 */
export async function updateWebhookChannel(pool: pg.Pool, id: number, patch: WebhookChannelPatch, networks: WebhookNetworks): Promise<WebhookChannelView> {
  const sets: SQL[] = [];
  if (patch.name != null) sets.push(sql`name = ${checkName(patch.name, 'patch.name')}`);
  if (patch.url != null) sets.push(sql`url = ${await checkWebhookUrl(patch.url, 'patch.url', networks)}`);
  if (patch.enabled != null) sets.push(sql`enabled = ${patch.enabled}`);
  if (patch.notifyAcknowledged != null) sets.push(sql`notify_acknowledged = ${patch.notifyAcknowledged}`);
  sets.push(sql`updated_at = now()`);
  const { rows } = await run<WebhookChannelView>(pool, sql`update webhook_channels set ${sql.join(sets, sql`, `)} where id = ${id} returning ${VIEW}`);
  if (!rows[0]) throw notFound(id);
  return rows[0];
}

/**
 * Gives a channel a new secret, returned once. Every send from now on (retries of notifications
 * queued before too) is signed with it: receivers must switch to it when they read it.
 */
export async function rotateWebhookChannelSecret(pool: pg.Pool, id: number): Promise<{ channel: WebhookChannelView; secret: string }> {
  const secret = newWebhookSecret();
  const { rows } = await run<WebhookChannelView>(pool, sql`update webhook_channels set secret = ${secret}, updated_at = now() where id = ${id} returning ${VIEW}`);
  if (!rows[0]) throw notFound(id);
  return { channel: rows[0], secret };
}

/**
 * Deletes a channel, its routes from rules, and its notifications with their attempts (cascades):
 * nothing more is sent to it, and a send under way is not recorded (the deliverer finds no row).
 */
export async function deleteWebhookChannel(pool: pg.Pool, id: number): Promise<void> {
  const { rowCount } = await run(pool, sql`delete from webhook_channels where id = ${id}`);
  if (!rowCount) throw notFound(id);
}
