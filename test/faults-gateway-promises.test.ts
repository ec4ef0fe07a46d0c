import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import postgres from 'postgres';
import type { MockHandle } from '../mock-task-service/src/index';
import { expectNoDuplicate, outage, PrivateNats, publishWhenStaged, soakOr } from './support/faults';
import { createStudy, registerMockServices, waitForState, waitForTaskStates } from './support/fixtures';
import { ARTIFACTS, Cluster } from './support/processes';
import { type Api, makeApi } from './support/system';
import { type ProxyMode, TcpProxy } from './support/tcp-proxy';
import { until } from './support/until';

// The gateway keeps its promises while a dependency is away (issue #17). Real processes (gateway,
// coordinator, worker: each `bun src/main.ts`) on a private nats-server; every one of them reaches
// Postgres through a TCP proxy in this test, which black-holes it (every byte held, and delivered
// when it passes again: a SIGSTOPped server or a healed partition) or refuses connections.
// Meanwhile a client keeps calling the gateway with the deadline a CLI would use. Nothing may hang
// to that deadline, nothing answered may take effect later, and releases in flight finish
// afterwards with every task started and published once. Latencies are printed, not asserted.
// Outage lengths and the pace of the client are the faults and the load, not synchronisation.

const SERVICES = 3;
const BLACKHOLE_MS = soakOr(15_000, 30_000);
const REFUSE_MS = soakOr(5_000, 15_000);
/** how long the test's client waits for an answer (the CLI's default is 15 s) */
const CLIENT_DEADLINE_MS = 10_000;
let nats: PrivateNats;
let proxy: TcpProxy;
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
let direct: postgres.Sql;
let study: string;

