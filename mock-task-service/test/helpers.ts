import type { Server } from 'bun';

/** Polls `check` until it returns a truthy value or the deadline passes (then throws). */
export async function until<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<Exclude<T, null | undefined | false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, null | undefined | false>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface TaskReply {
  status: number;
  body: Record<string, unknown>;
}

/** POST {base}/tasks with a task action. */
export async function task(
  base: string,
  action: string,
  taskId: string,
  extra: Record<string, unknown> = {},
  init: RequestInit = {},
): Promise<TaskReply> {
  const res = await fetch(`${base}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
    body: JSON.stringify({ action, task_id: taskId, release_id: 'RE_TEST', ...extra }),
    signal: init.signal,
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

export interface Patch {
  taskId: string;
  body: unknown;
  authorization: string | null;
  at: number;
}

/** A tiny coordinator stand-in that records PATCH /tasks/{id}. */
export function startReceiver(
  answer: (p: Patch) => Response | Promise<Response> = () => new Response(null, { status: 204 }),
): {
  server: Server<undefined>;
  url: string;
  patches: Patch[];
} {
  const patches: Patch[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const url = new URL(req.url);
      const m = /^\/tasks\/([^/]+)$/.exec(url.pathname);
      if (req.method !== 'PATCH' || !m) return new Response('no', { status: 404 });
      const p: Patch = {
        taskId: decodeURIComponent(m[1]!),
        body: await req.json(),
        authorization: req.headers.get('authorization'),
        at: Date.now(),
      };
      patches.push(p);
      return answer(p);
    },
  });
  return { server, url: `http://127.0.0.1:${server.port}`, patches };
}
