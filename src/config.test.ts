import { describe, expect, test } from 'bun:test';
import { ConfigError, isLoopbackHost, loadConfig, MIN_ACK_WAIT_MS } from './config';
import { redactServers, serverList } from './infra/bus/connection';
import { deriveTiming } from './timing';

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
      ['COMMAND_ACK_WAIT_MS', '1000'],
      ['COORDINATOR_ACK_WAIT_MS', '900'],
      ['OAUTH_OUTAGE_TOLERANCE_MS', '-1'],
    ] as const) {
      const err = configError({ [name]: value });
      expect(err.message).not.toContain('\n');
      expect(err.message).toContain(name);
    }
  });
});

describe('ack waits (docs/configuration.md, Tuning)', () => {
  test('below the documented minimum: refused, naming the variable and the minimum', () => {
    for (const name of ['COMMAND_ACK_WAIT_MS', 'COORDINATOR_ACK_WAIT_MS']) {
      for (const value of ['1', '999', '1000', String(MIN_ACK_WAIT_MS - 1)]) {
        const err = configError({ [name]: value });
        expect(err.message).not.toContain('\n');
        expect(err.message).toContain(name);
        expect(err.message).toContain(`at least ${MIN_ACK_WAIT_MS} ms`);
      }
      expect(loadConfig({ [name]: String(MIN_ACK_WAIT_MS) })[name as 'COMMAND_ACK_WAIT_MS']).toBe(
        MIN_ACK_WAIT_MS,
      );
    }
  });

  test('the minimum keeps every pull request NATS is sent at 1 s or more', () => {
    const t = deriveTiming(
      loadConfig({
        COMMAND_ACK_WAIT_MS: String(MIN_ACK_WAIT_MS),
        COORDINATOR_ACK_WAIT_MS: String(MIN_ACK_WAIT_MS),
      }),
    );
    // the worker's pull requests live 3 heartbeats (capped at 5 s), the coordinator's min(5 s, ack wait)
    expect(Math.min(5_000, t.workerHeartbeatMs * 3)).toBeGreaterThanOrEqual(1_000);
    expect(t.coordinatorPullExpiresMs).toBeGreaterThanOrEqual(1_000);
    expect(t.workerHeartbeatMs * 3).toBeLessThanOrEqual(MIN_ACK_WAIT_MS);
  });
});

describe('parsing of each kind of value', () => {
  test('every kind of bad value names its variable in one line', () => {
    for (const [name, value] of [
      ['NODE_ENV', 'staging'],
      ['LOG_LEVEL', 'loud'],
      ['LOG_FORMAT', 'xml'],
      ['REQUEST_TIMEOUT_MS', '1.5'],
      ['START_TIMEOUT_MS', '0'],
      ['HEALTH_FAILURE_THRESHOLD', '0'],
      ['POLL_JITTER', '2'],
      ['SHUTDOWN_GRACE_MS', '-1'],
      ['WORKER_CONCURRENCY', '0'],
      ['MAX_BODY_BYTES', '10'],
      ['OUTBOUND_TOKEN_TTL_S', '5'],
      ['PUBLIC_READS', 'sometimes'],
      ['CORS_ORIGINS', 'ftp://ui.example.org'],
      ['OUTBOUND_TOKEN_CLAIMS', '[1, 2]'],
      ['OUTBOUND_TOKEN_CLAIMS', '{not json'],
      ['AUTH_JWKS_URL', 'jwks.json'],
      ['DATASERVICE_URL', 'dataservice'],
    ] as const) {
      const err = configError({ [name]: value });
      expect({ name, oneLine: !err.message.includes('\n') }).toEqual({ name, oneLine: true });
      expect(err.message).toStartWith(`invalid configuration: ${name}: `);
    }
  });

  test('the value is shown, except for variables that may carry credentials', () => {
    expect(configError({ PORT: 'abc' }).message).toContain('(got "abc")');
    const url = configError({ DATABASE_URL: 'mysql://rc:hunter2@db/rc' });
    expect(url.message).toContain('DATABASE_URL');
    expect(url.message).not.toContain('hunter2');
    expect(configError({ AUTH_JWKS_URL: 'secret-ish' }).message).not.toContain('secret-ish');
    expect(configError({ OUTBOUND_TOKEN_CLAIMS: '{"token":"s3cret"' }).message).not.toContain('s3cret');
  });

  test('booleans: true/1/yes and false/0/no', () => {
    for (const yes of ['true', '1', 'yes']) expect(loadConfig({ PUBLIC_READS: yes }).PUBLIC_READS).toBe(true);
    for (const no of ['false', '0', 'no']) expect(loadConfig({ PUBLIC_READS: no }).PUBLIC_READS).toBe(false);
    expect(loadConfig({}).AUTH_DISABLED).toBe(false);
    expect(loadConfig({}).PUBLIC_READS).toBe(true);
  });

  test('CORS_ORIGINS is a comma-separated list of origins without trailing slashes; none by default', () => {
    expect(loadConfig({}).CORS_ORIGINS).toEqual([]);
    expect(
      loadConfig({ CORS_ORIGINS: ' https://ui.example.org/ ,http://localhost:5173,, ' }).CORS_ORIGINS,
    ).toEqual(['https://ui.example.org', 'http://localhost:5173']);
  });

  test('OUTBOUND_TOKEN_CLAIMS is a JSON object; {} by default', () => {
    expect(loadConfig({}).OUTBOUND_TOKEN_CLAIMS).toEqual({});
    expect(
      loadConfig({ OUTBOUND_TOKEN_CLAIMS: '{"gty":"client-credentials"}' }).OUTBOUND_TOKEN_CLAIMS,
    ).toEqual({ gty: 'client-credentials' });
  });

  test('PUBLIC_URL: given (publicUrlGiven) or derived from PORT', () => {
    expect(loadConfig({ PORT: '4000' })).toMatchObject({
      PUBLIC_URL: 'http://localhost:4000',
      publicUrlGiven: false,
    });
    expect(loadConfig({ PUBLIC_URL: 'https://rc.example.org//' })).toMatchObject({
      PUBLIC_URL: 'https://rc.example.org',
      publicUrlGiven: true,
    });
  });

  test('variables it does not know are ignored (the environment holds much else)', () => {
    expect(loadConfig({ HOME: '/root', SOMETHING_ELSE: 'x' }).PORT).toBe(3000);
  });
});
