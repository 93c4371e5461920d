import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';

// Which addresses the gateway may connect to when it calls out (a box's API, a webhook receiver).
// Whoever sets the target (an operator) could otherwise make the gateway call whatever it reaches:
// its own port, its Postgres, cloud metadata (169.254.169.254). The check runs on the address
// actually connected to: literals before connecting, names in the connection's own lookup.

/** Why an address is not called: outside the allowed networks, or in a class that is never called. */
export type AddressRefusal = 'not_allowed' | 'unspecified' | 'link_local' | 'multicast' | 'broadcast' | 'gateway_port';

export interface RefusedAddress {
  refusal: AddressRefusal;
  /** The address refused, IPv4-mapped IPv6 written as the IPv4 address it is. */
  address: string;
  port: number;
  message: string;
}

interface Network {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (one host); throws a RangeError naming what is wrong. */
export function parseNetwork(text: string): Network {
  const [address = '', prefixText, ...rest] = text.trim().split('/');
  const version = net.isIP(address);
  if (version === 0 || rest.length > 0) throw new RangeError(`${JSON.stringify(text)} is not a network: give an address with an optional /prefix, e.g. 10.20.0.0/16 or fd00::/8.`);
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) throw new RangeError(`${JSON.stringify(text)} has a prefix that is not 0 to ${max}.`);
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** The eight 16-bit groups of an IPv6 address (no zone), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  // A dotted IPv4 tail (`::ffff:1.2.3.4`) is two groups.
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_all, a, b, c, d) =>
    [((Number(a) << 8) | Number(b)).toString(16), ((Number(c) << 8) | Number(d)).toString(16)].join(':'),
  );
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (rest === undefined && fill !== 0)) return undefined;
  return [...left, ...new Array<number>(fill).fill(0), ...right];
}

/**
 * The address as the family it reaches: `::ffff:127.0.0.1` and `::ffff:7f00:1` (IPv4-mapped) and
 * `::127.0.0.1` (IPv4-compatible) are IPv4; a zone (`%eth0`) is dropped.
 */
export function normaliseAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const bare = address.replace(/%.*$/, '');
  if (net.isIPv4(bare)) return { address: bare, family: 'ipv4' };
  const groups = ipv6Groups(bare);
  if (groups) {
    const zeros = groups.slice(0, 5).every((g) => g === 0);
    const mapped = zeros && groups[5] === 0xffff;
    const compatible = zeros && groups[5] === 0 && (groups[6]! > 0 || groups[7]! > 1);
    if (mapped || compatible) {
      const v4 = [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
      return { address: v4, family: 'ipv4' };
    }
  }
  return { address: bare, family: 'ipv6' };
}

export function blockList(networks: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const text of networks) {
    const { address, prefix, family } = parseNetwork(text);
    list.addSubnet(address, prefix, family);
  }
  return list;
}

/** Address classes never called, whatever the allowed networks say. */
const NEVER: ReadonlyArray<readonly [AddressRefusal, net.BlockList, string]> = [
  ['unspecified', blockList(['0.0.0.0/8', '::/128']), 'an unspecified address (0.0.0.0, ::), which reaches this machine'],
  ['link_local', blockList(['169.254.0.0/16', 'fe80::/10']), 'a link-local address (169.254.0.0/16, fe80::/10), where cloud metadata services answer'],
  ['multicast', blockList(['224.0.0.0/4', 'ff00::/8']), 'a multicast address'],
  ['broadcast', blockList(['240.0.0.0/4']), 'a broadcast or reserved address (240.0.0.0/4, 255.255.255.255)'],
];

const LOOPBACK = blockList(['127.0.0.0/8', '::1/128']);

/** Whether `address` (normalised) is this machine: loopback or one of its interfaces' addresses. */
function isLocal(address: string, family: 'ipv4' | 'ipv6'): boolean {
  if (LOOPBACK.check(address, family)) return true;
  for (const entries of Object.values(os.networkInterfaces())) {
    for (const entry of entries ?? []) if (normaliseAddress(entry.address).address === address) return true;
  }
  return false;
}

/** What a policy's refusals call the target and its setting, e.g. `a box` and `BOX_NETWORKS`. */
export interface PolicyNaming {
  /** `a box`, `a webhook receiver` */
  target: string;
  /** `the box networks` */
  networksName: string;
  /** The environment variable that sets the networks. */
  variable: string;
}

/** An allow-list of networks and the gateway's own ports: which addresses a call may connect to. */
export class AddressPolicy {
  private readonly allowed: net.BlockList;

  /**
   * @param networks CIDRs that may be called; checked with `parseNetwork`, throws on a bad one.
   * @param gatewayPorts Ports this gateway listens on (HTTP, its Postgres), refused on any address of
   *   this machine; read at each check, so a port known only after listening counts.
   */
  constructor(
    readonly networks: readonly string[],
    private readonly gatewayPorts: () => Iterable<number>,
    private readonly naming: PolicyNaming,
  ) {
    this.allowed = blockList(networks);
  }

  /** Null when a call may connect to `address` on `port`; else why not. */
  check(address: string, port: number): RefusedAddress | null {
    const normal = normaliseAddress(address);
    const refuse = (refusal: AddressRefusal, message: string): RefusedAddress => ({ refusal, address: normal.address, port, message });
    const { target, networksName, variable } = this.naming;
    for (const [refusal, list, what] of NEVER) {
      if (list.check(normal.address, normal.family)) return refuse(refusal, `${normal.address} is ${what}: never ${target}.`);
    }
    if ([...this.gatewayPorts()].includes(port) && isLocal(normal.address, normal.family)) {
      return refuse('gateway_port', `${normal.address} port ${port} is this gateway itself (its HTTP server or its database): never ${target}.`);
    }
    if (!this.allowed.check(normal.address, normal.family)) {
      return refuse('not_allowed', `${normal.address} is outside ${networksName} (${variable}: ${this.networks.join(', ')}).`);
    }
    return null;
  }
}

/** What a connection's lookup reports when every address a name resolved to is refused. */
export class AddressRefusedError extends Error {
  readonly code = 'EADDRESSREFUSED';
  constructor(readonly refused: RefusedAddress) {
    super(refused.message);
  }
}

/**
 * `dns.lookup` for one connection, keeping only the addresses `policy` allows on `port`: the
 * socket connects to what this answers, so the address checked is the address called.
 */
export function checkedLookup(policy: AddressPolicy, port: number): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const allowed = addresses.filter((entry) => policy.check(entry.address, port) === null);
      if (allowed.length === 0) {
        const refused = addresses.length > 0 ? policy.check(addresses[0]!.address, port)! : null;
        const failure = refused ? new AddressRefusedError(refused) : Object.assign(new Error(`${hostname} resolved to no address.`), { code: 'ENOTFOUND' });
        return callback(failure, '', 0);
      }
      if (options.all) return callback(null, allowed);
      return callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}
