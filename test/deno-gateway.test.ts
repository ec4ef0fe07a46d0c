import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { type Subprocess, spawn } from 'bun';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { loadConfig } from '../src/config';
import { deleteStreams } from '../src/infra/bus/streams';
import { busNames } from '../src/infra/bus/subjects';
import { createLogger } from '../src/infra/logger';
import { type System, startSystem } from '../src/system';
import { createTestDatabase } from './support/database';
import { createRelease, createStudy, waitForState } from './support/fixtures';
import { ARTIFACTS, freePort } from './support/processes';
import { testPrefix } from './support/run';
import { type Api, makeApi, NATS_URL } from './support/system';
import { until } from './support/until';

// The gateway runs unchanged under Deno 2 (`npm run setup:deno` installs it; .ci/run does).
// One release goes through it, with the coordinator and a worker in this (Bun) process.

const ROOT = resolve(import.meta.dir, '..');
const DENO = join(ROOT, 'node_modules/.bin/deno');
const hasDeno = existsSync(DENO);

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let system: System;
let deno: Subprocess | undefined;
let mock: MockHandle;
let api: Api;
let gatewayUrl: string;
const prefix = testPrefix('d');

beforeAll(async () => {
  if (!hasDeno) return;
  db = await createTestDatabase('deno');
  const env = {
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    NATS_URL,
    NATS_PREFIX: prefix,
    ALLOW_PRIVATE_SERVICE_URLS: 'true',
    POLL_INTERVAL_MS: '50',
    SCHEDULER_TICK_MS: '25',
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig({ ...env, ROLE: 'coordinator,worker', PORT: '0', HOST: '127.0.0.1' });
  system = await startSystem(
    config,
    await createLogger({ level: 'silent', format: 'json', production: false }),
    {
      opsServer: false,
    },
  );
  const port = await freePort();
  deno = spawn([DENO, 'run', '-A', '--sloppy-imports', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      ROLE: 'gateway',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
    },
    stdout: Bun.file(join(ARTIFACTS, 'deno-gateway.log')),
    stderr: Bun.file(join(ARTIFACTS, 'deno-gateway.err')),
  });
  const url = `http://127.0.0.1:${port}`;
  gatewayUrl = url;
  await until(async () => (await fetch(`${url}/status`).catch(() => undefined))?.status === 200, {
    timeoutMs: 30_000,
    message: 'the Deno gateway to answer /status (see test/artifacts/deno-gateway.*)',
  });
  api = makeApi(url, await system.auth.mint!({ username: 'deno-admin', roles: ['ADMIN'] }));
  mock = await startMock({ services: 2, stageMs: 50, publishMs: 50 });
}, 60_000);

afterAll(async () => {
  if (!hasDeno) return;
  deno?.kill('SIGTERM');
  await deno?.exited;
  await mock?.stop();
  await system?.stop();
  const nc = await connect({ servers: NATS_URL });
  await deleteStreams(nc, busNames(prefix));
  await nc.close();
  await db?.drop();
});

describe('gateway on Deno', () => {
  test.skipIf(!hasDeno)(
    'the abuse guards hold under Deno: JSON 414/431, the GraphQL limits, IPv6 forms carrying an IPv4 address',
    async () => {
      const long = await fetch(`${gatewayUrl}/releases?name=${'a'.repeat(9_000)}`);
      expect(long.status).toBe(414);
      expect(((await long.json()) as { detail: string }).detail).toMatch(/URL/);
      const token = await fetch(`${gatewayUrl}/releases`, {
        headers: { authorization: `Bearer ${'t'.repeat(9_000)}` },
      });
      expect(token.status).toBe(431);
      expect(((await token.json()) as { detail: string }).detail).toMatch(/token/);
      const fanOut = ['{ allReleases { edges { node { ...F0 } } } }'];
      for (let i = 0; i < 30; i++) fanOut.push(`fragment F${i} on ReleaseNode { ...F${i + 1} ...F${i + 1} }`);
      fanOut.push('fragment F30 on ReleaseNode { kfId }');
      const graphql = await fetch(`${gatewayUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: fanOut.join('\n') }),
      });
      const refused = (await graphql.json()) as { errors: { extensions: { code: string } }[] };
      expect(refused.errors[0]!.extensions.code).toBe('QUERY_TOO_EXPENSIVE');
      const embedded = await api('POST', '/task-services', {
        name: 'embedded',
        url: 'http://[2002:a9fe:a9fe::1]/',
      });
      expect(embedded.status).toBe(400);
      expect(embedded.body.url[0]).toContain('169.254.169.254');
    },
    30_000,
  );

  test.skipIf(!hasDeno)(
    'a release goes through a gateway running under Deno 2 (skipped only when deno is not installed: npm run setup:deno)',
    async () => {
      const status = await api('GET', '/status');
      expect(status.status).toBe(200);
      for (const name of mock.serviceNames) {
        expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
      }
      const study = await createStudy(api);
      const release = await createRelease(api, [study]);
      await waitForState(api, release.kf_id, 'staged');
      expect((await api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
      const done = await waitForState(api, release.kf_id, 'published');
      expect(done.version).toMatch(/^0\.\d+\.0$/);
      deno!.kill('SIGTERM');
      expect(await deno!.exited).toBe(0);
      deno = undefined;
    },
    60_000,
  );
});
