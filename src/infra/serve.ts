import type { Duplex } from 'node:stream';

export interface RunningServer {
  port: number;
  url: string;
  /** stop accepting connections, let requests in flight finish (up to graceMs), then close the rest */
  stop(graceMs?: number): Promise<void>;
}

declare const Deno:
  | {
      serve(
        opts: { port: number; hostname: string; onListen?: (a: { port: number }) => void },
        handler: (r: Request) => Response | Promise<Response>,
      ): { shutdown(): Promise<void>; addr: { port: number } };
    }
  | undefined;

/** Serves a Hono app with the runtime's own server: Bun.serve, Deno.serve, or @hono/node-server. */
/** Anything with a fetch handler (a Hono app). */
export interface FetchApp {
  fetch: (request: Request) => Response | Promise<Response>;
}

export async function serve(app: FetchApp, opts: { port: number; hostname: string }): Promise<RunningServer> {
  const host = opts.hostname === '0.0.0.0' ? '127.0.0.1' : opts.hostname;
  if (typeof Bun !== 'undefined') {
    const server = Bun.serve({
      port: opts.port,
      hostname: opts.hostname,
      fetch: app.fetch,
      idleTimeout: 60,
      // the app's body limit answers 413 with a JSON message; Bun's own (128 MiB) would answer first with an empty body
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      error: () => Response.json({ detail: 'Internal server error.' }, { status: 500 }),
    });
    const port = server.port ?? opts.port;
    return {
      port,
      url: `http://${host}:${port}`,
      async stop(graceMs = 5_000) {
        await Promise.race([server.stop(false), new Promise((r) => setTimeout(r, graceMs))]);
        await server.stop(true);
      },
    };
  }
  if (typeof Deno !== 'undefined') {
    const server = Deno.serve({ port: opts.port, hostname: opts.hostname }, app.fetch);
    const port = server.addr.port;
    return { port, url: `http://${host}:${port}`, stop: () => server.shutdown() };
  }
  const { serve: nodeServe } = await import('@hono/node-server');
  return new Promise((resolve) => {
    const server = nodeServe({ fetch: app.fetch, port: opts.port, hostname: opts.hostname }, (info) => {
      resolve({
        port: info.port,
        url: `http://${host}:${info.port}`,
        stop: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
    server.on('clientError', answerParserError);
  });
}

/**
 * Node's parser refuses a request before the app sees it (headers over --max-http-header-size,
 * malformed syntax) and would answer with an empty body: answer in JSON as the app does.
 */
function answerParserError(err: Error & { code?: string }, socket: Duplex) {
  if (!socket.writable) return socket.destroy();
  const [status, reason, detail] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'The request line and headers are too large.']
      : [400, 'Bad Request', 'The request is not valid HTTP.'];
  const body = JSON.stringify({ detail });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
