import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { spawn } from 'bun';
import { exportJWK, generateKeyPair } from 'jose';
import { deleteStreams } from '../src/infra/bus/streams';
import { busNames } from '../src/infra/bus/subjects';
import { createTestDatabase } from './support/database';
import { ARTIFACTS, freePort } from './support/processes';
import { testPrefix } from './support/run';
import { NATS_URL } from './support/system';
import { until } from './support/until';

// Docker cannot run here, so the deployment is checked piece by piece: fly.toml parses and is
// consistent, every process command and the release command exist and start with the same
// environment (production mode, secrets given), and the Dockerfile's production-only install is enough.

const ROOT = resolve(import.meta.dir, '..');
const BUN = join(ROOT, 'node_modules/.bin/bun');
const fly = Bun.TOML.parse(readFileSync(join(ROOT, 'fly.toml'), 'utf8')) as any;

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let jwks: ReturnType<typeof Bun.serve>;
const prefix = testPrefix('f');

beforeAll(async () => {
  db = await createTestDatabase('fly');
  const { publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwks = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => Response.json({ keys: [jwk] }) });
});
afterAll(async () => {
  await jwks?.stop(true);
  const nc = await connect({ servers: NATS_URL });
  await deleteStreams(nc, busNames(prefix));
  await nc.close();
  await db?.drop();
});

/** "env A=1 B=2 bun src/main.ts" → { env, argv } */
function parseCommand(command: string) {
  const words = command.trim().split(/\s+/);
  const env: Record<string, string> = {};
  if (words[0] === 'env') words.shift();
  while (words[0]?.includes('=')) {
    const [k, ...v] = words.shift()!.split('=');
    env[k!] = v.join('=');
  }
  return { env, argv: words };
}

function secrets(port: number) {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    ...(fly.env as Record<string, string>),
    // the secrets an operator sets with `fly secrets set`
    DATABASE_URL: db.url,
    NATS_URL,
    NATS_PREFIX: prefix,
    AUTH_JWKS_URL: `http://127.0.0.1:${jwks.port}/jwks.json`,
    PORT: String(port),
    HOST: '127.0.0.1',
    SHUTDOWN_GRACE_MS: '1000',
  };
}

describe('fly.toml', () => {
  test('is consistent: process groups, checks, release command, drain timing, VM sizes', () => {
    expect(Object.keys(fly.processes).sort()).toEqual(['app', 'coordinator']);
    expect(fly.http_service.internal_port).toBe(Number(fly.env.PORT));
    expect(fly.http_service.processes).toEqual(['app']);
    expect(fly.http_service.checks[0].path).toBe('/status');
    expect(fly.checks.coordinator_status.path).toBe('/status');
    expect(fly.kill_signal).toBe('SIGTERM');
    const killSeconds = Number(String(fly.kill_timeout).replace(/s$/, ''));
    expect(killSeconds * 1000).toBeGreaterThan(Number(fly.env.SHUTDOWN_GRACE_MS) + 5_000);
    const sized = (fly.vm as Array<{ processes: string[] }>).flatMap((v) => v.processes).sort();
    expect(sized).toEqual(['app', 'coordinator']);
    expect(fly.env.NODE_ENV).toBe('production');
    for (const command of [
      ...Object.values(fly.processes as Record<string, string>),
      fly.deploy.release_command,
    ]) {
      const { argv } = parseCommand(command);
      expect(argv[0]).toBe('bun');
      expect(existsSync(join(ROOT, argv[1]!))).toBe(true);
    }
  });

  test('the release command applies the migrations and exits 0', async () => {
    const { env, argv } = parseCommand(fly.deploy.release_command);
    const proc = spawn([BUN, ...argv.slice(1)], {
      cwd: ROOT,
      env: { ...secrets(await freePort()), ...env },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    expect(await proc.exited).toBe(0);
    expect(await new Response(proc.stdout).text()).toContain('migrations applied');
  }, 30_000);

  test.each(['app', 'coordinator'])(
    'process group "%s" starts in production mode, answers /status, stops on SIGTERM',
    async (group) => {
      const { env, argv } = parseCommand(fly.processes[group]);
      const port = await freePort();
      const proc = spawn([BUN, ...argv.slice(1)], {
        cwd: ROOT,
        env: { ...secrets(port), ...env },
        stdout: Bun.file(join(ARTIFACTS, `fly-${group}.log`)),
        stderr: Bun.file(join(ARTIFACTS, `fly-${group}.err`)),
      });
      try {
        const status = await until(
          async () => {
            const res = await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined);
            return res?.status === 200
              ? ((await res.json()) as { database: string; bus: string })
              : undefined;
          },
          { timeoutMs: 20_000, message: `${group} to answer /status (see test/artifacts/fly-${group}.*)` },
        );
        expect(status).toMatchObject({ database: 'ok', bus: 'ok' });
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        expect(metrics).toContain('rc_process_cpu_seconds_total');
        const log = readFileSync(join(ARTIFACTS, `fly-${group}.log`), 'utf8');
        // production logs are JSON lines
        expect(JSON.parse(log.trim().split('\n')[0]!).level).toBeNumber();
      } finally {
        proc.kill('SIGTERM');
      }
      expect(await proc.exited).toBe(0);
    },
    40_000,
  );
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  test('builds from the lock without dev dependencies, runs as a non-root user, copies what runs', () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^FROM oven\/bun:/m);
    expect(dockerfile).toMatch(/^USER bun$/m);
    for (const path of ['src', 'drizzle', 'package.json'])
      expect(dockerfile).toContain(`COPY --chown=bun:bun ${path}`);
  });

  test('production dependencies alone are enough to run the release command', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-prod-'));
    try {
      for (const p of ['package.json', 'package-lock.json', 'patches', 'src', 'drizzle'])
        cpSync(join(ROOT, p), join(dir, p), { recursive: true });
      const install = spawn(['npm', 'ci', '--omit=dev', '--no-audit', '--no-fund'], {
        cwd: dir,
        stdout: 'ignore',
        stderr: 'pipe',
      });
      expect(await install.exited).toBe(0);
      expect(existsSync(join(dir, 'node_modules/pino-pretty'))).toBe(false);
      // our one patch (patches/README.md: a crash fix in postgres.js) is applied by the production install too
      const installed = (path: string) => readFileSync(join(dir, 'node_modules', path), 'utf8');
      expect(installed('postgres/src/connection.js')).toContain('if (!socket)');
      const { argv } = parseCommand(fly.deploy.release_command);
      const run = spawn([BUN, ...argv.slice(1)], {
        cwd: dir,
        env: secrets(await freePort()),
        stdout: 'pipe',
        stderr: 'pipe',
      });
      expect(await run.exited).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
