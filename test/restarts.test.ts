import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import postgres from 'postgres';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { BASE_DATABASE_URL } from './support/database';
import { createRelease, createStudy, waitForState } from './support/fixtures';
import { freePort } from './support/processes';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// The bus and the database go away mid-release and come back: the coordinator reconnects and
// the release finishes with no state lost and no duplicate start/publish.

const storeDir = mkdtempSync(join(tmpdir(), 'rc-nats-restart-'));
let natsPort: number;
let nats: Subprocess | undefined;
let t: TestSystem;
let mock: MockHandle;
let study: string;

function startNats() {
  nats = spawn(['nats-server', '-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', storeDir], {
    stdout: 'ignore',
    stderr: 'ignore',
    env: { PATH: `${process.env.PATH}:/usr/sbin:/usr/local/sbin` },
  });
}

async function natsAnswers() {
  return until(
    async () => {
      const s = await Bun.connect({ hostname: '127.0.0.1', port: natsPort, socket: { data() {} } }).catch(
        () => null,
      );
      s?.end();
      return s !== null;
    },
    { timeoutMs: 10_000, message: 'private nats-server to listen' },
  );
}

beforeAll(async () => {
  natsPort = await freePort();
  startNats();
  await natsAnswers();
  t = await startTestSystem('restarts', {
    NATS_URL: `nats://127.0.0.1:${natsPort}`,
    REQUEST_TIMEOUT_MS: '1000',
  });
  mock = await startMock({ services: 3, stageMs: 1_500, publishMs: 200 });
  for (const name of mock.serviceNames) {
    expect((await t.api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
  study = await createStudy(t.api);
}, 30_000);

afterAll(async () => {
  await mock?.stop();
  await t?.stop();
  nats?.kill('SIGKILL');
  await nats?.exited;
  rmSync(storeDir, { recursive: true, force: true });
});

function onceEach(releaseId: string, action: string) {
  const calls = mock.calls.filter((c) => c.releaseId === releaseId && c.action === action);
  return new Set(calls.map((c) => c.taskId)).size === calls.length && calls.length === 3;
}

describe('dependencies restarting mid-release', () => {
  test('nats-server killed while tasks are running, restarted on the same store', async () => {
    const release = await createRelease(t.api, [study]);
    await waitForState(t.api, release.kf_id, 'running');
    nats!.kill('SIGKILL');
    await nats!.exited;
    // the gateway answers 503 (not 500) while the bus is away
    const during = await t.api('POST', `/releases/${release.kf_id}/publish`);
    expect([409, 503]).toContain(during.status);
    startNats();
    await natsAnswers();
    await waitForState(t.api, release.kf_id, 'staged', 30_000);
    const pub = await t.api('POST', `/releases/${release.kf_id}/publish`);
    expect(pub.status).toBe(200);
    await waitForState(t.api, release.kf_id, 'published', 30_000);
    expect(onceEach(release.kf_id, 'start')).toBe(true);
    expect(onceEach(release.kf_id, 'publish')).toBe(true);
  }, 60_000);

  test('nats-server loses its whole store between releases: streams and consumers are recreated', async () => {
    nats!.kill('SIGKILL');
    await nats!.exited;
    rmSync(storeDir, { recursive: true, force: true });
    startNats();
    await natsAnswers();
    const release = await until(
      async () => {
        const res = await t.api('POST', '/releases', { name: 'after the wipe', studies: [study] });
        return res.status === 201 ? res.body : undefined;
      },
      { timeoutMs: 30_000, message: 'the gateway to accept a release again (streams recreated)' },
    );
    await waitForState(t.api, release.kf_id, 'staged', 30_000);
    expect((await t.api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
    await waitForState(t.api, release.kf_id, 'published', 30_000);
    expect(onceEach(release.kf_id, 'start')).toBe(true);
  }, 60_000);

  test('Postgres refuses connections and drops every session mid-release', async () => {
    const release = await createRelease(t.api, [study]);
    await waitForState(t.api, release.kf_id, 'running');
    const dbName = new URL(t.databaseUrl).pathname.slice(1);
    const admin = postgres(BASE_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`alter database "${dbName}" with allow_connections false`);
      await admin.unsafe(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${dbName}'`,
      );
      // while it is away, reads answer 503 rather than 500
      const during = await t.api('GET', `/releases/${release.kf_id}`);
      expect(during.status).toBe(503);
      // stay away until the services have finished staging, so their answers must wait for us
      await until(
        () => {
          const mine = mock.tasks().filter((x) => x.release_id === release.kf_id);
          return mine.length === 3 && mine.every((x) => x.state === 'staged');
        },
        { timeoutMs: 10_000 },
      );
    } finally {
      await admin.unsafe(`alter database "${dbName}" with allow_connections true`);
      await admin.end();
    }
    await waitForState(t.api, release.kf_id, 'staged', 30_000);
    expect((await t.api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
    await waitForState(t.api, release.kf_id, 'published', 30_000);
    expect(onceEach(release.kf_id, 'start')).toBe(true);
    expect(onceEach(release.kf_id, 'publish')).toBe(true);
  }, 60_000);
});
