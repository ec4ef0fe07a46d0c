import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Subprocess, spawn } from 'bun';
import { ARTIFACTS, freePort } from './processes';
import { until } from './until';

interface Node extends NatsNodePorts {
  proc?: Subprocess;
  /** the node's log of its latest start, under test/artifacts */
  log: string;
}

/** Where one nats-server listens and keeps its store, on loopback. */
export interface NatsNodePorts {
  name: string;
  port: number;
  routePort: number;
  monitorPort: number;
  store: string;
}

/**
 * The arguments of one JetStream nats-server on loopback; with `cluster`, a node of that cluster
 * with routes to every node (the tests' clusters and the benchmarks' servers start them alike).
 */
export function natsServerArgs(
  n: NatsNodePorts,
  cluster?: { name: string; nodes: readonly NatsNodePorts[] },
): string[] {
  const args = [
    ...['-js', '-n', n.name, '-a', '127.0.0.1'],
    ...['-p', String(n.port), '-m', String(n.monitorPort), '-sd', n.store],
  ];
  if (!cluster) return args;
  const routes = cluster.nodes.map((o) => `nats://127.0.0.1:${o.routePort}`).join(',');
  return [
    ...args,
    '--cluster_name',
    cluster.name,
    '--cluster',
    `nats://127.0.0.1:${n.routePort}`,
    '--routes',
    routes,
  ];
}

/**
 * A JetStream cluster of `nats-server` processes on loopback (Debian's 2.9 does this): each node
 * with a free client port, a free cluster-route port and a free monitoring port, its own store in
 * a temporary folder, the same `--cluster_name` and routes to every node. A node can be killed
 * with SIGKILL and started again on the same ports and store, as a crashed machine would come back.
 */
export class NatsCluster {
  private constructor(
    readonly clusterName: string,
    readonly nodes: Node[],
    private readonly root: string,
  ) {}

  static async start(label: string, size = 3): Promise<NatsCluster> {
    const root = mkdtempSync(join(tmpdir(), 'rc-nats-cluster-'));
    const nodes: Node[] = [];
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      nodes.push({
        name,
        port: await freePort(),
        routePort: await freePort(),
        monitorPort: await freePort(),
        store: join(root, name),
        log: join(ARTIFACTS, `${label}-nats-${name}.log`),
      });
    }
    const cluster = new NatsCluster(`rc-${label}-${crypto.randomUUID().slice(0, 8)}`, nodes, root);
    try {
      await Promise.all(nodes.map((_, i) => cluster.startNode(i)));
      await cluster.waitForMetaLeader();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** every node's client URL, comma-separated (what NATS_URL takes) */
  get url(): string {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(',');
  }

  indexOf(name: string): number {
    const i = this.nodes.findIndex((n) => n.name === name);
    if (i < 0) throw new Error(`no node named ${name}`);
    return i;
  }

  isRunning(i: number): boolean {
    return this.nodes[i]!.proc !== undefined;
  }

  async startNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    if (n.proc) return;
    n.proc = spawn(
      ['nats-server', ...natsServerArgs(n, { name: this.clusterName, nodes: this.nodes }), '-l', n.log],
      {
        stdout: 'ignore',
        stderr: 'ignore',
        env: { PATH: `${process.env.PATH}:/usr/sbin:/usr/local/sbin` },
      },
    );
    await until(async () => (await this.jsz(i)) !== undefined, {
      timeoutMs: 15_000,
      message: `nats-server ${n.name} to answer on its monitoring port (see ${n.log})`,
    });
  }

  /** kill -9: nothing flushed, as a crashed machine */
  async killNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    n.proc?.kill('SIGKILL');
    await n.proc?.exited;
    n.proc = undefined;
  }

  /** GET /jsz of one node (undefined when it does not answer within a second) */
  async jsz(i: number): Promise<{ meta_cluster?: { leader?: string; cluster_size?: number } } | undefined> {
    const n = this.nodes[i]!;
    try {
      const res = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz`, {
        signal: AbortSignal.timeout(1_000),
      });
      return res.ok ? ((await res.json()) as { meta_cluster?: { leader?: string } }) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Waits until every running node knows the JetStream meta leader (the cluster takes assets). */
  async waitForMetaLeader(timeoutMs = 30_000): Promise<string> {
    return until(
      async () => {
        const leaders = new Set<string>();
        for (let i = 0; i < this.nodes.length; i++) {
          if (!this.isRunning(i)) continue;
          const leader = (await this.jsz(i))?.meta_cluster?.leader;
          if (!leader) return undefined;
          leaders.add(leader);
        }
        return leaders.size === 1 ? [...leaders][0] : undefined;
      },
      { timeoutMs, message: 'the JetStream cluster to elect a meta leader' },
    );
  }

  /** A client connected to the running nodes. */
  connect(): Promise<NatsConnection> {
    const servers = this.nodes.filter((n) => n.proc).map((n) => `nats://127.0.0.1:${n.port}`);
    return connect({ servers, timeout: 5_000, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  }

  /** Where a stream stands: its leader and, per other peer, whether it is current. */
  static async placement(
    nc: NatsConnection,
    stream: string,
  ): Promise<{ leader?: string; replicas: Array<{ name: string; current: boolean; offline?: boolean }> }> {
    const jsm = await jetstreamManager(nc, { timeout: 3_000 });
    const info = await jsm.streams.info(stream);
    return { leader: info.cluster?.leader, replicas: info.cluster?.replicas ?? [] };
  }

  /** Stops every node and deletes every store. */
  async close(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.killNode(i);
    rmSync(this.root, { recursive: true, force: true });
  }
}
