import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface AddressPolicyOptions {
  allowPrivate: boolean;
  lookup?: Lookup;
}

/**
 * Where a task-service URL may point. Never: other schemes, credentials in the URL, link-local
 * and cloud-metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, Alibaba Cloud's
 * 100.100.100.200, Oracle Cloud Classic's 192.0.0.192), unspecified (0.0.0.0/8, ::) or multicast
 * and reserved addresses (224.0.0.0/3, ff00::/8). Loopback and private ranges (127/8, 10/8,
 * 172.16/12, 192.168/16, 100.64/10, ::1, fc00::/7) only when allowed. An IPv6 address that carries
 * an IPv4 address (see embeddedIpv4) is judged by that address too. Names are resolved and every
 * address checked, so a DNS name pointing at a forbidden address is refused like the address itself.
 * Returns the reason a URL is refused, or undefined.
 */
export async function refusedUrl(url: string, opts: AddressPolicyOptions): Promise<string | undefined> {
  const checked = await checkedAddresses(url, opts);
  return 'refused' in checked ? checked.refused : undefined;
}

/**
 * The address policy of `refusedUrl`, answering the addresses it checked when the URL passes.
 * A caller that connects to one of these (client.ts `connectTo`) connects where the policy
 * looked: the name is not resolved a second time, so a DNS answer that changes between the check
 * and the connection (DNS rebinding) cannot send the request elsewhere.
 */
export async function checkedAddresses(
  url: string,
  opts: AddressPolicyOptions,
): Promise<{ refused: string } | { addresses: string[] }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { refused: 'Enter a valid URL.' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return { refused: 'Only http and https URLs are allowed.' };
  if (parsed.username || parsed.password) return { refused: 'URLs with credentials are not allowed.' };
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await (opts.lookup ?? systemLookup)(host);
    } catch {
      return { refused: `The host name ${host} does not resolve.` };
    }
    if (addresses.length === 0) return { refused: `The host name ${host} does not resolve.` };
  }
  for (const address of addresses) {
    const { kind, culprits } = inspect(address);
    const shown = culprits.length > 0 ? `${culprits.join(' and ')} inside ${address}` : address;
    if (kind === 'forbidden')
      return {
        refused: `The address ${shown} (link-local, metadata, multicast or unspecified) is never allowed.`,
      };
    if (kind === 'private' && !opts.allowPrivate) {
      return {
        refused: `The address ${shown} is loopback or private (allowed only with ALLOW_PRIVATE_SERVICE_URLS=true).`,
      };
    }
  }
  return { addresses };
}

export type AddressKind = 'public' | 'private' | 'forbidden';

const STRICTNESS: AddressKind[] = ['public', 'private', 'forbidden'];
const strictest = (kinds: AddressKind[]) =>
  kinds.reduce((a, b) => (STRICTNESS.indexOf(b) > STRICTNESS.indexOf(a) ? b : a), 'public');

const ranges = <T extends ipaddr.IPv4 | ipaddr.IPv6>(...cidrs: string[]) =>
  cidrs.map((cidr) => ipaddr.parseCIDR(cidr) as [T, number]);

/** The ranges that are not public; the first that matches counts (forbidden before private). */
const IPV4_KINDS = {
  // 100.100.100.200 (Alibaba Cloud) and 192.0.0.192 (Oracle Cloud Classic) are metadata services
  // outside 169.254/16; the first is inside the private 100.64/10, so it must come first
  forbidden: ranges<ipaddr.IPv4>(
    '0.0.0.0/8',
    '169.254.0.0/16',
    '224.0.0.0/3',
    '100.100.100.200/32',
    '192.0.0.192/32',
  ),
  private: ranges<ipaddr.IPv4>(
    '127.0.0.0/8',
    '10.0.0.0/8',
    '172.16.0.0/12',
    '192.168.0.0/16',
    '100.64.0.0/10',
  ),
};
const IPV6_KINDS = {
  // fd00:ec2::254 is the cloud metadata address, inside the private fc00::/7
  forbidden: ranges<ipaddr.IPv6>('::/128', 'fe80::/10', 'ff00::/8', 'fd00:ec2::254/128'),
  private: ranges<ipaddr.IPv6>('::1/128', 'fc00::/7'),
};
/** RFC 8215: NAT64 for a local network only, so never public whatever it carries */
const LOCAL_USE_NAT64 = ipaddr.parseCIDR('64:ff9b:1::/48') as [ipaddr.IPv6, number];

