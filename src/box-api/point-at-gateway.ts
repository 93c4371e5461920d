import { dropIngestToken, issueIngestToken, keepOnlyIngestToken } from '../models/ingest-tokens';
import { MEDIA_DEVICE_MONITOR_URL } from './config-keys';
import { configureBox, type BoxConfigDeps, type ConfigureOutcome } from './configure';

// pointBoxAtGateway without GraphQL: set a box's MEDIA_DEVICE_MONITOR_URL to this gateway's ingest
// URL and, under INGEST_POLICY=token, rotate the box's ingest secret so that exactly the secret the
// box holds keeps working.

export interface PointAtGatewayDeps extends BoxConfigDeps {
  /** Ingest secrets changed (one issued or dropped): ingest must stop trusting what it read of them. */
  secretsChanged: () => void;
}

export interface PointAtGatewayRequest {
  boxId: number;
  /** This gateway's ingest URL as boxes reach it (`…/DeviceStatus`). */
  ingestUrl: string;
  /** INGEST_POLICY=token: the URL carries a new secret of this box's (`…/DeviceStatus/<secret>`). */
  withSecret: boolean;
  requestedBy: string | null;
}

/** Whether the box is known to hold the monitor URL sent: it echoed it, or a read-back showed it. */
function tookMonitorUrl(outcome: ConfigureOutcome): boolean {
  return (
    (outcome.kind === 'applied' && !outcome.unconfirmedKeys.includes(MEDIA_DEVICE_MONITOR_URL)) ||
    ('readBack' in outcome && outcome.readBack?.appliedKeys.includes(MEDIA_DEVICE_MONITOR_URL) === true)
  );
}

/** Whether the box may hold it without saying so: the request reached it and nothing read its settings back. */
function mayHaveTakenMonitorUrl(outcome: ConfigureOutcome): boolean {
  return (
    outcome.kind === 'timed_out' ||
    (outcome.kind === 'unreachable' && outcome.requestSent && !outcome.readBack?.values) ||
    (outcome.kind === 'applied' && !tookMonitorUrl(outcome) && !outcome.readBack?.values)
  );
}

/**
 * Points the box at this gateway. With a secret: a new one is issued first; until the box is known
 * to hold it the secret it had keeps working too, so a box that did not take the new URL keeps
 * reporting with the old one. Once it holds the new one, the others stop; when it surely did not, the
 * new one is dropped.
 */
export async function pointBoxAtGateway(deps: PointAtGatewayDeps, request: PointAtGatewayRequest): Promise<ConfigureOutcome> {
  const { boxId, ingestUrl, requestedBy } = request;
  if (!request.withSecret) return configureBox(deps, { boxId, input: { monitorUrl: ingestUrl }, requestedBy });
  let secret: string;
  try {
    secret = await issueIngestToken(deps.pool, boxId);
  } catch (error) {
    // 23503: the secret's box does not exist (foreign key).
    if ((error as { code?: string }).code === '23503') return { kind: 'invalid', problems: [{ field: 'boxId', message: 'There is no box with this id.' }], change: null };
    throw error;
  }
  const outcome = await configureBox(deps, { boxId, input: { monitorUrl: `${ingestUrl}/${secret}` }, requestedBy });
  if (tookMonitorUrl(outcome)) await keepOnlyIngestToken(deps.pool, boxId, secret);
  else if (!mayHaveTakenMonitorUrl(outcome)) await dropIngestToken(deps.pool, secret);
  deps.secretsChanged();
  return outcome;
}
