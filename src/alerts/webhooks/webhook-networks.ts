import { AddressPolicy } from '../../net/address-policy';

/**
 * Webhook networks when `WEBHOOK_NETWORKS` is unset: any unicast address, since receivers are often
 * on the internet. The never-called classes (link-local with cloud metadata, unspecified, multicast,
 * broadcast) and this gateway's own ports stay refused whatever it says; production narrows it.
 */
export const DEFAULT_WEBHOOK_NETWORKS: readonly string[] = ['0.0.0.0/0', '::/0'];

/** Which addresses a webhook may be sent to: checked at channel create/update and again at every send. */
export class WebhookNetworks extends AddressPolicy {
  constructor(networks: readonly string[] = DEFAULT_WEBHOOK_NETWORKS, gatewayPorts: () => Iterable<number> = () => []) {
    super(networks, gatewayPorts, { target: 'a webhook receiver', networksName: 'the webhook networks', variable: 'WEBHOOK_NETWORKS' });
  }
}
