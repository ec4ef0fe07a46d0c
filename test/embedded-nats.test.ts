import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectBus, NatsUnavailable } from '../src/infra/bus/connection';
import { createLogger } from '../src/infra/logger';
import { until } from './support/until';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('embedded NATS default', () => {
  test('NATS_URL unset and nothing answering: starts nats-server -js as a child and stops it on close', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rc-nats-'));
    dirs.push(dataDir);
    const port = await freePort();
    const log = await createLogger({ level: 'silent', format: 'json', production: false });
    const bus = await connectBus({ dataDir, log, name: 'test', defaultUrl: `nats://127.0.0.1:${port}` });
    expect(bus.embedded).toBeDefined();
    expect(bus.nc.getServer()).toContain(String(port));
    const rtt = await bus.nc.rtt();
    expect(rtt).toBeGreaterThanOrEqual(0);
    const child = bus.embedded!;
    await bus.close();
    expect(child.exitCode !== null || child.signalCode !== null).toBe(true);
  });

  test('no nats-server on PATH: one clear line on how to get it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rc-nats-'));
    dirs.push(dataDir);
    const port = await freePort();
    const log = await createLogger({ level: 'silent', format: 'json', production: false });
    const attempt = connectBus({
      dataDir,
      log,
      name: 'test',
      defaultUrl: `nats://127.0.0.1:${port}`,
      searchPath: '/nonexistent',
    });
    await expect(attempt).rejects.toBeInstanceOf(NatsUnavailable);
    await expect(attempt).rejects.toThrow(/apt-get install nats-server.*brew install nats-server.*NATS_URL/);
  });

  test('the embedded nats-server never outlives its parent, even after kill -9', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rc-nats-'));
    dirs.push(dataDir);
    const port = await freePort();
    const parent = Bun.spawn(
      [process.execPath, join(import.meta.dir, 'support', 'embedded-nats-parent.ts'), String(port), dataDir],
      { stdout: 'pipe', stderr: 'inherit' },
    );
    const reader = parent.stdout.getReader();
    let said = '';
    const ready = await until(
      async () => {
        const { value } = await reader.read();
        said += new TextDecoder().decode(value ?? new Uint8Array());
        return /ready (\d+)/.exec(said);
      },
      { timeoutMs: 20_000, message: 'the parent to start its embedded nats-server' },
    );
    const supervisor = Number(ready[1]);
    expect(await answers(port)).toBe(true);
    parent.kill('SIGKILL');
    await parent.exited;
    try {
      await until(async () => !(await answers(port)), {
        timeoutMs: 10_000,
        message: `port ${port} to be free once the parent is gone`,
      });
    } finally {
      // whatever happened, leave no server behind
      for (const pid of [-supervisor, supervisor]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }, 40_000);

  test('an explicit NATS_URL that does not answer is an error, never a silent fallback', async () => {
    const port = await freePort();
    const log = await createLogger({ level: 'silent', format: 'json', production: false });
    await expect(
      connectBus({ url: `nats://127.0.0.1:${port}`, dataDir: '/tmp', log, name: 'test' }),
    ).rejects.toThrow(/Cannot connect to NATS at .* \(NATS_URL\)/);
  });
});

/** Whether something accepts TCP connections on 127.0.0.1:port. */
async function answers(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}
