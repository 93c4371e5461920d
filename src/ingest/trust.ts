import type pg from 'pg';
import { RateLimit } from '../auth/rate-limits';
import type { IngestPolicy } from '../config';
import { ingestTokenOwner, type IngestTokenOwner } from '../models/ingest-tokens';
import { ReportError } from './errors';
import { licenseKeyField, maskLicenseKey } from './license-key';
import type { Report } from './report';

// Which reports the gateway believes, one policy at a time (INGEST_POLICY):
//   open        any licence key; a new box is registered by its first report (the trial default)
//   registered  only boxes an operator registered; the store refuses others in the same transaction
//   token       only reports over /DeviceStatus/<secret> with the secret pointBoxAtGateway gave that box
// A secret in the path is checked under every policy: a box pointed at a token URL keeps working when
// the policy changes, and a forged or stale secret is never taken for "no secret".

/** How long a secret's owner is trusted before it is read again (a rotated or removed secret stops within this). */
const OWNER_TTL_MS = 5_000;
const MAX_CACHED = 100_000;

export interface IngestTrustOptions {
  policy: IngestPolicy;
  perAddress: number;
  perToken: number;
}

/** What a report may do once the policy let it in. */
export interface Admission {
  /** The store must refuse the report unless its box exists (policy `registered`). */
  mustExist: boolean;
}

export class IngestTrust {
  private readonly owners = new Map<string, { owner: IngestTokenOwner; at: number }>();
  private readonly byAddress: RateLimit;
  private readonly byToken: RateLimit;

  constructor(
    private readonly pool: pg.Pool,
    readonly options: IngestTrustOptions,
  ) {
    this.byAddress = new RateLimit(options.perAddress);
    this.byToken = new RateLimit(options.perToken);
  }

  /**
   * Whether admitRequest has anything to check for a request with this secret (or none): false under
   * the open or registered policy with no secret and no rate per address, when it would admit at once.
   */
  checksRequest(secret: string | undefined): boolean {
    return secret !== undefined || this.options.policy === 'token' || this.byAddress.perSecond > 0;
  }

  /** Before the body is read: rates, and the secret in the path (if any) is known. */
  async admitRequest(address: string | null, secret: string | undefined): Promise<IngestTokenOwner | undefined> {
    const limited = await this.byAddress.take(address ?? 'unknown');
    if (!limited.ok) throw rateLimited(limited.retryAfterSeconds, 'this address');
    if (secret === undefined) {
      if (this.options.policy === 'token') {
        throw new ReportError(
          401,
          'INGEST_TOKEN_REQUIRED',
          'This gateway takes reports only at /DeviceStatus/<secret>; run the pointBoxAtGateway mutation for this box to set its URL.',
        );
      }
      return undefined;
    }
    const owner = await this.ownerOf(secret);
    if (!owner) {
      throw new ReportError(
        403,
        'INVALID_INGEST_TOKEN',
        'The secret in this URL is not valid (unknown, replaced, or its box was removed); run pointBoxAtGateway for this box again.',
      );
    }
    const perToken = await this.byToken.take(String(owner.boxId));
    if (!perToken.ok) throw rateLimited(perToken.retryAfterSeconds, 'this box');
    return owner;
  }

  /** After parsing: the report is the secret's own box's, and what the store must check. */
  admitReport(report: Report, owner: IngestTokenOwner | undefined): Admission {
    if (owner && owner.licenseKey !== report.licenseKey) {
      throw new ReportError(
        403,
        'INGEST_TOKEN_MISMATCH',
        `The secret in this URL belongs to box ${maskLicenseKey(owner.licenseKey)}, not to ${maskLicenseKey(report.licenseKey)}; each box reports over its own URL.`,
        licenseKeyField(report.format),
      );
    }
    return { mustExist: this.options.policy === 'registered' };
  }

  /** Forget what is known about secrets (after pointBoxAtGateway or removeBox on this replica). */
  forget(): void {
    this.owners.clear();
  }

  private async ownerOf(secret: string): Promise<IngestTokenOwner | undefined> {
    const cached = this.owners.get(secret);
    if (cached && Date.now() - cached.at < OWNER_TTL_MS) return cached.owner;
    const owner = await ingestTokenOwner(this.pool, secret);
    if (!owner) {
      this.owners.delete(secret);
      return undefined;
    }
    if (this.owners.size >= MAX_CACHED) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(secret, { owner, at: Date.now() });
    return owner;
  }
}

function rateLimited(retryAfterSeconds: number, who: string): ReportError {
  return Object.assign(new ReportError(429, 'RATE_LIMITED', `Too many reports from ${who}; retry in ${retryAfterSeconds} s.`), { retryAfterSeconds });
}
