import { AddressPolicy } from '../net/address-policy';

// Which addresses the gateway may call as a box: the shared policy (../net/address-policy.ts) over
// the box networks. An operator sets a box's API address to anything; this keeps calls to boxes.

export { AddressRefusedError, normaliseAddress, parseNetwork, type AddressRefusal, type RefusedAddress } from '../net/address-policy';

/**
 * Box networks when `BOX_NETWORKS` is unset: loopback (the simulator and the quick start run boxes
 * there) and the private ranges boxes sit on (the vendor's default box address is 192.168.150.1).
 * Production sets the boxes' own networks instead.
 */
export const DEFAULT_BOX_NETWORKS: readonly string[] = ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'];

/** The allow-list of box networks and the gateway's own ports: which addresses a box call may connect to. */
export class BoxNetworks extends AddressPolicy {
  /**
   * @param networks CIDRs boxes live in (`BOX_NETWORKS`); checked with `parseNetwork`, throws on a bad one.
   * @param gatewayPorts Ports this gateway listens on (HTTP, its Postgres), refused on any address of
   *   this machine; read at each check, so a port known only after listening counts.
   */
  constructor(networks: readonly string[] = DEFAULT_BOX_NETWORKS, gatewayPorts: () => Iterable<number> = () => []) {
    super(networks, gatewayPorts, { target: 'a box', networksName: 'the box networks', variable: 'BOX_NETWORKS' });
  }
}
