import { type Lookup, refusedUrl } from '../../../infra/task-service/address-policy';
import { getStatus } from '../../../infra/task-service/client';

/**
 * A task service is accepted only if its URL passes the address policy and GET {url}/status
 * answers 200 with a JSON body within a deadline. Returns why it is refused, or undefined.
 */
export async function checkServiceUrl(
  url: string,
  opts: {
    allowPrivate: boolean;
    timeoutMs: number;
    fetch?: typeof fetch;
    lookup?: Lookup;
    headers?: Record<string, string>;
  },
): Promise<string | undefined> {
  const refused = await refusedUrl(url, { allowPrivate: opts.allowPrivate, lookup: opts.lookup });
  if (refused) return refused;
  const outcome = await getStatus(url, {
    timeoutMs: opts.timeoutMs,
    fetch: opts.fetch,
    headers: opts.headers,
  });
  if (!outcome.ok)
    return `GET ${url.replace(/\/+$/, '')}/status did not answer 200 with JSON: ${outcome.error}`;
  return undefined;
}
