import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { Cluster, collectOutput, freePort } from './support/processes';
import { until } from './support/until';

// `bun src/main.ts` as a person starts it: what it says when it cannot start, where it listens
// without an identity provider, and how it stops while event streams are open.

const ROOT = join(import.meta.dir, '..');
let cluster: Cluster;
beforeAll(async () => {
  cluster = await Cluster.create('main_start');
});
afterAll(async () => {
  await cluster?.stop();
});

function startMain(env: Record<string, string | undefined>, script = 'src/main.ts') {
  // a variable given as undefined is removed (not set, as when a person does not set it)
  const merged = Object.entries({ ...cluster.env, NODE_ENV: 'development', ...env }).filter(
    (kv): kv is [string, string] => kv[1] !== undefined,
  );
  const proc = Bun.spawn([process.execPath, script], {
    cwd: ROOT,
    env: Object.fromEntries(merged),
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const { out, ended } = collectOutput(proc);
  return {
    proc,
    out,
    async exited() {
      const code = await proc.exited;
      await ended;
      return code;
    },
  };
}

describe('start-up', () => {
  for (const [command, script] of [
    ['npm start', 'src/main.ts'],
    ['npm run demo', 'examples/demo.ts'],
  ] as const) {
    test(`${command} with its port in use: one paragraph naming the port and PORT, no stack trace, exit 1`, async () => {
      const port = await freePort();
      const holder = Bun.serve({ hostname: '127.0.0.1', port, fetch: () => new Response('taken') });
      try {
        const main = startMain({ PORT: String(port), PUBLIC_URL: undefined, HOST: undefined }, script);
        const timer = setTimeout(() => main.proc.kill('SIGKILL'), 30_000);
        const code = await main.exited();
        clearTimeout(timer);
        expect(code).toBe(1);
        const lines = main.out.stderr.split('\n').filter((l) => l.trim() !== '');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(`Port ${port} on 127.0.0.1 is already in use`);
        expect(lines[0]).toContain(`PORT=${port + 100} ${command}`);
        expect(main.out.stderr + main.out.stdout).not.toMatch(/^\s+at /m);
      } finally {
        holder.stop(true);
      }
    }, 40_000);
  }

  test.each([
    ['PORT', 'abc'],
    ['COMMAND_ACK_WAIT_MS', '1000'],
  ])('a bad value (%s=%s): exit 2 and one stderr line naming the variable', async (name, value) => {
    const main = startMain({ [name]: value });
    const timer = setTimeout(() => main.proc.kill('SIGKILL'), 15_000);
    const code = await main.exited();
    clearTimeout(timer);
    expect(code).toBe(2);
    const lines = main.out.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
  });

  test('without an identity provider it listens on 127.0.0.1; SIGTERM ends open event streams at once and logs "stopped"', async () => {
    const port = await freePort();
    const main = startMain({ PORT: String(port), PUBLIC_URL: undefined, HOST: undefined, ROLE: 'gateway' });
    try {
      // the last start-up line: where a development token comes from, when no terminal shows one
      await until(() => main.out.stdout.includes('rc -- token --dev'), {
        timeoutMs: 30_000,
        message: `the coordinator to start (so far: ${JSON.stringify(main.out)})`,
      });
      const listening = main.out.stdout.split('\n').find((l) => l.includes('"gateway listening"'))!;
      expect(JSON.parse(listening).url).toBe(`http://127.0.0.1:${port}`);

      const stream = await fetch(`http://localhost:${port}/events/stream`);
      expect(stream.status).toBe(200);
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      let received = '';
      await until(
        async () => {
          received += (await reader.read()).value ?? '';
          return received.includes('event: ready');
        },
        { timeoutMs: 10_000, message: 'the ready event' },
      );
      main.proc.kill('SIGTERM');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        received += value;
      }
      // the server closed the stream itself (a stream cut at the end of the grace period has no goodbye)
      expect(received).toContain(': the coordinator is stopping');
      expect(await main.exited()).toBe(0);
      const stopped = main.out.stdout.split('\n').find((l) => l.includes('"msg":"stopped"'));
      expect(stopped).toBeDefined();
      expect(JSON.parse(stopped!)).toMatchObject({ signal: 'SIGTERM', ms: expect.any(Number) });
    } finally {
      main.proc.kill('SIGKILL');
    }
  }, 60_000);
});
