import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { inIds } from '../db/raw-select';
import { studies } from '../db/schema';

export interface SyncReport {
  new: string[];
  deleted: string[];
  updated: string[];
  pages: number;
  total: number;
}

export interface SyncOptions {
  /** the data service base URL, e.g. https://kf-api-dataservice.kidsfirstdrc.org */
  dataserviceUrl: string;
  pageSize?: number;
  /** stop following `next` links after this many pages (a loop guard) */
  maxPages?: number;
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
}

interface UpstreamStudy {
  kf_id: string;
  name?: string | null;
  short_name?: string | null;
  visible?: boolean | null;
}

const STUDY_ID = /^SD_[0-9A-Z]{8}$/;

export class SyncError extends Error {}

/**
 * Pulls every study from the Kids First data service, following every page (`limit`/`after`
 * and `_links.next`), then in one transaction adds new studies, updates changed ones, and marks
 * those no longer upstream `deleted`. Nothing is changed unless every page was read.
 */
export async function syncStudies(db: Db, opts: SyncOptions): Promise<SyncReport> {
  const upstream = await fetchAllStudies(opts);
  const byId = new Map(upstream.studies.map((s) => [s.kf_id, s]));
  return db.transaction(async (tx) => {
    const existing = await tx.select().from(studies);
    const known = new Map(existing.map((s) => [s.kfId, s]));
    const report: SyncReport = { new: [], deleted: [], updated: [], pages: upstream.pages, total: byId.size };
    const fresh = [...byId.values()].filter((s) => !known.has(s.kf_id));
    if (fresh.length > 0) {
      await tx
        .insert(studies)
        .values(fresh.map((s) => ({ kfId: s.kf_id, name: nameOf(s), visible: s.visible ?? true })));
      report.new = fresh.map((s) => s.kf_id);
    }
    for (const s of byId.values()) {
      const current = known.get(s.kf_id);
      if (!current) continue;
      const name = nameOf(s);
      const visible = s.visible ?? true;
      if (current.name !== name || current.visible !== visible || current.deleted) {
        await tx.update(studies).set({ name, visible, deleted: false }).where(eq(studies.kfId, s.kf_id));
        report.updated.push(s.kf_id);
      }
    }
    const gone = existing.filter((s) => !s.deleted && !byId.has(s.kfId)).map((s) => s.kfId);
    if (gone.length > 0) {
      await tx
        .update(studies)
        .set({ deleted: true })
        .where(and(inIds(studies.kfId, gone), eq(studies.deleted, false)));
      report.deleted = gone;
    }
    return report;
  });
}

const nameOf = (s: UpstreamStudy) => s.name ?? s.short_name ?? '';

async function fetchAllStudies(opts: SyncOptions): Promise<{ studies: UpstreamStudy[]; pages: number }> {
  const doFetch = opts.fetch ?? fetch;
  const base = opts.dataserviceUrl.replace(/\/+$/, '');
  const maxPages = opts.maxPages ?? 10_000;
  let next: string | undefined = `${base}/studies?limit=${opts.pageSize ?? 100}`;
  const seenPages = new Set<string>();
  const all: UpstreamStudy[] = [];
  let pages = 0;
  while (next) {
    if (seenPages.has(next))
      throw new SyncError(`the data service links back to a page already read: ${next}`);
    if (pages >= maxPages) throw new SyncError(`more than ${maxPages} pages; stopped`);
    seenPages.add(next);
    let res: Response;
    try {
      res = await doFetch(next, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(opts.requestTimeoutMs ?? 15_000),
      });
    } catch (err) {
      throw new SyncError(`GET ${next} failed: ${(err as Error).message}`);
    }
    if (res.status !== 200) throw new SyncError(`GET ${next} answered ${res.status}`);
    let body: { results?: unknown; _links?: { next?: unknown } };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw new SyncError(`GET ${next} did not answer JSON`);
    }
    if (!Array.isArray(body.results)) throw new SyncError(`GET ${next} answered without a results list`);
    pages++;
    for (const r of body.results as UpstreamStudy[]) {
      if (r && typeof r.kf_id === 'string' && STUDY_ID.test(r.kf_id)) all.push(r);
    }
    const link = body._links?.next;
    next =
      typeof link === 'string' && link && body.results.length > 0
        ? new URL(link, `${base}/`).toString()
        : undefined;
  }
  return { studies: all, pages };
}
