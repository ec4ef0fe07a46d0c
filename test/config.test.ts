import { describe, expect, test } from 'bun:test';
import { resolve } from 'node:path';
import { ConfigError, isLoopbackHost, loadConfig } from '../src/config';
import { redactServers, serverList } from '../src/infra/bus/connection';

const ROOT = resolve(import.meta.dir, '..');

/** Runs loadConfig and returns the ConfigError it throws (fails the test when it does not throw). */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('where the gateway listens', () => {
  test('without an identity provider: this machine only (127.0.0.1), unless HOST says otherwise', () => {
    expect(loadConfig({}).HOST).toBe('127.0.0.1');
    expect(loadConfig({ AUTH_DISABLED: 'true' }).HOST).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).HOST).toBe('0.0.0.0');
    expect(loadConfig({ AUTH_JWKS_URL: 'https://idp.example.org/jwks.json' }).HOST).toBe('0.0.0.0');
    expect(loadConfig({ AUTH_JWKS_URL: 'https://idp.example.org/jwks.json', HOST: '::1' }).HOST).toBe('::1');
  });

  test('loopback hosts and addresses', () => {
    for (const host of [
      'localhost',
      'LOCALHOST',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      '::ffff:127.0.0.1',
    ])
      expect({ host, loopback: isLoopbackHost(host) }).toEqual({ host, loopback: true });
    for (const host of ['0.0.0.0', '::', '192.0.2.1', 'localhost.example.org', '128.0.0.1', 'fd00::2', ''])
      expect({ host, loopback: isLoopbackHost(host) }).toEqual({ host, loopback: false });
  });
});

describe('loadConfig (no I/O)', () => {
  test('an empty environment gives the documented defaults', () => {
    const c = loadConfig({});
    expect(c.PORT).toBe(3000);
    expect(c.PUBLIC_URL).toBe('http://localhost:3000');
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.NATS_URL ?? 'nats://127.0.0.1:4222').toBe('nats://127.0.0.1:4222');
    expect(c.NATS_PREFIX).toBe('rc');
    expect(c.ROLE).toBe('all');
    expect(c.POLL_INTERVAL_MS).toBe(30_000);
    expect(c.HEALTH_INTERVAL_MS).toBe(30_000);
    expect(c.HEALTH_FAILURE_THRESHOLD).toBe(3);
    expect(c.REQUEST_TIMEOUT_MS).toBe(15_000);
    expect(c.TASK_TIMEOUT_MS).toBe(160_000_000);
    expect(c.RELEASE_TIMEOUT_MS).toBe(360_000_000);
    expect(c.ALLOW_PRIVATE_SERVICE_URLS).toBe(false);
    expect(c.NATS_REPLICAS).toBe(1);
  });

  test('NATS_URL takes a list of servers; NATS_REPLICAS is a whole number from 1 to 5', () => {
    const c = loadConfig({
      NATS_URL: 'nats://n1:4222, nats://n2:4222,nats://n3:4222',
      NATS_REPLICAS: '3',
    });
    expect(serverList(c.NATS_URL!)).toEqual(['nats://n1:4222', 'nats://n2:4222', 'nats://n3:4222']);
    expect(c.NATS_REPLICAS).toBe(3);
    for (const bad of ['0', '6', '2.5', 'three', '-1']) {
      const err = configError({ NATS_REPLICAS: bad });
      expect(err.message).toStartWith('invalid configuration: NATS_REPLICAS: ');
      expect(err.message).toContain('from 1 to 5');
    }
    expect(configError({ NATS_URL: 'nats://n1:4222,,nats://n2:4222' }).message).toContain('NATS_URL');
  });

  test('server lists are logged without credentials', () => {
    expect(redactServers('nats://user:secret@n1:4222,tls://tok@n2:4222,n3:4222')).toBe(
      'nats://***@n1:4222,tls://***@n2:4222,n3:4222',
    );
  });

  test('values are read and converted; PUBLIC_URL follows PORT and loses a trailing slash', () => {
    const c = loadConfig({
      PORT: '8080',
      ROLE: 'worker',
      NATS_PREFIX: 'rc_2',
      DATABASE_URL: 'postgresql://u@db:5432/rc',
      ALLOW_PRIVATE_SERVICE_URLS: 'true',
      POLL_INTERVAL_MS: '250',
    });
    expect(c.PORT).toBe(8080);
    expect(c.PUBLIC_URL).toBe('http://localhost:8080');
    expect(c.ROLE).toBe('worker');
    expect(c.NATS_PREFIX).toBe('rc_2');
    expect(c.DATABASE_URL).toBe('postgresql://u@db:5432/rc');
    expect(c.ALLOW_PRIVATE_SERVICE_URLS).toBe(true);
    expect(c.POLL_INTERVAL_MS).toBe(250);
    expect(loadConfig({ PUBLIC_URL: 'https://rc.example.org/' }).PUBLIC_URL).toBe('https://rc.example.org');
    // an empty value counts as unset
    expect(loadConfig({ PORT: '' }).PORT).toBe(3000);
  });

  test('a bad value throws ConfigError with one line naming the variable', () => {
    for (const [name, value] of [
      ['PORT', 'abc'],
      ['PORT', '70000'],
      ['ROLE', 'boss'],
      ['DATABASE_URL', 'mysql://x'],
      ['NATS_PREFIX', 'a.b'],
      ['POLL_INTERVAL_MS', '-5'],
      ['ALLOW_PRIVATE_SERVICE_URLS', 'maybe'],
      ['PUBLIC_URL', 'not a url'],
    ] as const) {
      const err = configError({ [name]: value });
      expect(err.message).not.toContain('\n');
      expect(err.message).toContain(name);
    }
  });
});

describe('src/main.ts with a bad environment', () => {
  test('PORT=abc exits with code 2 and one stderr line naming PORT', async () => {
    const proc = Bun.spawn([resolve(ROOT, 'node_modules/.bin/bun'), 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PORT: 'abc' },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const timer = setTimeout(() => proc.kill(), 15_000);
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    clearTimeout(timer);
    expect(code).toBe(2);
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('PORT');
  });
});
