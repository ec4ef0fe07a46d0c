import { checkedAddresses, type Lookup } from '../../../infra/task-service/address-policy';
import { type CallOutcome, getStatus } from '../../../infra/task-service/client';

/**
 * A task service is accepted only if its URL is a base URL (no query string or fragment: the
 * coordinator appends `/status` and `/tasks` to it), passes the address policy, and GET
 * {url}/status answers 200 with a JSON body within a deadline. The request goes to an address the
 * policy checked (the name is not resolved again). Returns why it is refused, or undefined.
 */
export async function checkServiceUrl(
  url: string,
  opts: {
    allowPrivate: boolean;
    timeoutMs: number;
    fetch?: typeof fetch;
    lookup?: Lookup;
    /** the Authorization header: called once the URL passed the policy, so a refused URL costs no token */
    authorization?: () => Promise<string>;
  },
): Promise<string | undefined> {
  const shape = refusedShape(url);
  if (shape) return shape;
  const checked = await checkedAddresses(url, { allowPrivate: opts.allowPrivate, lookup: opts.lookup });
  if ('refused' in checked) return checked.refused;
  const outcome = await getStatus(url, {
    timeoutMs: opts.timeoutMs,
    fetch: opts.fetch,
    headers: opts.authorization ? { authorization: await opts.authorization() } : undefined,
    connectTo: checked.addresses,
  });
  if (!outcome.ok)
    return `GET ${url.replace(/\/+$/, '')}/status did not answer 200 with JSON: ${why(outcome)}`;
  return undefined;
}

function refusedShape(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'Enter a valid URL.';
  }
  if (parsed.search || parsed.hash || /[?#]/.test(url))
    return 'Enter the base URL of the service, without a query string or fragment (? or #).';
  return undefined;
}

/**
 * Why the check failed, without what the URL answered: the caller chose the URL, and the body of
 * whatever answered there (an internal page, a metadata service) is not theirs to read.
 */
function why(outcome: CallOutcome): string {
  if (outcome.transport) return outcome.error ?? 'no answer';
  if (outcome.status !== 200) return `it answered HTTP ${outcome.status}`;
  return 'it answered 200 without a JSON object body';
}
