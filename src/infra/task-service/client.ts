import { isIP } from 'node:net';
import type { Action } from '../../domain/lifecycle/states';
import { VERSION } from '../../version';
import { readLimited } from '../read-limited';

export const USER_AGENT = `release-coordinator/${VERSION.version}`;

/**
 * The largest answer read from a task service (1 MiB). An answer needs only {state, progress}: a
 * larger one (a service dumping its log, or a hostile one) is not read further and is a refusal.
 */
export const MAX_ANSWER_BYTES = 1 << 20;

export interface CallOutcome {
  ok: boolean;
  status?: number;
  body?: Record<string, unknown>;
  /** readable reason when not ok: `HTTP 503: ...`, `timeout after 15000 ms`, `connection refused` */
  error?: string;
  /** the failure happened before any HTTP answer (connection refused, reset, DNS, timeout) */
  transport: boolean;
  /** the answer was larger than MAX_ANSWER_BYTES and was not read whole: a refusal */
  tooLarge?: boolean;
  latencyMs: number;
}

export interface CallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  fetch?: typeof fetch;
  /**
   * The addresses the address policy checked (address-policy.ts `checkedAddresses`): the request
   * goes to the first that takes a connection, never to wherever the URL's host name resolves by
   * then. The name stays in the Host header (and, for https, in the TLS server name the certificate
   * is checked against).
   */
  connectTo?: string[];
}

export function endpoint(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path}`;
}

/**
 * POST {url}/tasks with a deadline. Non-200, a body without a JSON object, or a body over
 * MAX_ANSWER_BYTES is a failure with a reason.
 */
export function postTask(
  url: string,
  body: { action: Action; task_id: string; release_id: string; studies: string[] },
  opts: CallOptions,
): Promise<CallOutcome> {
  return call(endpoint(url, 'tasks'), { method: 'POST', body: JSON.stringify(body) }, opts);
}

/** GET {url}/status with a deadline: 200 with a JSON body means the service is ready. */
export function getStatus(url: string, opts: CallOptions): Promise<CallOutcome> {
  return call(endpoint(url, 'status'), { method: 'GET' }, opts);
}

async function call(target: string, init: RequestInit, opts: CallOptions): Promise<CallOutcome> {
  const started = performance.now();
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  const sent = await send(target, init, opts, signal);
  if ('failure' in sent)
    return {
      ok: false,
      transport: true,
      error:
        sent.failure === undefined
          ? 'no address to connect to'
          : describeFailure(sent.failure, timeout, opts),
      latencyMs: elapsed(),
    };
  const response = sent.response;
  let text: string;
  try {
    const read = await readLimited(response, MAX_ANSWER_BYTES);
    if (read.tooLarge) {
      return {
        ok: false,
        transport: false,
        tooLarge: true,
        status: response.status,
        error: `answer too large: HTTP ${response.status} with a body over ${MAX_ANSWER_BYTES} bytes (1 MiB), not read further`,
        latencyMs: elapsed(),
      };
    }
    text = read.text;
  } catch (err) {
    const error = describeFailure(err, timeout, opts);
    return { ok: false, transport: true, status: response.status, error, latencyMs: elapsed() };
  }
  return { ...outcomeOf(response.status, text), latencyMs: elapsed() };
}

/**
 * The request, to a checked address when the caller pinned some (the next one only when this one
 * took no connection, so nothing was sent twice). `failure`: nothing answered (undefined: no address).
 */
async function send(
  target: string,
  init: RequestInit,
  opts: CallOptions,
  signal: AbortSignal,
): Promise<{ response: Response } | { failure: unknown }> {
  const doFetch = opts.fetch ?? fetch;
  const pins = (opts.connectTo ?? []).map((address) => pinned(target, address));
  const attempts = pins.length > 0 && pins.every((p) => p !== undefined) ? pins : [undefined];
  for (const [i, pin] of attempts.entries()) {
    try {
      const response = await doFetch(pin?.url ?? target, {
        ...init,
        signal,
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'user-agent': USER_AGENT,
          ...opts.headers,
          ...(pin ? { host: pin.host } : {}),
        },
        ...(pin?.serverName ? { tls: { serverName: pin.serverName } } : {}),
      });
      return { response };
    } catch (err) {
      if (i < attempts.length - 1 && !signal.aborted && notConnected(err)) continue;
      return { failure: err };
    }
  }
  return { failure: undefined };
}

/** An answer read whole: 200 with a JSON object is the only success; any other status, or no JSON object, is a refusal. */
function outcomeOf(status: number, text: string): Omit<CallOutcome, 'latencyMs'> {
  let body: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      body = parsed as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  if (status !== 200)
    return {
      ok: false,
      transport: false,
      status,
      body,
      error: `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`,
    };
  if (!body)
    return {
      ok: false,
      transport: false,
      status: 200,
      error: `HTTP 200 without a JSON object body: ${text.slice(0, 200)}`,
    };
  return { ok: true, transport: false, status: 200, body };
}

const IS_BUN = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';

/**
 * The request to `target` sent to `address`: the URL names the address, the Host header the name.
 * Undefined when there is nothing to pin (the URL names an address already), or for https outside
 * Bun, whose fetch is the only one that takes a TLS server name: there the certificate, checked
 * against the name, is what binds the connection to it.
 */
function pinned(
  target: string,
  address: string,
): { url: string; host: string; serverName?: string } | undefined {
  const url = new URL(target);
  if (isIP(url.hostname.replace(/^\[|\]$/g, '')) || !isIP(address)) return undefined;
  const https = url.protocol === 'https:';
  if (https && !IS_BUN) return undefined;
  const { host, hostname } = url;
  url.hostname = address.includes(':') ? `[${address}]` : address;
  return { url: url.href, host, serverName: https ? hostname : undefined };
}

/** Failures that happen before a connection is made, so the request was not sent. */
const NOT_CONNECTED = new Set([
  'ConnectionRefused',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENETDOWN',
  'EHOSTDOWN',
]);
const notConnected = (err: unknown) => NOT_CONNECTED.has(String((err as { code?: unknown })?.code));

function describeFailure(err: unknown, timeout: AbortSignal, opts: CallOptions): string {
  if (timeout.aborted) return `timeout after ${opts.timeoutMs} ms`;
  if (opts.signal?.aborted) return 'aborted (release halted)';
  const e = err as { code?: string; message?: string };
  if (e?.code === 'ConnectionRefused' || e?.code === 'ECONNREFUSED') return 'connection refused';
  return e?.message ?? String(err);
}
