import { CliError, EXIT } from './errors';

export interface ClientOptions {
  /** coordinator base URL, e.g. http://localhost:3000 */
  url: string;
  /** bearer token sent with every request */
  token?: string;
  /** deadline of every request, in milliseconds */
  timeoutMs: number;
  fetch?: typeof fetch;
}

export interface Reply<T> {
  status: number;
  body: T;
  headers: Headers;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  body?: unknown;
  query?: Query;
  headers?: Record<string, string>;
  /** overrides the client's deadline for this request */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const NOUNS: Record<string, string> = {
  releases: 'release',
  tasks: 'task',
  'task-services': 'task service',
  events: 'event',
  studies: 'study',
  'release-notes': 'release note',
};

/** A small client of the coordinator's REST API: a deadline on every request, errors mapped to messages. */
export class ApiClient {
  readonly base: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly opts: ClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(opts.url);
    } catch {
      throw new CliError(
        `Not a URL: ${JSON.stringify(opts.url)}. Set RC_URL or pass --url, e.g. http://localhost:3000.`,
        EXIT.usage,
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new CliError(`The coordinator URL must be http(s): ${opts.url}`, EXIT.usage);
    this.base = opts.url.replace(/\/+$/, '');
    this.doFetch = opts.fetch ?? fetch;
  }

  get hasToken(): boolean {
    return Boolean(this.opts.token);
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  url(path: string, query: Query = {}): string {
    const u = new URL(this.base + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', 'user-agent': 'rc-cli', ...extra };
    if (this.opts.token) h.authorization = `Bearer ${this.opts.token}`;
    return h;
  }

  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<Reply<T>> {
    const timeoutMs = o.timeoutMs ?? this.opts.timeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = o.signal ? AbortSignal.any([deadline, o.signal]) : deadline;
    const url = this.url(path, o.query);
    const headers = this.headers(o.headers);
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await this.doFetch(url, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal,
      });
      text = await res.text(); // the deadline covers the body too
    } catch (err) {
      if (o.signal?.aborted) throw err;
      throw transportError(err, url, timeoutMs, deadline.aborted);
    }
    const body = parseBody(text);
    if (res.status >= 400)
      throw apiError(res.status, body, { method, path, hasToken: this.hasToken, base: this.base });
    return { status: res.status, body: body as T, headers: res.headers };
  }

  get<T = unknown>(path: string, query?: Query) {
    return this.request<T>('GET', path, { query });
  }
  post<T = unknown>(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, { body, headers });
  }
  patch<T = unknown>(path: string, body: unknown) {
    return this.request<T>('PATCH', path, { body });
  }
  delete<T = unknown>(path: string) {
    return this.request<T>('DELETE', path);
  }
}

export function parseBody(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function transportError(err: unknown, url: string, timeoutMs: number, timedOut: boolean): CliError {
  const e = err as { name?: string; message?: string; code?: string };
  if (timedOut || e?.name === 'TimeoutError')
    return new CliError(
      `No answer from ${url} within ${timeoutMs} ms (raise the deadline with --timeout).`,
      EXIT.error,
      {
        retryable: true,
      },
    );
  const why =
    e?.code && !e.message?.includes(e.code) ? `${e.code}: ${e.message}` : (e?.message ?? String(err));
  return new CliError(
    `Cannot reach the coordinator at ${new URL(url).origin}: ${why}. Check --url or RC_URL.`,
    EXIT.error,
    { retryable: true },
  );
}

/** "release RE_3G2409A2" for /releases/RE_3G2409A2/publish; the path itself otherwise. */
export function describeTarget(path: string): string {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  const noun = parts[0] ? NOUNS[parts[0]] : undefined;
  if (noun && parts[1]) return `${noun} ${decodeURIComponent(parts[1])}`;
  return path;
}

function fieldMessages(body: unknown): string[] {
  if (!body || typeof body !== 'object') return [];
  return Object.entries(body as Record<string, unknown>)
    .filter(([k]) => k !== 'detail')
    .map(
      ([k, v]) => `  ${k}: ${Array.isArray(v) ? v.join(' ') : typeof v === 'string' ? v : JSON.stringify(v)}`,
    );
}

/** Turns an HTTP error answer into a message a person can act on. */
export function apiError(
  status: number,
  body: unknown,
  ctx: { method: string; path: string; hasToken: boolean; base: string },
): CliError {
  const detail =
    body && typeof body === 'object' && typeof (body as { detail?: unknown }).detail === 'string'
      ? (body as { detail: string }).detail
      : typeof body === 'string' && body
        ? body.slice(0, 300)
        : undefined;
  const details = { status, body, retryable: status >= 500 || status === 429 };
  const fields = fieldMessages(body);
  switch (status) {
    case 401:
      return new CliError(
        ctx.hasToken
          ? `The coordinator rejected the token (401: ${detail ?? 'Unauthorized'}). Pass a valid token with --token <JWT> or the RC_TOKEN environment variable.`
          : `${ctx.method} ${ctx.path} needs a token (401: ${detail ?? 'Unauthorized'}). Pass one with --token <JWT> or set RC_TOKEN (in development, on the coordinator's machine: export RC_TOKEN=$(rc token --dev)).`,
        EXIT.error,
        details,
      );
    case 403:
      return new CliError(
        `Not allowed (403): ${detail ?? 'Forbidden'}. The token lacks the role this needs (usually ADMIN).`,
        EXIT.error,
        details,
      );
    case 404:
      return new CliError(
        `Not found (404): ${describeTarget(ctx.path)} does not exist at ${ctx.base}.`,
        EXIT.error,
        details,
      );
    case 400:
      return new CliError(
        [`Invalid request (400)${detail ? `: ${detail}` : ':'}`, ...fields].join('\n'),
        EXIT.error,
        details,
      );
    case 409:
      return new CliError(
        `Conflict (409): ${detail ?? 'the action does not fit the current state'}`,
        EXIT.error,
        details,
      );
    default:
      return new CliError(
        [`${ctx.method} ${ctx.path} failed (${status})${detail ? `: ${detail}` : ''}`, ...fields].join('\n'),
        EXIT.error,
        details,
      );
  }
}
