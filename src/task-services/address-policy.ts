import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface AddressPolicyOptions {
  allowPrivate: boolean;
  lookup?: Lookup;
}

/**
 * Where a task-service URL may point. Never: other schemes, credentials in the URL, link-local
 * and cloud-metadata addresses (169.254.0.0/16, fe80::/10), unspecified or multicast addresses.
 * Loopback and private ranges only when allowed. Names are resolved and every address checked,
 * so a DNS name pointing at a forbidden address is refused like the address itself.
 * Returns the reason a URL is refused, or undefined.
 */
export async function refusedUrl(url: string, opts: AddressPolicyOptions): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'Enter a valid URL.';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return 'Only http and https URLs are allowed.';
  if (parsed.username || parsed.password) return 'URLs with credentials are not allowed.';
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await (opts.lookup ?? systemLookup)(host);
    } catch {
      return `The host name ${host} does not resolve.`;
    }
    if (addresses.length === 0) return `The host name ${host} does not resolve.`;
  }
  for (const address of addresses) {
    const kind = classify(address);
    if (kind === 'forbidden')
      return `The address ${address} (link-local, metadata, multicast or unspecified) is never allowed.`;
    if (kind === 'private' && !opts.allowPrivate) {
      return `The address ${address} is loopback or private (allowed only with ALLOW_PRIVATE_SERVICE_URLS=true).`;
    }
  }
  return undefined;
}

export type AddressKind = 'public' | 'private' | 'forbidden';

export function classify(address: string): AddressKind {
  const a = address.toLowerCase();
  const embedded = embeddedIpv4(a);
  if (embedded) return classify(embedded);
  if (isIP(a) === 4) {
    const [p0, p1] = a.split('.').map(Number) as [number, number];
    if (p0 === 169 && p1 === 254) return 'forbidden';
    if (p0 === 0 || p0 >= 224) return 'forbidden';
    if (p0 === 127 || p0 === 10 || (p0 === 172 && p1 >= 16 && p1 <= 31) || (p0 === 192 && p1 === 168))
      return 'private';
    if (p0 === 100 && p1 >= 64 && p1 <= 127) return 'private';
    return 'public';
  }
  if (isIP(a) === 6) {
    if (a === '::' || a.startsWith('ff')) return 'forbidden';
    if (/^fe[89ab]/.test(a)) return 'forbidden';
    if (a === 'fd00:ec2::254') return 'forbidden';
    if (a === '::1' || /^f[cd]/.test(a)) return 'private';
    return 'public';
  }
  return 'forbidden';
}

/**
 * The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d, also written ::ffff:a9fe:a9fe as URL
 * parsers normalise it), IPv4-compatible (::a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address.
 */
function embeddedIpv4(a: string): string | undefined {
  const m = /^(::ffff:|::|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/.exec(a);
  if (!m) return undefined;
  if (m[2]) return m[2];
  const hi = Number.parseInt(m[3]!, 16);
  const lo = Number.parseInt(m[4]!, 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
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
