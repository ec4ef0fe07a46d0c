import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import postgres from 'postgres';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { FINAL_STATES, soakOr } from './support/faults';
import { createStudy, waitForState } from './support/fixtures';
import { Cluster } from './support/processes';
import { type Api, makeApi } from './support/system';
import { until } from './support/until';

// The gateway (its own process) is killed with SIGKILL while many POST /releases with an
// Idempotency-Key are in flight, then restarted. Every client either got an error or a
// committed release; every release that exists is whole (its tasks and studies), and retrying
// a key returns the release that key made, never a second one.

const SERVICES = 3;
const REQUESTS = soakOr(40, 200);
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
let studies: string[];

beforeAll(async () => {
  cluster = await Cluster.create('faults_gw_kill');
  await Promise.all([cluster.start('gateway'), cluster.start('coordinator'), cluster.start('worker')]);
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 50, publishMs: 50 });
  for (const name of mock.serviceNames) {
    expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
  studies = [await createStudy(api), await createStudy(api)];
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

type Outcome = { key: string; status?: number; kfId?: string; error?: string };

describe('gateway killed with requests in flight', () => {
  test(`kill -9 during ${REQUESTS} creates: an error or a committed release, never half of one`, async () => {
    const run = crypto.randomUUID().slice(0, 8);
    const outcomes: Outcome[] = [];
    const inFlight = Array.from({ length: REQUESTS }, async (_, i) => {
      const key = `kill-${run}-${i}`;
      // spread the requests so some are answered, some in flight and some not sent at the kill
      await new Promise((r) => setTimeout(r, i * 15));
      try {
        const res = await api(
          'POST',
          '/releases',
          { name: `gw kill ${i}`, studies },
          { 'idempotency-key': key },
        );
        outcomes.push({ key, status: res.status, kfId: res.body?.kf_id });
      } catch (err) {
        outcomes.push({ key, error: String(err) });
      }
    });
    await until(() => outcomes.length >= Math.ceil(REQUESTS / 5), {
      timeoutMs: 30_000,
      message: 'some creates to be answered',
    });
    await cluster.kill('gateway');
    await Promise.all(inFlight);
    expect(outcomes).toHaveLength(REQUESTS);
    // a client saw either an answer the API documents, or a transport error; never a 500
    for (const o of outcomes) {
      if (o.error === undefined)
        expect({ key: o.key, status: o.status }).toEqual({
          key: o.key,
          status: [201, 202, 503].includes(o.status!) ? o.status : -1,
        });
    }
    const errors = outcomes.filter((o) => o.error !== undefined).length;
    console.log(
      `gateway kill: ${REQUESTS - errors} answered (${outcomes.filter((o) => o.status === 201).length} × 201), ${errors} transport errors`,
    );
    expect(errors).toBeGreaterThan(0);

    await cluster.start('gateway');
    // every client retries its request with its key: the same release as before when it had an answer
    const byKey = new Map<string, string>();
    for (const o of outcomes) {
      const res = await until(
        async () => {
          const r = await api(
            'POST',
            '/releases',
            // the same request as the first time (a key with another body is 422)
            { name: `gw kill ${o.key.split('-').pop()}`, studies },
            { 'idempotency-key': o.key },
          );
          return r.status === 201 ? r : undefined;
        },
        { timeoutMs: 20_000, message: `retry of ${o.key} to be answered 201` },
      );
      if (o.kfId && (o.status === 201 || o.status === 202)) expect(res.body.kf_id).toBe(o.kfId);
      byKey.set(o.key, res.body.kf_id);
    }
    expect(new Set(byKey.values()).size).toBe(REQUESTS);

    // in the database: one release per key, each whole
    const sql = postgres(cluster.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ kf_id: string; key: string; tasks: number; studies: number }[]>`
        select r.kf_id, i.idempotency_key as key,
          (select count(*)::int from tasks t where t.release_id = r.kf_id) as tasks,
          (select count(*)::int from release_studies s where s.release_id = r.kf_id) as studies
        from releases r join intents i on i.release_id = r.kf_id and i.type = 'release.create'
        where i.idempotency_key like ${`kill-${run}-%`}`;
      expect(rows).toHaveLength(REQUESTS);
      for (const r of rows) {
        expect({ id: r.kf_id, key: byKey.get(r.key), tasks: r.tasks, studies: r.studies }).toEqual({
          id: r.kf_id,
          key: r.kf_id,
          tasks: SERVICES,
          studies: studies.length,
        });
      }
    } finally {
      await sql.end();
    }
    // and each one runs on: staged, then canceled here to end it
    for (const id of byKey.values()) {
      await waitForState(api, id, 'staged', 30_000);
      expect((await api('DELETE', `/releases/${id}`)).status).toBe(200);
    }
    for (const id of byKey.values()) {
      expect(FINAL_STATES).toContain((await waitForState(api, id, FINAL_STATES, 30_000)).state);
    }
  }, 150_000);
});
