import type { Command } from 'commander';
import { ctxOf, nonNegativeInt, type Page, positiveInt } from './context';
import { shortTime, table } from './output';

export interface SyncReport {
  new: string[];
  deleted: string[];
  updated: string[];
  pages?: number;
  total?: number;
}

export interface Study {
  kf_id: string;
  name: string;
  version: string | null;
  visible: boolean;
  last_pub_version: string | null;
  last_pub_date: string | null;
  deleted: boolean;
  created_at: string | null;
}

export function registerStudies(program: Command): void {
  const studies = program
    .command('studies')
    .alias('study')
    .description('studies: add, sync from the data service, list');
  addStudy(studies);
  addSync(studies);
  addList(studies);
}

/** rc studies add <SD_id>: register a study by hand. */
function addStudy(studies: Command): void {
  studies
    .command('add')
    .description('register a study by hand (POST /studies), e.g. when there is no data service to sync from')
    .argument('<SD_id>', 'study id, e.g. SD_ABCDEF12')
    .option('--name <name>', 'name of the study', '')
    .option('--hidden', 'not visible (visible: false)')
    .action(async (id: string, opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.post<Study>('/studies', {
        kf_id: id,
        name: opts.name,
        visible: !opts.hidden,
      });
      if (ctx.json) return ctx.out.printJson(res.body);
      const name = res.body.name ? ` (${res.body.name})` : '';
      ctx.out.line(`Added study ${ctx.out.p.bold(res.body.kf_id)}${name}`);
    });
}

/** rc studies sync: pull every study from the data service. */
function addSync(studies: Command): void {
  studies
    .command('sync')
    .description('pull every study from the data service (POST /studies/sync) and print what changed')
    .action(async (_opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      // a sync reads every page of the data service: allow it more than one request's deadline
      const res = await ctx.client.request<SyncReport>('POST', '/studies/sync', {
        timeoutMs: Math.max(ctx.client.timeoutMs, 120_000),
      });
      const r = res.body;
      if (ctx.json) return ctx.out.printJson(r);
      const { out } = ctx;
      out.line(
        `Studies synced: ${r.new.length} new, ${r.deleted.length} deleted, ${r.updated.length} updated` +
          (r.total !== undefined ? ` (${r.total} upstream in ${r.pages ?? '?'} pages)` : ''),
      );
      for (const [label, ids] of [
        ['new', r.new],
        ['deleted', r.deleted],
        ['updated', r.updated],
      ] as const) {
        if (ids.length > 0)
          out.line(
            `  ${label}: ${ids.slice(0, 20).join(' ')}${ids.length > 20 ? ` … (+${ids.length - 20})` : ''}`,
          );
      }
    });
}

/** rc studies list */
function addList(studies: Command): void {
  studies
    .command('list')
    .alias('ls')
    .description('list studies')
    .option('--limit <n>', 'at most this many', positiveInt('--limit'), 50)
    .option('--offset <n>', 'skip this many', nonNegativeInt('--offset'), 0)
    .action(async (opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.get<Page<Study>>('/studies', { limit: opts.limit, offset: opts.offset });
      if (ctx.json) return ctx.out.printJson(res.body);
      const { out } = ctx;
      if (res.body.results.length === 0) return out.line('No studies.');
      out.line(
        table(
          res.body.results,
          [
            { header: 'ID', value: (s) => s.kf_id },
            { header: 'NAME', value: (s) => s.name },
            { header: 'VERSION', value: (s) => s.version ?? '' },
            { header: 'PUBLISHED', value: (s) => s.last_pub_version ?? '' },
            { header: 'CREATED', value: (s) => shortTime(s.created_at) },
          ],
          out.p,
        ),
      );
      if (res.body.count > res.body.results.length)
        out.line(
          out.p.dim(`${opts.offset + 1}-${opts.offset + res.body.results.length} of ${res.body.count}`),
        );
    });
}
