/**
 * A stand-in for the Kids First data service: GET /studies pages with `limit`/`after` and
 * `_links.next`, like the real one. The studies can be changed between syncs.
 */
export function startFakeDataservice(
  initial: Array<{ kf_id: string; name: string; visible?: boolean }>,
  pageCap = 10,
) {
  let studies = [...initial];
  const requests: string[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(req) {
      const url = new URL(req.url);
      requests.push(url.pathname + url.search);
      if (url.pathname !== '/studies') return Response.json({ _status: { code: 404 } }, { status: 404 });
      // like the real service, the server caps the page size whatever the client asks
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 10), pageCap);
      const after = url.searchParams.get('after');
      const sorted = [...studies].sort((a, b) => a.kf_id.localeCompare(b.kf_id));
      const start = after ? sorted.findIndex((s) => s.kf_id > after) : 0;
      const page = start < 0 ? [] : sorted.slice(start, start + limit);
      const last = page.at(-1);
      const more = last !== undefined && sorted.indexOf(last) < sorted.length - 1;
      return Response.json({
        _status: { code: 200, message: 'success' },
        _links: {
          self: url.pathname + url.search,
          ...(more ? { next: `/studies?after=${last!.kf_id}&limit=${limit}` } : {}),
        },
        results: page.map((s) => ({ ...s, short_name: s.name, visible: s.visible ?? true, _links: {} })),
        limit,
        total: sorted.length,
      });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    set(next: typeof studies) {
      studies = [...next];
    },
    stop: () => server.stop(true),
  };
}
