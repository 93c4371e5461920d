// The alerts benchmark's rules and channels, made through the GraphQL API as an operator would.
import { BENCH_ADMIN_TOKEN } from './server-process';
import type { WebhookReceiver } from './webhook-receivers';

const HEADERS = { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };

/** One GraphQL request; throws with the errors the gateway answered. */
export async function graphql<T>(origin: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(`${origin}/graphql`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ query, variables }) });
  const answer = (await response.json()) as { data?: T; errors?: Array<{ message: string }> };
  if (answer.errors?.length || !answer.data) throw new Error(`GraphQL: ${answer.errors?.map((e) => e.message).join('; ') ?? `HTTP ${response.status}`}`);
  return answer.data;
}

const globalId = (typename: string, id: number) => Buffer.from(`${typename}:${id}`).toString('base64');

/** Creates one channel per receiver and gives each receiver the secret it must verify with (shown once). */
export async function createChannels(origin: string, receivers: WebhookReceiver[]): Promise<string[]> {
  const ids: string[] = [];
  for (const receiver of receivers) {
    const data = await graphql<{ createWebhookChannel: { channel: { id: string }; secret: string } }>(
      origin,
      `mutation ($input: WebhookChannelInput!) { createWebhookChannel(input: $input) { channel { id } secret } }`,
      { input: { name: `bench ${receiver.name}`, url: receiver.url, enabled: true, notifyAcknowledged: false } },
    );
    receiver.setSecret(data.createWebhookChannel.secret);
    ids.push(data.createWebhookChannel.channel.id);
  }
  return ids;
}

export interface RuleSpec {
  name: string;
  kind: 'DEVICE_OFFLINE' | 'BOX_OFFLINE' | 'DEVICE_FLAPPING' | 'BOX_HEALTH';
  severity: 'CRITICAL' | 'MAJOR' | 'MINOR' | 'WARNING' | 'INFO';
  forSeconds?: number;
  flapChanges?: number;
  flapWindowSeconds?: number;
  healthFigure?: 'CPU' | 'MEMORY' | 'DISK' | 'TEMPERATURE';
  healthThreshold?: number;
  /** Database ids of the boxes in scope; undefined: every box. */
  boxIds?: number[];
  deviceTypes?: Array<'PHOTO' | 'RTSP' | 'FILE' | 'GB28181'>;
  /** Indexes into the channel list. */
  channels: number[];
}

const SEVERITIES = ['CRITICAL', 'MAJOR', 'MINOR', 'WARNING', 'INFO'] as const;
/** The longest flap window of the rules below: the bench waits this long between its two storms. */
export const LONGEST_FLAP_WINDOW_SECONDS = 60;

/**
 * 50 rules as a fleet's operators might write them: 10 box-offline, 10 flapping, 15 device-offline and
 * 15 health rules, over every box, slices of the fleet (`boxIds`, 1/20 of the boxes each) or device
 * types, routed to one channel or both. No flapping or device-offline rule covers every device, so a
 * storm of 20,000 flapping devices makes about 10,000 alerts rather than one per device and rule. The
 * health thresholds are above what the simulated boxes ever report (cpu 99, memory 95, disk 98,
 * temperature 85): those rules load the evaluator and never fire.
 */
export function benchRules(boxIds: number[]): RuleSpec[] {
  const slice = (n: number) => {
    const size = Math.max(1, Math.floor(boxIds.length / 20));
    return boxIds.slice((n % 20) * size, (n % 20) * size + size);
  };
  const rules: RuleSpec[] = [
    { name: 'any box offline', kind: 'BOX_OFFLINE', severity: 'CRITICAL', forSeconds: 0, channels: [0] },
    { name: 'any box offline 10 s', kind: 'BOX_OFFLINE', severity: 'MAJOR', forSeconds: 10, channels: [1] },
  ];
  for (let i = 0; i < 8; i++) {
    rules.push({ name: `site ${i} box offline`, kind: 'BOX_OFFLINE', severity: SEVERITIES[i % 5]!, forSeconds: [0, 5, 10, 15][i % 4], boxIds: slice(i), channels: i === 0 ? [0, 1] : [i % 2] });
  }
  rules.push(
    { name: 'gb28181 flapping', kind: 'DEVICE_FLAPPING', severity: 'MAJOR', flapChanges: 4, flapWindowSeconds: 60, deviceTypes: ['GB28181'], channels: [1] },
    { name: 'recorders flapping', kind: 'DEVICE_FLAPPING', severity: 'MINOR', flapChanges: 4, flapWindowSeconds: 60, deviceTypes: ['FILE'], channels: [0] },
  );
  for (let i = 0; i < 8; i++) {
    rules.push({ name: `site ${i + 8} flapping`, kind: 'DEVICE_FLAPPING', severity: SEVERITIES[(i + 1) % 5]!, flapChanges: 3 + (i % 3), flapWindowSeconds: [30, 45, 60][i % 3], boxIds: slice(i + 8), channels: [i % 2] });
  }
  for (let i = 0; i < 15; i++) {
    rules.push({
      name: `site ${i % 20} device offline`,
      kind: 'DEVICE_OFFLINE',
      severity: SEVERITIES[i % 5]!,
      forSeconds: [20, 30, 45][i % 3],
      boxIds: slice(i + 3),
      deviceTypes: i % 3 === 0 ? ['RTSP', 'GB28181'] : undefined,
      channels: i === 0 ? [0, 1] : [i % 2],
    });
  }
  const health = [
    ['CPU', 99.5],
    ['MEMORY', 96],
    ['DISK', 99],
    ['TEMPERATURE', 90],
  ] as const;
  for (let i = 0; i < 15; i++) {
    const [figure, threshold] = health[i % 4]!;
    rules.push({ name: `${figure.toLowerCase()} high ${i}`, kind: 'BOX_HEALTH', severity: SEVERITIES[i % 5]!, forSeconds: [0, 30, 60][i % 3], healthFigure: figure, healthThreshold: threshold, boxIds: i < 5 ? undefined : slice(i), channels: [i % 2] });
  }
  return rules;
}

/** Creates the rules; returns each one's database id beside its spec. */
export async function createRules(origin: string, rules: RuleSpec[], channelIds: string[]): Promise<Array<RuleSpec & { id: number }>> {
  const created: Array<RuleSpec & { id: number }> = [];
  for (const rule of rules) {
    const { channels, boxIds, ...fields } = rule;
    const data = await graphql<{ createAlertRule: { id: string } }>(origin, `mutation ($input: AlertRuleInput!) { createAlertRule(input: $input) { id } }`, {
      input: { ...fields, enabled: true, boxIds: boxIds?.map((id) => globalId('Box', id)), channelIds: channels.map((c) => channelIds[c]) },
    });
    const [, id] = Buffer.from(data.createAlertRule.id, 'base64').toString('utf8').split(':');
    created.push({ ...rule, id: Number(id) });
  }
  return created;
}
