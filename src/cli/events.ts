import { type Command, Option } from 'commander';
import { type Ctx, ctxOf, idOf, type Page, positiveInt } from './context';
import { usageError } from './errors';
import { type Palette, shortTime, table } from './output';
import { followSse } from './sse';

export interface EventRecord {
  kf_id: string;
  event_type: string;
  message: string;
  release: string | null;
  task_service: string | null;
  task: string | null;
  created_at: string | null;
}

export interface Notification {
  id: string;
  type: string;
  time: string;
  subject: string;
  data: Record<string, unknown>;
}

/** One line for a live notification: time, type, subject and what changed. */
export function notificationLine(n: Notification, p: Palette): string {
  const d = n.data ?? {};
  const [entity, state = ''] = n.type.split('.');
  const painted = n.type.replace(state, paintOf(p, state)(state));
  let rest: string;
  if (entity === 'release') rest = `"${String(d.name ?? '')}" version ${String(d.version ?? '')}`;
  else
    rest =
      `${String(d.service_name ?? '')} release ${String(d.release_id ?? idOf(d.release as string))}` +
      (typeof d.progress === 'number' ? ` ${Math.round(d.progress)}%` : '');
  const pad = ' '.repeat(Math.max(0, 18 - n.type.length));
  return `${shortTime(n.time)}  ${painted}${pad}  ${n.subject}  ${rest}`.trimEnd();
}

function paintOf(p: Palette, state: string) {
  if (state === 'published' || state === 'staged') return p.green;
  if (state === 'failed' || state === 'rejected') return p.red;
  if (state === 'canceled' || state === 'canceling') return p.yellow;
  return p.cyan;
}

async function follow(
  ctx: Ctx,
  opts: { release?: string; from: string; lastEventId?: string; count?: number },
): Promise<void> {
  let printed = 0;
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for await (const ev of followSse({
      client: ctx.client,
      path: '/events/stream',
      query: { release: opts.release, from: opts.from },
      lastEventId: opts.lastEventId,
      signal: ac.signal,
      onReconnect: (i) =>
        ctx.note(
          `event stream dropped (${i.reason}); reconnecting after event ${i.lastEventId ?? '-'} in ${i.delayMs} ms`,
        ),
    })) {
      if (ev.event === 'ready') {
        ctx.note(
          `following events${opts.release ? ` of ${opts.release}` : ''} at ${ctx.client.base} (Ctrl-C to stop)`,
        );
        continue;
      }
      let n: Notification;
      try {
        n = JSON.parse(ev.data);
      } catch {
        continue;
      }
      if (ctx.json) ctx.out.jsonLine({ seq: ev.id === undefined ? null : Number(ev.id), ...n });
      else ctx.out.line(notificationLine(n, ctx.out.p));
      // `| head -5` ends a follower only at its next write, which can be a long wait: --count ends it at once
      if (opts.count !== undefined && ++printed >= opts.count) return;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export function registerEvents(program: Command): void {
  program
    .command('events')
    .description(
      'the event log (GET /events), or with --follow every release and task transition live (GET /events/stream);\n' +
        '--follow reconnects with Last-Event-ID when the stream drops; --json prints one notification per line',
    )
    .option('-f, --follow', 'follow live until interrupted')
    .option('--release <RE_id>', 'only this release')
    .option('--task <TA_id>', 'only this task (event log only)')
    .option('--service <TS_id>', 'only this task service (event log only)')
    .addOption(
      new Option('--from <where>', 'with --follow: new events only, or replay all stored first')
        .choices(['new', 'all'])
        .default('new'),
    )
    .option('--last-event-id <seq>', 'with --follow: resume after this event sequence')
    .option('--count <n>', 'with --follow: stop after this many events', positiveInt('--count'))
    .option('--limit <n>', 'event log: at most this many', positiveInt('--limit'), 20)
    .action(async (opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      if (!opts.follow && opts.count !== undefined)
        throw usageError('--count goes with --follow (the event log takes --limit).');
      if (opts.follow) {
        if (opts.task || opts.service)
          throw usageError('--task and --service filter the event log; --follow takes --release only.');
        return follow(ctx, {
          release: opts.release,
          from: opts.from,
          lastEventId: opts.lastEventId,
          count: opts.count,
        });
      }
      const res = await ctx.client.get<Page<EventRecord>>('/events', {
        release: opts.release,
        task: opts.task,
        task_service: opts.service,
        limit: opts.limit,
      });
      if (ctx.json) return ctx.out.printJson(res.body);
      const { out } = ctx;
      if (res.body.results.length === 0) return out.line('No events.');
      out.line(
        table(
          res.body.results,
          [
            { header: 'CREATED', value: (e) => shortTime(e.created_at) },
            { header: 'ID', value: (e) => e.kf_id },
            {
              header: 'TYPE',
              value: (e) => e.event_type,
              paint: (v) => (v === 'error' ? out.p.red(v) : v === 'warning' ? out.p.yellow(v) : v),
            },
            { header: 'RELEASE', value: (e) => idOf(e.release) },
            { header: 'MESSAGE', value: (e) => e.message },
          ],
          out.p,
        ),
      );
    });
}
