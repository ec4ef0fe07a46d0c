/**
 * nats-server processes of a benchmark's own: one server, or a JetStream cluster of three on
 * loopback, each with its store in a fresh folder under WORK_DIR. `syncEveryWrite` marks the store
 * folders with the ext4 attribute `S` (chattr +S, inherited by every file created in them), so the
 * kernel writes every block file synchronously: each message JetStream stores is on disk before
 * the write returns. nats-server 2.10+ has `jetstream { sync_interval: always }` for that (an fsync
 * after each message); Debian's 2.9 has no such setting, so the attribute stands in for it here.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Subprocess, spawn, spawnSync } from 'bun';
import { natsServerArgs } from '../../test/support/nats-cluster';
import { freePort, until, WORK_DIR } from './infra';

export interface NatsServers {
  url: string;
  nodes: number;
  close(): Promise<void>;
}

/** Marks a folder so that every file created in it is written synchronously; false where unsupported. */
export function syncEveryWrite(dir: string): boolean {
  const r = spawnSync(['chattr', '+S', dir], { stdout: 'ignore', stderr: 'ignore' });
  return r.exitCode === 0;
}

export async function startNats(opts: { nodes: 1 | 3; syncEveryWrite: boolean }): Promise<NatsServers> {
  const root = join(WORK_DIR, `nats-${crypto.randomUUID().slice(0, 8)}`);
  mkdirSync(root, { recursive: true });
  const nodes = await Promise.all(
    Array.from({ length: opts.nodes }, async (_, i) => ({
      name: `n${i + 1}`,
      port: await freePort(),
      routePort: await freePort(),
      monitorPort: await freePort(),
      store: join(root, `n${i + 1}`),
    })),
  );
  const procs: Subprocess[] = [];
  const close = async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const n of nodes) {
      mkdirSync(n.store, { recursive: true });
      if (opts.syncEveryWrite && !syncEveryWrite(n.store))
        throw new Error(`chattr +S failed on ${n.store} (needs ext4 or a similar file system)`);
      const cluster = opts.nodes > 1 ? { name: `bench-${root.slice(-8)}`, nodes } : undefined;
      const args = natsServerArgs(n, cluster);
      procs.push(
        spawn(['nats-server', ...args], {
          stdout: 'ignore',
          stderr: 'ignore',
          env: { PATH: `${process.env.PATH}:/usr/sbin:/usr/local/sbin` },
        }),
      );
    }
    // every node knows the JetStream meta leader (a single server is its own)
    await until(
      async () => {
        for (const n of nodes) {
          const jsz = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz`)
            .then((r) => r.json() as Promise<{ meta_cluster?: { leader?: string } }>)
            .catch(() => undefined);
          if (!jsz || (opts.nodes > 1 && !jsz.meta_cluster?.leader)) return false;
        }
        return true;
      },
      'nats-server to be ready',
      30_000,
      100,
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { url: nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(','), nodes: opts.nodes, close };
}