beforeAll(async () => {
  nats = await PrivateNats.start();
  proxy = await TcpProxy.start();
  cluster = await Cluster.create('gw_promises', { NATS_URL: nats.url, REQUEST_TIMEOUT_MS: '2000' });
  const viaProxy = { DATABASE_URL: proxy.url(cluster.env.DATABASE_URL!) };
  await Promise.all(
    (['gateway', 'coordinator', 'worker'] as const).map((role) => cluster.start(role, role, viaProxy)),
  );
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  direct = postgres(cluster.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
  ({ mock } = await registerMockServices(api, SERVICES, { stageMs: 1_500, publishMs: 300 }));
  study = await createStudy(api);
}, 90_000);

afterAll(async () => {
  await direct?.end();
  await mock?.stop();
  await cluster?.stop();
  proxy?.close();
  await nats?.close();
});

interface Call {
  what: string;
  /** undefined: no answer within the client's deadline */
  status?: number;
  ms: number;
  retryAfter?: string | null;
  /** the task service it tried to register, or the name it tried to set */
  name?: string;
  key?: string;
}

/** one request with the client's deadline; never throws */
async function call(
  what: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Call> {
  const started = performance.now();
  try {
    const res = await fetch(cluster.gatewayUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${cluster.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CLIENT_DEADLINE_MS),
    });
    await res.text();
    return {
      what,
      status: res.status,
      ms: performance.now() - started,
      retryAfter: res.headers.get('retry-after'),
    };
  } catch {
    return { what, ms: performance.now() - started };
  }
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

/**
 * Makes Postgres `mode` for `ms` while a client sends a request every 100 ms (reads, a new task
 * service, a new release with a key, a rename of `releaseId`); returns every call.
 */
async function clientDuring(mode: ProxyMode, ms: number, releaseId: string, run: string): Promise<Call[]> {
  proxy.setMode(mode);
  const started = performance.now();
  const calls: Promise<Call>[] = [];
  for (let i = 0; performance.now() - started < ms; i++) {
    const name = `${run}-${i}`;
    const kinds = [
      () => call('GET /releases/{id}', 'GET', `/releases/${releaseId}`),
      () => call('GET /releases', 'GET', '/releases'),
      async () => ({
        ...(await call('POST /task-services', 'POST', '/task-services', {
          name,
          url: mock.serviceUrl(mock.serviceNames[0]!),
        })),
        name,
      }),
      async () => ({
        ...(await call(
          'POST /releases',
          'POST',
          '/releases',
          { name, studies: [study] },
          { 'idempotency-key': name },
        )),
        key: name,
      }),
      async () => ({
        ...(await call('PATCH /releases/{id}', 'PATCH', `/releases/${releaseId}`, { name })),
        name,
      }),
    ];
    calls.push(kinds[i % kinds.length]!());
    // the client's pace (load, not synchronisation)
    await new Promise((r) => setTimeout(r, 100));
  }
  const remaining = ms - (performance.now() - started);
  if (remaining > 0) await outage(remaining);
  proxy.setMode('pass');
  const done = await Promise.all(calls);
  const ms2 = done.map((c) => c.ms);
  const statuses: Record<string, number> = {};
  for (const c of done)
    statuses[String(c.status ?? 'no answer')] = (statuses[String(c.status ?? 'no answer')] ?? 0) + 1;
  console.log(
    `Postgres ${mode} for ${ms / 1000} s: ${done.length} requests answered in p50 ${Math.round(percentile(ms2, 50))} ms, p99 ${Math.round(percentile(ms2, 99))} ms, max ${Math.round(Math.max(...ms2))} ms; statuses ${JSON.stringify(statuses)}`,
  );
  return done;
}

/** every request had an answer; every failure was a 503 with Retry-After */
function expectAnsweredEach(calls: Call[]) {
  const unanswered = calls.filter((c) => c.status === undefined).map((c) => c.what);
  expect({ unanswered }).toEqual({ unanswered: [] });
  const other = calls.filter(
    (c) => c.status !== undefined && c.status >= 500 && (c.status !== 503 || !c.retryAfter),
  );
  expect(other).toEqual([]);
}

/** what the outage's refused writes left behind, read from Postgres directly: nothing */
async function expectNothingAppliedLater(calls: Call[], releaseId: string) {
  const refused = (what: string) =>
    calls.filter((c) => c.what === what && c.status !== 201 && c.status !== 200);
  const services = refused('POST /task-services').map((c) => c.name!);
  const registered = await direct<{ name: string }[]>`
    select name from task_services where name in ${direct(services.length > 0 ? services : [''])}`;
  const renames = refused('PATCH /releases/{id}').map((c) => c.name!);
  const [release] = await direct<{ name: string }[]>`select name from releases where kf_id = ${releaseId}`;
  console.log(
    `applied after an error answer: ${registered.length} of ${services.length} task services, ${renames.includes(release!.name) ? 1 : 0} of ${renames.length} renames`,
  );
  expect(registered.map((r) => r.name)).toEqual([]);
  expect(renames).not.toContain(release!.name);
}

/** each key the client used gets one release, the one a retry returns */
async function expectOneReleasePerKey(calls: Call[]) {
  const keys = calls.filter((c) => c.key).map((c) => c.key!);
  for (const key of keys) {
    const retried = await until(
      async () => {
        const r = await api('POST', '/releases', { name: key, studies: [study] }, { 'idempotency-key': key });
        return r.status === 201 ? r : undefined;
      },
      { timeoutMs: 30_000, message: `the retry of ${key} to be answered 201` },
    );
    expect(retried.body.name).toBe(key);
  }
  const rows = await direct<{ key: string }[]>`
    select i.idempotency_key as key from intents i join releases r on r.kf_id = i.release_id
    where i.idempotency_key in ${direct(keys.length ? keys : [''])}`;
  expect(rows.map((r) => r.key).sort()).toEqual([...keys].sort());
}

async function publish(releaseId: string) {
  const done = await publishWhenStaged(api, releaseId);
  expectNoDuplicate(mock, releaseId, 'start', SERVICES);
  expectNoDuplicate(mock, releaseId, 'publish', SERVICES);
  return done;
}

describe('Postgres away', () => {
  for (const [mode, ms] of [
    ['blackhole', BLACKHOLE_MS],
    ['refuse', REFUSE_MS],
  ] as const) {
    test(`${mode} for ${ms / 1000} s mid-release: every request answered, nothing answered applies later, the release finishes`, async () => {
      const created = await api('POST', '/releases', { name: `postgres ${mode}`, studies: [study] });
      expect(created.status).toBe(201);
      const id = created.body.kf_id;
      await waitForTaskStates(api, id, 'running', 30_000);
      const calls = await clientDuring(mode, ms, id, `${mode}-${cluster.env.NATS_PREFIX}`);
      expectAnsweredEach(calls);
      const done = await publish(id);
      expect(done.state).toBe('published');
      await expectNothingAppliedLater(calls, id);
      await expectOneReleasePerKey(calls);
    }, 180_000);
  }
});

describe('NATS away', () => {
  test('a write while NATS is down is stored in Postgres and applied once: answered at once, and the release runs when NATS returns', async () => {
    await nats.kill();
    await until(
      async () => {
        const r = await api('GET', '/status');
        return r.status === 503 && r.body.bus === 'unreachable';
      },
      { timeoutMs: 10_000, message: 'the gateway to see NATS gone' },
    );
    const name = `bus down ${cluster.env.NATS_PREFIX}`;
    const create = await call('POST /releases', 'POST', '/releases', { name, studies: [study] });
    console.log(`NATS down: POST /releases answered ${create.status} in ${Math.round(create.ms)} ms`);
    // the coordinator applies it from Postgres; the gateway reads the answer there
    expect([201, 202]).toContain(create.status!);
    // reads go on from Postgres
    expect((await api('GET', '/releases')).status).toBe(200);
    await outage(2_000);
    await nats.start();
    await until(async () => (await api('GET', '/status')).status === 200, {
      timeoutMs: 30_000,
      message: 'the gateway to see NATS back',
    });
    const [row] = await direct<{ kf_id: string }[]>`select kf_id from releases where name = ${name}`;
    expect(row).toBeDefined();
    await waitForState(api, row!.kf_id, 'staged', 60_000);
    const copies = await direct`select kf_id from releases where name = ${name}`;
    expect(copies.length).toBe(1);
  }, 120_000);
});

describe('a caller that hangs up', () => {
  test('a registration whose caller gave up while its URL was being checked is not applied', async () => {
    // a task service whose /status takes 1 s to answer (the fault; the URL check waits up to 2 s)
    const slow = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        return Response.json({ name: 'slow', message: 'ready', version: '1' });
      },
    });
    const requestId = `hung-up-${cluster.env.NATS_PREFIX}`;
    const name = `hung up ${cluster.env.NATS_PREFIX}`;
    try {
      const gaveUp = await fetch(`${cluster.gatewayUrl}/task-services`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${cluster.adminToken}`,
          'content-type': 'application/json',
          'x-request-id': requestId,
        },
        body: JSON.stringify({ name, url: `http://127.0.0.1:${slow.port}` }),
        signal: AbortSignal.timeout(300),
      }).then(
        () => false,
        () => true,
      );
      expect(gaveUp).toBe(true);
      // the gateway has finished with the request once its access-log line is written
      const log = join(ARTIFACTS, `${cluster.label}-gateway.log`);
      await until(async () => (await Bun.file(log).text()).includes(requestId), {
        timeoutMs: 15_000,
        message: 'the gateway to finish the abandoned request',
      });
    } finally {
      slow.stop(true);
    }
    const registered = await direct`select kf_id from task_services where name = ${name}`;
    expect(registered.length).toBe(0);
  });
});
