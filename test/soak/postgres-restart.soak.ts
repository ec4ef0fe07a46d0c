import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readdirSync } from 'node:fs';
import { type MockHandle, startMock } from '../../mock-task-service/src/index';
import { expectNoDuplicate } from '../support/faults';
import { createStudy, waitForState, waitForTaskStates } from '../support/fixtures';
import { Cluster } from '../support/processes';
import { type Api, makeApi } from '../support/system';
import { until } from '../support/until';

// Soak only (`npm run test:soak`; never part of `npm test`): restarts the whole PostgreSQL cluster
// (`pg_ctlcluster … restart`) in the middle of releases run by real processes. It stops every
// database of the machine for a moment, so it must not run while anything else uses Postgres.

const SERVICES = 3;
const ROUNDS = 3;
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
let study: string;

const pgVersion = () => readdirSync('/etc/postgresql').sort().at(-1)!;

async function restartPostgres() {
  const proc = Bun.spawn(['pg_ctlcluster', '--skip-systemctl-redirect', pgVersion(), 'main', 'restart'], {
    stdout: 'inherit',
    stderr: 'inherit',
  });
  expect(await proc.exited).toBe(0);
}

beforeAll(async () => {
  cluster = await Cluster.create('soak_pg_restart');
  await Promise.all([cluster.start('gateway'), cluster.start('coordinator'), cluster.start('worker')]);
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 3_000, publishMs: 1_000 });
  for (const name of mock.serviceNames) {
    expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
  study = await createStudy(api);
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

describe('PostgreSQL cluster restarted mid-release', () => {
  for (let round = 1; round <= ROUNDS; round++) {
    test(`round ${round}: restart while tasks run, and again while publishing`, async () => {
      const created = await api('POST', '/releases', { name: `pg restart ${round}`, studies: [study] });
      expect(created.status).toBe(201);
      const id = created.body.kf_id;
      await waitForTaskStates(api, id, 'running', 30_000);
      await restartPostgres();
      await waitForState(api, id, 'staged', 120_000);
      const pub = await until(
        async () => {
          const r = await api('POST', `/releases/${id}/publish`);
          return r.status === 503 ? undefined : r;
        },
        { timeoutMs: 60_000, message: 'the publish to be taken' },
      );
      expect([200, 202]).toContain(pub.status);
      await restartPostgres();
      const done = await waitForState(api, id, ['published', 'failed', 'canceled'], 120_000);
      expect(done.state).toBe('published');
      expectNoDuplicate(mock, id, 'start', SERVICES);
      expectNoDuplicate(mock, id, 'publish', SERVICES);
    }, 300_000);
  }
});
