import { type Command, InvalidArgumentError, Option } from 'commander';
import { ApiClient } from './http';
import { Output } from './output';

export interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
  timeout?: number;
}

export const DEFAULT_URL = 'http://localhost:3000';
export const DEFAULT_TIMEOUT_MS = 15_000;

export interface Ctx {
  client: ApiClient;
  out: Output;
  json: boolean;
  /** where to write progress notes and warnings (stderr, so --json output stays clean) */
  note(message: string): void;
}

export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be 0 or more.`);
    return n;
  };
}

function globalOptions(withDefaults: boolean): Option[] {
  const url = new Option('--url <url>', 'coordinator base URL');
  const token = new Option('--token <jwt>', 'bearer token (JWT) for the coordinator; writes need one');
  const json = new Option('--json', 'machine-readable JSON on stdout');
  const timeout = new Option('--timeout <ms>', 'deadline of every request in ms').argParser(
    positiveInt('--timeout'),
  );
  if (withDefaults) {
    url.env('RC_URL').default(DEFAULT_URL);
    token.env('RC_TOKEN');
    timeout.env('RC_TIMEOUT_MS').default(DEFAULT_TIMEOUT_MS);
  }
  return [url, token, json, timeout];
}

/** The global options on the program itself (before a command: `rc --url … releases list`). */
export function addRootOptions(program: Command): void {
  for (const o of globalOptions(true)) program.addOption(o);
}

const leafGlobals = new WeakMap<Command, Set<string>>();

/**
 * The same options on every command that runs something (`rc releases list --json`), unless the
 * command uses the flag for itself (`services add --url` is the service's URL).
 */
export function addLeafOptions(cmd: Command): void {
  if (cmd.commands.length > 0) {
    for (const sub of cmd.commands) addLeafOptions(sub);
    return;
  }
  const added = new Set<string>();
  for (const o of globalOptions(false)) {
    if (cmd.options.some((x) => x.long === o.long)) continue;
    cmd.addOption(o);
    added.add(o.attributeName());
  }
  leafGlobals.set(cmd, added);
}

export function globalsOf(cmd: Command): Required<Pick<GlobalOptions, 'url' | 'timeout'>> & GlobalOptions {
  let root = cmd;
  while (root.parent) root = root.parent;
  const g = root.opts<GlobalOptions>();
  const own = leafGlobals.get(cmd) ?? new Set<string>();
  const l = cmd.opts<GlobalOptions>();
  const pick = <K extends keyof GlobalOptions>(k: K) => (own.has(k) && l[k] !== undefined ? l[k] : g[k]);
  return {
    url: pick('url') ?? DEFAULT_URL,
    token: pick('token'),
    json: Boolean(pick('json')),
    timeout: pick('timeout') ?? DEFAULT_TIMEOUT_MS,
  };
}

/** The API client and output of a command, from the global options (--url/RC_URL, --token/RC_TOKEN, ...). */
export function ctxOf(cmd: Command): Ctx {
  const g = globalsOf(cmd);
  const json = Boolean(g.json);
  return {
    client: new ApiClient({ url: g.url, token: g.token || undefined, timeoutMs: g.timeout }),
    out: new Output(json),
    json,
    note: (message) => void process.stderr.write(`${message}\n`),
  };
}

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/** Last path segment of an absolute URL of a related record (`https://host/releases/RE_X` → `RE_X`). */
export function idOf(url: string | null | undefined): string {
  if (!url) return '';
  return url.split('/').filter(Boolean).at(-1) ?? url;
}
