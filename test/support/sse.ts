/** A minimal Server-Sent Events reader for tests: fetch + text/event-stream parsing. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

export function readSse(url: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = [];
  const controller = new AbortController();
  const done = (async () => {
    const res = await fetch(url, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(`SSE ${url} answered ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const e: SseEvent = { data: '' };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'id') e.id = val;
          else if (field === 'event') e.event = val;
          else if (field === 'data') data.push(val);
        }
        e.data = data.join('\n');
        if (e.event || e.data) events.push(e);
        end = buffer.indexOf('\n\n');
      }
    }
  })().catch((err) => {
    if ((err as Error).name !== 'AbortError') throw err;
  });
  return { events, close: () => controller.abort(), done };
}
