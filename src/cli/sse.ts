import { createParser, type EventSourceParser } from 'eventsource-parser';
import { CliError } from './errors';
import { type ApiClient, apiError, parseBody, type Query, transportError } from './http';

/** One Server-Sent Event. `event` is `message` when the server named none. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Incremental text/event-stream parser (eventsource-parser: the WHATWG rules) that returns the
 * events each chunk completes. An event's `id` is only set when that event carried one; the
 * last id seen is kept by followSse.
 */
export class SseParser {
  private readonly parser: EventSourceParser;
  private ready: SseEvent[] = [];
  /** the `retry:` the server asked for, in ms */
  retryMs: number | undefined;

  constructor() {
    this.parser = createParser({
      onEvent: (e) =>
        this.ready.push({
          ...(e.id === undefined ? {} : { id: e.id }),
          event: e.event ?? 'message',
          data: e.data,
        }),
      onRetry: (ms) => {
        this.retryMs = ms;
      },
    });
  }

  feed(chunk: string): SseEvent[] {
    this.parser.feed(chunk);
    const events = this.ready;
    this.ready = [];
    return events;
  }
}

export interface ReconnectInfo {
  attempt: number;
  lastEventId: string | undefined;
  reason: string;
  delayMs: number;
}

export interface SseOptions {
  client: ApiClient;
  path: string;
  query?: Query;
  /** resume after this event id (sent as Last-Event-ID) */
  lastEventId?: string;
  signal: AbortSignal;
  /** reconnect with Last-Event-ID when the stream drops (default true) */
  reconnect?: boolean;
  /** reconnect when nothing (not even a keepalive) arrived for this long; default 45 s */
  idleMs?: number;
  /** deadline for the response headers; default the client's request deadline */
  connectTimeoutMs?: number;
  /** first reconnect delay; doubles on each failure in a row, up to maxRetryMs */
  retryMs?: number;
  maxRetryMs?: number;
  onReconnect?: (info: ReconnectInfo) => void;
}

/**
 * Follows an SSE endpoint of the coordinator with fetch. When the stream drops (closed, network
 * error, idle past `idleMs`, a 5xx) it reconnects with `Last-Event-ID` set to the last id seen,
 * so nothing is missed or repeated; a 4xx answer ends it with the mapped error.
 */
export async function* followSse(o: SseOptions): AsyncGenerator<SseEvent> {
  let lastId = o.lastEventId;
  let failures = 0;
  let serverRetry: number | undefined;
  const reconnect = o.reconnect ?? true;
  while (!o.signal.aborted) {
    let reason: string;
    try {
      for await (const item of connectOnce(o, lastId)) {
        if ('retryMs' in item) {
          serverRetry = item.retryMs;
          continue;
        }
        failures = 0;
        if (item.id !== undefined) lastId = item.id;
        yield item;
      }
      reason = 'the server closed the stream';
    } catch (err) {
      if (o.signal.aborted) return;
      if (err instanceof CliError && !err.details.retryable) throw err;
      if (!reconnect) throw err;
      reason = (err as Error).message;
    }
    if (!reconnect || o.signal.aborted) return;
    failures++;
    const base = serverRetry ?? o.retryMs ?? 250;
    const delayMs = Math.min(base * 2 ** Math.min(failures - 1, 6), o.maxRetryMs ?? 10_000);
    o.onReconnect?.({ attempt: failures, lastEventId: lastId, reason, delayMs });
    await sleep(delayMs, o.signal);
  }
}

async function* connectOnce(
  o: SseOptions,
  lastId: string | undefined,
): AsyncGenerator<SseEvent | { retryMs: number }> {
  const url = o.client.url(o.path, o.query);
  const connectTimeoutMs = o.connectTimeoutMs ?? o.client.timeoutMs;
  const idleMs = o.idleMs ?? 45_000;
  const ac = new AbortController();
  let why: string | undefined;
  const stop = (reason: string) => {
    why ??= reason;
    ac.abort();
  };
  const onAbort = () => stop('aborted');
  o.signal.addEventListener('abort', onAbort, { once: true });
  const connectTimer = setTimeout(() => stop('connect-timeout'), connectTimeoutMs);
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => stop('idle'), idleMs);
  };
  try {
    let res: Response;
    try {
      const headers = o.client.headers({ accept: 'text/event-stream', 'cache-control': 'no-cache' });
      if (lastId !== undefined) headers['last-event-id'] = lastId;
      res = await fetch(url, { headers, signal: ac.signal });
    } catch (err) {
      throw transportError(err, url, connectTimeoutMs, why === 'connect-timeout');
    }
    clearTimeout(connectTimer);
    if (res.status >= 400) {
      const body = parseBody(await res.text().catch(() => ''));
      throw apiError(res.status, body, {
        method: 'GET',
        path: o.path,
        hasToken: o.client.hasToken,
        base: o.client.base,
      });
    }
    if (!res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      await res.body?.cancel().catch(() => undefined);
      throw new CliError(
        `${url} did not answer an event stream (content-type ${res.headers.get('content-type')}).`,
      );
    }
    const parser = new SseParser();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        arm();
        const events = parser.feed(value);
        if (parser.retryMs !== undefined) {
          yield { retryMs: parser.retryMs };
          parser.retryMs = undefined;
        }
        for (const e of events) yield e;
      }
    } catch (err) {
      if (why === 'idle') throw new Error(`no data for ${idleMs} ms`);
      if (why === 'aborted') return;
      throw new Error(`the stream broke: ${(err as Error).message}`);
    } finally {
      reader.cancel().catch(() => undefined);
    }
  } finally {
    clearTimeout(connectTimer);
    clearTimeout(idleTimer);
    o.signal.removeEventListener('abort', onAbort);
    ac.abort();
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
