import type { Socket, TCPSocketListener } from 'bun';

/**
 * What the proxy does with traffic:
 * - `pass`: forwards both ways.
 * - `blackhole`: accepts connections and holds every byte, both ways, without forwarding or
 *   closing anything, like a SIGSTOPped server or a network partition. What was held is delivered
 *   when the proxy passes again (as TCP retransmits after a partition heals), so a statement sent
 *   during the outage does reach the server afterwards unless its sender withdrew it.
 * - `refuse`: stops listening (new connections get ECONNREFUSED) and resets every open one, like
 *   a server that exited.
 */
export type ProxyMode = 'pass' | 'blackhole' | 'refuse';

interface Pair {
  client: Socket<Pair>;
  upstream?: Socket<Pair>;
  connecting?: boolean;
  /** bytes from the client not yet written upstream, and from upstream not yet written to the client */
  toUpstream: Uint8Array[];
  toClient: Uint8Array[];
  /** the server closed its side; the client learns it once the held bytes are delivered */
  upstreamClosed?: boolean;
  closed: boolean;
}

/**
 * A TCP proxy on a free loopback port in front of a real server (by default the machine's
 * Postgres), for tests that need a dependency to vanish without stopping the shared server.
 */
export class TcpProxy {
  private listener?: TCPSocketListener<Pair>;
  private readonly pairs = new Set<Pair>();
  private current: ProxyMode = 'pass';
  port = 0;

  private constructor(private readonly target: { hostname: string; port: number }) {}

  static async start(target = { hostname: '127.0.0.1', port: 5432 }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    proxy.listen();
    return proxy;
  }

  get mode(): ProxyMode {
    return this.current;
  }

  /** `url` with its host and port replaced by the proxy's */
  url(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** connections currently open through the proxy */
  get connections(): number {
    return this.pairs.size;
  }

  setMode(mode: ProxyMode) {
    const was = this.current;
    this.current = mode;
    if (mode === 'refuse') {
      this.listener?.stop(true);
      this.listener = undefined;
      for (const p of [...this.pairs]) this.close(p);
      return;
    }
    if (was === 'refuse') this.listen();
    if (mode === 'pass') for (const p of [...this.pairs]) this.resume(p);
  }

  close(pair?: Pair) {
    if (pair) {
      if (pair.closed) return;
      pair.closed = true;
      this.pairs.delete(pair);
      pair.client.terminate();
      pair.upstream?.terminate();
      return;
    }
    this.listener?.stop(true);
    this.listener = undefined;
    for (const p of [...this.pairs]) this.close(p);
  }

  private listen() {
    const proxy = this;
    this.listener = Bun.listen<Pair>({
      hostname: '127.0.0.1',
      port: this.port,
      socket: {
        open(client) {
          const pair: Pair = { client, toUpstream: [], toClient: [], closed: false };
          client.data = pair;
          proxy.pairs.add(pair);
          if (proxy.current === 'pass') proxy.resume(pair);
        },
        data(client, bytes) {
          client.data.toUpstream.push(new Uint8Array(bytes));
          proxy.flush(client.data);
        },
        drain(client) {
          proxy.flush(client.data);
        },
        close(client) {
          proxy.close(client.data);
        },
        error(client) {
          proxy.close(client.data);
        },
      },
    });
    this.port = this.listener.port;
  }

  /** connects upstream if not yet connected, and writes what is held */
  private resume(pair: Pair) {
    if (pair.closed) return;
    if (pair.upstream || pair.connecting) return this.flush(pair);
    pair.connecting = true;
    const proxy = this;
    Bun.connect<Pair>({
      ...this.target,
      data: pair,
      socket: {
        data(_upstream, bytes) {
          pair.toClient.push(new Uint8Array(bytes));
          proxy.flush(pair);
        },
        drain() {
          proxy.flush(pair);
        },
        close() {
          pair.upstreamClosed = true;
          proxy.flush(pair);
        },
        error() {
          proxy.close(pair);
        },
      },
    }).then(
      (upstream) => {
        pair.connecting = false;
        if (pair.closed) return upstream.terminate();
        pair.upstream = upstream;
        this.flush(pair);
      },
      () => this.close(pair),
    );
  }

  /** writes what is held, in order, as far as the sockets take it (only while passing) */
  private flush(pair: Pair) {
    if (this.current !== 'pass' || pair.closed) return;
    if (pair.upstream && !pair.upstreamClosed) drainTo(pair.upstream, pair.toUpstream);
    if (drainTo(pair.client, pair.toClient) && pair.upstreamClosed) this.close(pair);
  }
}

/** true when everything was written */
function drainTo(socket: Socket<Pair>, queue: Uint8Array[]): boolean {
  while (queue.length > 0) {
    const chunk = queue[0]!;
    const written = socket.write(chunk);
    if (written < chunk.length) {
      queue[0] = chunk.subarray(Math.max(0, written));
      return false;
    }
    queue.shift();
  }
  return true;
}
