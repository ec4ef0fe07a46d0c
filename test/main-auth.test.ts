import { describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../src/config';
import { AuthConfigError, authConfigProblem, createAuth } from '../src/infra/auth';
import { createLogger } from '../src/infra/logger';

const ROOT = resolve(import.meta.dir, '..');

async function runMain(env: Record<string, string>, script = 'src/main.ts') {
  const proc = Bun.spawn([resolve(ROOT, 'node_modules/.bin/bun'), script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const timer = setTimeout(() => proc.kill(), 15_000);
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  clearTimeout(timer);
  return { code, lines: stderr.split('\n').filter((l) => l.trim() !== '') };
}

describe('production needs an identity provider', () => {
  for (const script of ['src/main.ts', 'examples/demo.ts']) {
    test(`${script}: NODE_ENV=production without AUTH_JWKS_URL exits 2 with one line, before touching anything`, async () => {
      const dataDir = join(tmpdir(), `rc-never-created-${crypto.randomUUID()}`);
      const { code, lines } = await runMain({ NODE_ENV: 'production', DATA_DIR: dataDir }, script);
      expect(existsSync(dataDir)).toBe(false);
      expect(code).toBe(2);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('AUTH_JWKS_URL');
      expect(lines[0]).toContain('AUTH_DISABLED=true');
    });
  }

  test('the rule, without a process', async () => {
    expect(authConfigProblem(loadConfig({ NODE_ENV: 'production' }))).toContain('AUTH_JWKS_URL');
    expect(
      authConfigProblem(loadConfig({ NODE_ENV: 'production', AUTH_JWKS_URL: 'https://idp.test/jwks.json' })),
    ).toBeUndefined();
    expect(authConfigProblem(loadConfig({ NODE_ENV: 'production', AUTH_DISABLED: 'true' }))).toBeUndefined();
    expect(authConfigProblem(loadConfig({ NODE_ENV: 'development' }))).toBeUndefined();
  });

  test('createAuth refuses too, and AUTH_DISABLED=true warns loudly', async () => {
    const warnings: string[] = [];
    const log = await createLogger({ level: 'silent', format: 'json', production: false });
    const spy = Object.assign(Object.create(log), { warn: (m: string) => warnings.push(m) });
    const signingKey = JSON.stringify({
      kty: 'EC',
      crv: 'P-256',
      x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
      y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
      d: 'jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI',
    });
    const db = {} as never; // never used when SIGNING_KEY is given
    await expect(
      createAuth(loadConfig({ NODE_ENV: 'production', SIGNING_KEY: signingKey }), db, spy),
    ).rejects.toThrow(AuthConfigError);
    const auth = await createAuth(
      loadConfig({ NODE_ENV: 'production', AUTH_DISABLED: 'true', SIGNING_KEY: signingKey }),
      db,
      spy,
    );
    expect(auth.mode).toBe('disabled');
    expect(auth.verify).toBeUndefined();
    expect(warnings.join(' ')).toContain('AUTH IS DISABLED');
  });
});