const ipv4Of = (high: number, low: number) => new ipaddr.IPv4([high >> 8, high & 255, low >> 8, low & 255]);

/**
 * The IPv4 addresses an IPv6 address carries, by the range it is in: IPv4-mapped ::ffff:0:0/96,
 * IPv4-translated ::ffff:0:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96 and the local-use
 * 64:ff9b:1::/48 (the last 32 bits, the /96 form of RFC 6052), 6to4 2002::/16 (bits 16–47), and
 * Teredo 2001::/32 (the server in bits 32–63, the client in the last 32 bits, inverted).
 * A packet to such an address reaches that IPv4 address, so it is judged by it.
 */
function embeddedIpv4(ip: ipaddr.IPv6): ipaddr.IPv4[] {
  const [p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0] = ip.parts;
  switch (ip.range()) {
    case 'ipv4Mapped':
    case 'rfc6145':
    case 'rfc6052':
      return [ipv4Of(p6, p7)];
    case '6to4':
      return [ipv4Of(p1, p2)];
    case 'teredo':
      return [ipv4Of(p2, p3), ipv4Of(~p6 & 0xffff, ~p7 & 0xffff)];
  }
  if (p0 === 0 && p1 === 0 && p2 === 0 && p3 === 0 && p4 === 0 && p5 === 0) return [ipv4Of(p6, p7)];
  return [];
}

/** The kind of an address, and the IPv4 addresses it carries that make it so (none when it is its own). */
function inspect(address: string): { kind: AddressKind; culprits: string[] } {
  if (!isIP(address)) return { kind: 'forbidden', culprits: [] };
  const ip = ipaddr.parse(address);
  if (ip instanceof ipaddr.IPv4)
    return { kind: ipaddr.subnetMatch(ip, IPV4_KINDS, 'public') as AddressKind, culprits: [] };
  const ipv6 = ip as ipaddr.IPv6;
  const own = ipaddr.subnetMatch(ipv6, IPV6_KINDS, 'public') as AddressKind;
  if (own !== 'public') return { kind: own, culprits: [] };
  const embedded = embeddedIpv4(ipv6).map((v4) => ({
    address: v4.toString(),
    kind: ipaddr.subnetMatch(v4, IPV4_KINDS, 'public') as AddressKind,
  }));
  const kinds = embedded.map((e) => e.kind);
  if (ipv6.match(LOCAL_USE_NAT64)) kinds.push('private');
  const kind = strictest(kinds);
  return {
    kind,
    culprits: embedded.filter((e) => e.kind === kind && kind !== 'public').map((e) => e.address),
  };
}

/** Where an address may be: public, private (loopback and private ranges) or forbidden. */
export function classify(address: string): AddressKind {
  return inspect(address).kind;
}

/** A resolver with a short cache, so checking the address on every call costs nothing. */
export function cachedLookup(inner: Lookup = systemLookup, ttlMs = 30_000): Lookup {
  const cache = new Map<string, { at: number; addresses: string[] }>();
  return async (host) => {
    const hit = cache.get(host);
    if (hit && Date.now() - hit.at < ttlMs) return hit.addresses;
    const addresses = await inner(host);
    cache.set(host, { at: Date.now(), addresses });
    if (cache.size > 10_000) cache.clear();
    return addresses;
  };
}
