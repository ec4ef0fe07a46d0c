import { type Command, Option } from 'commander';
import { type Ctx, ctxOf, nonNegativeInt, type Page, positiveInt } from './context';
import { EXIT } from './errors';
import { parseBody } from './http';
import { keyValues, shortTime, table } from './output';

export interface TaskService {
  kf_id: string;
  name: string;
  description: string;
  last_ok_status: number;
  author: string;
  health_status: string;
  url: string;
  created_at: string | null;
  enabled: boolean;
}

const STATUS_DEADLINE_MS = 5_000;

function printService(ctx: Ctx, s: TaskService, verb?: string): void {
  const { out } = ctx;
  if (ctx.json) {
    out.printJson(s);
    return;
  }
  if (verb) out.line(`${verb} task service ${out.p.bold(s.kf_id)} (${s.name})`);
  out.line(
    keyValues(
      [
        ['id', s.kf_id],
        ['name', s.name],
        ['url', s.url],
        ['enabled', s.enabled ? out.p.green('yes') : out.p.yellow('no')],
        ['health', `${out.state(s.health_status)} (${s.last_ok_status} failed checks in a row)`],
        ['description', s.description],
        ['author', s.author],
        ['created', shortTime(s.created_at)],
      ],
      out.p,
    ),
  );
}

export function registerServices(program: Command): void {
  const services = program
    .command('services')
    .alias('service')
    .description(
      'task services: the services every release drives (add, list, show, check, enable, disable)',
    );
  addService(services);
  addList(services);
  addShow(services);
  addCheck(services);
  addEnableOrDisable(services, true);
  addEnableOrDisable(services, false);
}

/** rc services add: register a task service. */
function addService(services: Command): void {
  services
    .command('add')
    .description(
      "register a task service (the coordinator checks GET {url}/status first); --url here is the service's,\n" +
        "give the coordinator's with RC_URL or before the command: rc --url <coordinator> services add ...",
    )
    .requiredOption('--name <name>', 'name of the service')
    .requiredOption('--url <url>', 'base URL of its task-service API')
    .option('--description <text>', 'what it serves')
    .option('--author <name>', 'who registered it')
    .option('--disabled', 'register it disabled (no tasks until enabled)')
    .action(async (opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const body: Record<string, unknown> = { name: opts.name, url: opts.url };
      if (opts.description !== undefined) body.description = opts.description;
      if (opts.author !== undefined) body.author = opts.author;
      if (opts.disabled) body.enabled = false;
      const res = await ctx.client.post<TaskService>('/task-services', body);
      printService(ctx, res.body, 'Added');
    });
}

/** rc services list: newest first, one page. */
function addList(services: Command): void {
  services
    .command('list')
    .alias('ls')
    .description('list task services, newest first')
    .addOption(
      new Option('--enabled <bool>', 'only enabled (true) or disabled (false) ones').choices([
        'true',
        'false',
      ]),
    )
    .option('--limit <n>', 'at most this many', positiveInt('--limit'), 100)
    .option('--offset <n>', 'skip this many', nonNegativeInt('--offset'), 0)
    .action(async (opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.get<Page<TaskService>>('/task-services', {
        enabled: opts.enabled,
        limit: opts.limit,
        offset: opts.offset,
      });
      const page = res.body;
      if (ctx.json) return ctx.out.printJson(page);
      const { out } = ctx;
      if (page.results.length === 0) return out.line('No task services.');
      out.line(
        table(
          page.results,
          [
            { header: 'ID', value: (s) => s.kf_id },
            { header: 'NAME', value: (s) => s.name },
            { header: 'ENABLED', value: (s) => (s.enabled ? 'yes' : 'no') },
            { header: 'HEALTH', value: (s) => s.health_status, paint: (v) => out.state(v) },
            { header: 'URL', value: (s) => s.url },
          ],
          out.p,
        ),
      );
      if (page.count > page.results.length) out.line(out.p.dim(`${page.results.length} of ${page.count}`));
    });
}

/** rc services show <id> */
function addShow(services: Command): void {
  services
    .command('show')
    .description('one task service')
    .argument('<id>', 'task service id, e.g. TS_3G2409A2')
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.get<TaskService>(`/task-services/${encodeURIComponent(id)}`);
      printService(ctx, res.body);
    });
}

/** rc services check <id>: ask the service itself (GET {url}/status); exit 1 when down. */
function addCheck(services: Command): void {
  services
    .command('check')
    .description(
      `ask a task service directly: GET {url}/status (deadline ${STATUS_DEADLINE_MS / 1000} s); exit 1 when down`,
    )
    .argument('<id>', 'task service id')
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const s = (await ctx.client.get<TaskService>(`/task-services/${encodeURIComponent(id)}`)).body;
      const result = await checkStatus(s.url);
      if (ctx.json) ctx.out.printJson({ kf_id: s.kf_id, name: s.name, ...result });
      else {
        const { out } = ctx;
        const answer = typeof result.body === 'string' ? result.body : JSON.stringify(result.body);
        out.line(
          `${out.p.bold(s.kf_id)} ${s.name}: ${out.state(result.ok ? 'ok' : 'down')} ` +
            `(${result.status ? `HTTP ${result.status}` : result.error}, ${result.ms} ms) ${result.url}`,
        );
        if (answer !== undefined && answer !== null && answer !== '' && answer !== 'null')
          out.line(`  ${answer}`);
      }
      if (!result.ok) process.exitCode = EXIT.error;
    });
}

/** rc services enable|disable <id> */
function addEnableOrDisable(services: Command, enabled: boolean): void {
  services
    .command(enabled ? 'enable' : 'disable')
    .description(
      enabled
        ? 'enable a task service (new releases get a task for it)'
        : 'disable a task service (new releases skip it)',
    )
    .argument('<id>', 'task service id')
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.patch<TaskService>(`/task-services/${encodeURIComponent(id)}`, {
        enabled,
      });
      if (ctx.json) return ctx.out.printJson(res.body);
      ctx.out.line(
        `${enabled ? 'Enabled' : 'Disabled'} task service ${ctx.out.p.bold(res.body.kf_id)} (${res.body.name})`,
      );
    });
}

export interface StatusCheck {
  ok: boolean;
  url: string;
  status: number | null;
  body: unknown;
  error: string | null;
  ms: number;
}

/** GET {url}/status with a deadline; ok = a 2xx answer. */
export async function checkStatus(baseUrl: string, timeoutMs = STATUS_DEADLINE_MS): Promise<StatusCheck> {
  const url = `${baseUrl.replace(/\/+$/, '')}/status`;
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = parseBody(await res.text());
    return {
      ok: res.ok,
      url,
      status: res.status,
      body,
      error: res.ok ? null : `HTTP ${res.status}`,
      ms: ms(),
    };
  } catch (err) {
    const e = err as Error;
    const error =
      e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : e.message;
    return { ok: false, url, status: null, body: null, error, ms: ms() };
  }
}
