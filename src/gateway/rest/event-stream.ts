import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { Invalid } from '../../domain/errors';
import { KF_ID_PATTERN } from '../../domain/ids';
import type { AppEnv } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { ApiError } from '../http/errors';
import { validate } from '../http/validation';

const query = z.object({
  release: z.string().regex(KF_ID_PATTERN, 'A release id looks like RE_ABCDEFGH.').optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  from: z.enum(['new', 'all']).default('new'),
});

const KEEPALIVE_MS = 15_000;

/**
 * GET /events/stream: every release and task transition as Server-Sent Events, the same
 * notifications as RC_EVENTS. `?release=RE_…` filters; `Last-Event-ID` (the stream sequence)
 * resumes after the last event a client saw; `?since=<ISO time>` or `?from=all` replays.
 */
export function eventStreamRoutes(deps: GatewayDeps) {
  return new Hono<AppEnv>().get('/stream', validate('query', query), (c) => {
    const feed = deps.notifications;
    if (!feed) throw new ApiError(503, { detail: 'The event feed is not available on this process.' });
    const q = c.req.valid('query');
    const lastId = c.req.header('last-event-id');
    let afterSeq: number | undefined;
    if (lastId !== undefined && lastId !== '') {
      afterSeq = Number(lastId);
      if (!Number.isSafeInteger(afterSeq) || afterSeq < 0)
        throw Invalid({ 'Last-Event-ID': ['Must be a sequence number.'] });
    }
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      const aborted = new AbortController();
      stream.onAbort(() => aborted.abort());
      const keepalive = setInterval(() => void stream.write(': keepalive\n\n'), KEEPALIVE_MS);
      try {
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ release: q.release ?? null }) });
        for await (const item of feed.follow({
          releaseId: q.release,
          afterSeq,
          since: q.since ? new Date(q.since) : undefined,
          all: q.from === 'all',
          signal: aborted.signal,
        })) {
          await stream.writeSSE({
            id: String(item.seq),
            event: item.notification.type,
            data: JSON.stringify(item.notification),
          });
        }
        // a comment every client ignores; clients reconnect with Last-Event-ID to another gateway
        if (feed.closed) await stream.write(': the coordinator is stopping\n\n');
      } finally {
        clearInterval(keepalive);
      }
    });
  });
}
