import { describe, expect, test } from 'bun:test';
import { ConfigError, loadConfig } from './config';
import { AuthConfigError } from './infra/auth';
import { NatsUnavailable } from './infra/bus/connection';
import { explainStartFailure, exposureWarning } from './startup';

const config = loadConfig({});
const withPostgres = loadConfig({ DATABASE_URL: 'postgres://user:secret@db.example.org:6543/rc' });
const error = (message: string, fields: Record<string, unknown>) => Object.assign(new Error(message), fields);

describe('explainStartFailure', () => {
  test('a port in use: which port, and how to choose another', () => {
    for (const err of [
      error('Failed to start server. Is port 3000 in use?', { code: 'EADDRINUSE', syscall: 'listen' }),
      error('listen EADDRINUSE: address already in use 127.0.0.1:3000', { code: 'EADDRINUSE' }),
    ]) {
      const f = explainStartFailure(err, config);
      expect(f.exitCode).toBe(1);
      expect(f.message).toContain('Port 3000 on 127.0.0.1 is already in use');
      expect(f.message).toContain('PORT=3100 npm start');
    }
    expect(
      explainStartFailure(error('in use', { code: 'EADDRINUSE' }), config, 'npm run demo').message,
    ).toContain('PORT=3100 npm run demo');
  });

  test('configuration problems keep their own line and exit 2; NATS problems their paragraph', () => {
    expect(explainStartFailure(new ConfigError('invalid configuration: PORT: too big'), config)).toEqual({
      message: 'invalid configuration: PORT: too big',
      exitCode: 2,
    });
    expect(
      explainStartFailure(new AuthConfigError('AUTH_JWKS_URL: required in production'), config).exitCode,
    ).toBe(2);
    expect(explainStartFailure(new NatsUnavailable('install nats-server'), config)).toEqual({
      message: 'install nats-server',
      exitCode: 1,
    });
  });

  test('an unusable DATABASE_URL names where it points, never the password', () => {
    for (const code of ['ECONNREFUSED', '3D000', '28P01']) {
      const f = explainStartFailure(error('connect ECONNREFUSED', { code }), withPostgres);
      expect(f.message).toContain('db.example.org:6543/rc (DATABASE_URL)');
      expect(f.message).toContain('without DATABASE_URL');
      expect(f.message).not.toContain('secret');
    }
  });

  test('anything else: the message, never a stack trace', () => {
    const err = new TypeError('something odd');
    const f = explainStartFailure(err, config);
    expect(f).toEqual({
      message: 'The coordinator could not start: something odd (LOG_LEVEL=debug logs the details).',
      exitCode: 1,
    });
    expect(f.message).not.toContain(' at ');
  });
});

describe('exposureWarning', () => {
  test('loud when other machines reach a gateway that no identity provider guards', () => {
    expect(exposureWarning('0.0.0.0', 'local')).toStartWith(
      'LISTENING ON 0.0.0.0 WITHOUT AN IDENTITY PROVIDER',
    );
    expect(exposureWarning('192.0.2.1', 'disabled')).toStartWith('LISTENING ON 192.0.2.1 WITH AUTH DISABLED');
    expect(exposureWarning('::', 'local')).toContain('Unset HOST');
    for (const host of ['127.0.0.1', 'localhost', '::1'])
      expect(exposureWarning(host, 'local')).toBeUndefined();
    expect(exposureWarning('0.0.0.0', 'jwks')).toBeUndefined();
  });
});
