import { getStatus } from '../worker/task-service-client';

/**
 * A task service is accepted only if GET {url}/status answers 200 with a JSON body, within a
 * deadline. Returns the reason it is refused, or undefined when it is fine.
 */
export async function checkServiceUrl(
  url: string,
  opts: { allowPrivate: boolean; timeoutMs: number; fetch?: typeof fetch },
): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'Enter a valid URL.';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return 'Only http and https URLs are allowed.';
  if (parsed.username || parsed.password) return 'URLs with credentials are not allowed.';
  if (!opts.allowPrivate && isPrivateHost(parsed.hostname)) {
    return 'Loopback, private and link-local addresses are not allowed (set ALLOW_PRIVATE_SERVICE_URLS=true to allow them).';
  }
  const outcome = await getStatus(url, { timeoutMs: opts.timeoutMs, fetch: opts.fetch });
  if (!outcome.ok)
    return `GET ${url.replace(/\/+$/, '')}/status did not answer 200 with JSON: ${outcome.error}`;
  return undefined;
}

/** Literal-address check; name resolution is checked separately by the SSRF guard. */
export function isPrivateHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 127 ||
      a === 10 ||
      a === 0 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168)
    );
  }
  return h === '::1' || h === '::' || h.startsWith('fe80:') || h.startsWith('fc') || h.startsWith('fd');
}
