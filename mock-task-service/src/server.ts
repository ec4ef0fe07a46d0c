/**
 * The mock's HTTP server: one Bun.serve for every service (root at `/`, named ones at
 * `/s/<name>/`, the control API at `/_control`), and restarts of the whole process (the socket
 * closes, then listens again on the same port).
 */
import type { Server } from 'bun';
import { droppedResponse, handleStatus, handleTasks, json } from './requests.ts';
import { interrupt, type MockState, type Restarting, type Service } from './state.ts';

/** How long a restart keeps trying to bind its port again (someone else may hold it briefly). */
const RELISTEN_RETRY_MS = 5_000;

/** Answers /_control<sub>. */
export type ControlHandler = (req: Request, sub: string) => Promise<Response>;

/** The path of a URL, without the query. */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const q = url.indexOf('?', start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

export class MockServer {
  private server: Server<undefined>;
  readonly port: number;
  /** Base URL of the root service, e.g. http://127.0.0.1:41234 */
  readonly url: string;

  constructor(
    private readonly state: MockState,
    private readonly hostname: string,
    port: number,
    private readonly control: ControlHandler,
  ) {
    this.server = this.listen(port);
    this.port = this.server.port as number;
    const name = this.server.hostname;
    const host = name === '0.0.0.0' || name === '::' ? '127.0.0.1' : name;
    this.url = `http://${host?.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  private listen(port: number): Server<undefined> {
    return Bun.serve({
      port,
      hostname: this.hostname,
      idleTimeout: 0, // hung and slow replies stay open until the client gives up
      development: false,
      fetch: (req) => this.route(req),
      error(e) {
        return json({ message: `mock-task-service error: ${e.message}` }, 500);
      },
    });
  }

  private async route(req: Request): Promise<Response> {
    if (this.state.restarting) return droppedResponse(); // arrived in the turn between restart() and the close
    const path = pathOf(req.url);
    if (path.startsWith('/_control')) return this.control(req, path.slice('/_control'.length));
    const { svc, rest } = this.serviceOf(path);
    if (!svc) return json({ message: 'unknown service' }, 404);
    if (rest === '/tasks') {
      if (req.method === 'POST') return handleTasks(this.state, req, svc);
    } else if (rest === '/status') {
      if (req.method === 'GET') return handleStatus(this.state, req, svc);
    } else {
      return json({ message: `not found: ${path}` }, 404);
    }
    return json({ message: `method ${req.method} not allowed on ${path}` }, 405);
  }

  /** The service a path is for (root, or /s/<name>/...) and the rest of the path. */
  private serviceOf(path: string): { svc: Service | undefined; rest: string } {
    if (!path.startsWith('/s/')) return { svc: this.state.root, rest: path };
    const slash = path.indexOf('/', 3);
    const raw = slash < 0 ? path.slice(3) : path.slice(3, slash);
    return {
      svc: this.state.services.get(raw.includes('%') ? decodeURIComponent(raw) : raw),
      rest: slash < 0 ? '' : path.slice(slash),
    };
  }

  /**
   * Closes the socket and every connection, listens again on the same port after `ms`. Restarting
   * while down moves the end of the window to `ms` from now.
   */
  restart(ms: number): Promise<void> {
    const { state } = this;
    const until = Date.now() + ms;
    if (state.restarting) {
      const d = state.restarting;
      d.until = until;
      if (d.closed) {
        state.cancelLater(d.timer);
        this.armRelisten(d);
      }
      return d.done;
    }
    let resolve = () => {};
    let reject: (e: Error) => void = () => {};
    const done = new Promise<void>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    const d: Restarting = { until, closed: false, resolve, reject, done };
    state.restarting = d;
    for (const s of state.services.values()) interrupt(s);
    // One turn later, so that the answer to the request asking for the restart (control API) is sent.
    d.timer = state.later(0, () => {
      void this.server.stop(true).then(() => {
        if (state.restarting !== d) return; // stopped meanwhile
        d.closed = true;
        this.armRelisten(d);
      });
    });
    return done;
  }

  private armRelisten(d: Restarting): void {
    d.timer = this.state.later(d.until - Date.now(), () => this.relisten(d));
  }

  private relisten(d: Restarting): void {
    if (this.state.restarting !== d) return;
    try {
      this.server = this.listen(this.port);
    } catch (e) {
      if (Date.now() - d.until < RELISTEN_RETRY_MS) {
        d.timer = this.state.later(50, () => this.relisten(d));
        return;
      }
      this.state.restarting = null;
      d.reject(new Error(`cannot listen again on port ${this.port}: ${(e as Error).message}`));
      return;
    }
    this.state.restarting = null;
    d.resolve();
  }

  /** Ends a restart in progress (its promise resolves) and closes the socket and every connection. */
  async stop(): Promise<void> {
    const wasRestarting = this.state.restarting;
    this.state.restarting = null;
    wasRestarting?.resolve();
    await this.server.stop(true);
  }
}
