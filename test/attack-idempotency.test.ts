import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import postgres from 'postgres';
import type { MockHandle } from '../mock-task-service/src/index';
import { startMock } from '../mock-task-service/src/index';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/infra/logger';
import { type System, startSystem } from '../src/system';
import { createStudy, registerMockServices, waitForState } from './support/fixtures';
import { makeApi, NATS_URL, startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

/**
 * Attack: Idempotency-Key and duplicate registrations as a client (or two people) would really
 * use them. README "Retries are safe" and "409 on a duplicate task-service URL or name" (#18).
 */

let t: TestSystem;
const mocks: MockHandle[] = [];
let coordinator: System | undefined;

/** A coordinator-only process on the test system's database and NATS prefix (the test system has none). */
async function startCoordinator(): Promise<System> {
  const config = loadConfig({
    NODE_ENV: 'test',
    ROLE: 'coordinator',
    DATABASE_URL: t.databaseUrl,
    NATS_URL,
    NATS_PREFIX: t.prefix,
    PORT: '0',
    HOST: '127.0.0.1',
    POLL_INTERVAL_MS: '20',
    SCHEDULER_TICK_MS: '10',
    REQUEST_TIMEOUT_MS: '2000',
    HEALTH_INTERVAL_MS: '1000',
    ALLOW_PRIVATE_SERVICE_URLS: 'true',
    SHUTDOWN_GRACE_MS: '500',
    LOG_LEVEL: 'silent',
  });
  const log = await createLogger({ level: 'silent', format: 'json', production: false });
  return startSystem(config, log, { opsServer: false, migrate: false });
}

beforeAll(async () => {
  // gateway and worker here; the coordinator is started (and stopped) by the tests
  t = await startTestSystem('attack_idempotency', {
    ROLE: 'gateway,worker',
    GATEWAY_REPLY_TIMEOUT_MS: '1000',
  });
  coordinator = await startCoordinator();
});
afterAll(async () => {
  for (const m of mocks) await m.stop();
  await coordinator?.stop();
  await t?.stop();
});

describe('Idempotency-Key on POST /releases', () => {
  /**
   * README "Retries are safe": the key names one release, so a retry gets it. But the key is
   * global, not per caller, and for an existing key src/releases/service.ts `startRelease`
   * returns the release before checking the studies or who may start them. FAILS today: a USER
   * who may only release study B, posting {studies: [B]} with a key someone else used for study A,
   * gets 201 with that other release (of study A): a "created" answer for something they neither
   * asked for nor may start, and a release they believe holds study B.
   */
  test("another caller's key with other studies is not answered 201 with the other release", async () => {
    const studyA = await createStudy(t.api);
    const studyB = await createStudy(t.api);
    const key = `nightly-${crypto.randomUUID()}`;
    const first = await t.api(
      'POST',
      '/releases',
      { name: 'A', studies: [studyA] },
      { 'Idempotency-Key': key },
    );
    expect([201, 202]).toContain(first.status);
    const bob = makeApi(t.url, await t.mint({ username: 'bob', roles: ['USER'], groups: [studyB] }));
    // bob may release study B only: without the key this is his own release
    const second = await bob(
      'POST',
      '/releases',
      { name: 'B', studies: [studyB] },
      { 'Idempotency-Key': key },
    );
    console.log(
      "bob's create with a key already used:",
      second.status,
      second.body.kf_id === first.body.kf_id ? '(the first release)' : '(another release)',
      'studies:',
      JSON.stringify(second.body.studies),
    );
    expect(second.status === 201 && second.body.kf_id === first.body.kf_id).toBe(false);
  });

  /**
   * README "202 Accepted means it will be applied" and "Retries are safe ... [the release] exists
   * once the coordinator has applied the create". Here the coordinator refuses the first create
   * with the key (its study was removed by a study sync between the gateway's check and the
   * coordinator applying it, while the coordinator was down). Before the fix the intent id was
   * derived from the key and recorded as processed, so every later retry with that key, with a
   * valid study again, was answered 202 with the same id, and that release never existed. Now a
   * refused attempt frees the key (nothing was created).
   */
  test('a key whose first create the coordinator refused still works for a retry', async () => {
    const { mock } = await registerMockServices(t.api, 1);
    mocks.push(mock);
    const study = await createStudy(t.api);
    const key = `retry-${crypto.randomUUID()}`;
    await coordinator!.stop();
    coordinator = undefined;
    const accepted = await t.api(
      'POST',
      '/releases',
      { name: 'R', studies: [study] },
      { 'Idempotency-Key': key },
    );
    expect(accepted.status).toBe(202);
    // a study sync removes the study before the coordinator comes back
    const sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
    await sql`update studies set deleted = true where kf_id = ${study}`;
    coordinator = await startCoordinator();
    // the coordinator applied (refused) the create: the intent stream is drained
    await until(
      async () =>
        (await sql`select 1 from intents where idempotency_key = ${key} and applied_at is not null`).length >
        0,
      {
        message: 'the coordinator to apply the first create',
      },
    );
    await sql`update studies set deleted = false where kf_id = ${study}`;
    await sql.end();
    // the client retries, as README tells it to
    const retries: number[] = [];
    let id = accepted.body.kf_id as string;
    for (let i = 0; i < 3; i++) {
      const r = await t.api('POST', '/releases', { name: 'R', studies: [study] }, { 'Idempotency-Key': key });
      retries.push(r.status);
      id = r.body.kf_id;
      if (r.status === 201) break;
    }
    // a 202 promised it: give the coordinator its time to apply the create
    const exists = await until(async () => (await t.api('GET', `/releases/${id}`)).status === 200, {
      timeoutMs: 5_000,
    }).then(
      () => 200,
      () => 404,
    );
    console.log('retries after a refused keyed create:', retries, `GET /releases/${id}:`, exists);
    expect(exists).toBe(200);
    await waitForState(t.api, id, ['staged', 'failed', 'canceled'], 5_000);
  });
});

describe('POST /task-services: one service per URL', () => {
  /**
   * #18: "409 on a duplicate task-service URL". src/task-services/service.ts checks for a twin
   * (refuseDuplicate), then checks the URL live (GET /status), then inserts, with no lock and no
   * unique index between the check and the insert. FAILS today: two registrations of one URL sent
   * together (a double-click in the dashboard form, a retried script without a key) both get 201,
   * and every later release gets two tasks at that service.
   */
  test('two registrations of one URL at the same moment: one 201, one 409', async () => {
    const mock = await startMock({ services: ['twin'], behaviour: { statusLatencyMs: 300 } });
    mocks.push(mock);
    const url = mock.serviceUrl('twin');
    const answers = await Promise.all(
      ['twin-a', 'twin-b'].map((name) => t.api('POST', '/task-services', { name, url })),
    );
    console.log(
      'two registrations at once:',
      answers.map((a) => a.status),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
  });

  /**
   * The same check compares URLs as text (modulo trailing slashes). FAILS today: the scheme and
   * host in capitals, which name the same service (RFC 3986), register a second copy.
   */
  test('the same URL with its scheme and host in capitals is a duplicate', async () => {
    const mock = await startMock({ services: ['caps'] });
    mocks.push(mock);
    const url = mock.serviceUrl('caps');
    expect((await t.api('POST', '/task-services', { name: 'caps-a', url })).status).toBe(201);
    const shouted = url.replace('http://127.0.0.1', 'HTTP://127.0.0.1');
    const again = await t.api('POST', '/task-services', { name: 'caps-b', url: shouted });
    console.log('the same URL in capitals:', again.status, again.body.url ?? again.body);
    expect(again.status).toBe(409);
  });
});
