import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { registerMockServices } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

/**
 * Attack: what an anonymous caller learns when reads are private. README: "`PUBLIC_READS=false`:
 * every GET needs a token too, except `/`, `/status`, ..." (so load balancers can check health).
 * FAILS today: GET /status, without a token, lists the names of the enabled task services that
 * have no token_subject (src/http/app.ts, `unboundServices`), the very services whose callbacks
 * any service token may send: a list of weak spots for anyone who can reach the port, while
 * GET /task-services itself answers 401.
 */

let t: TestSystem;
let mock: MockHandle;
beforeAll(async () => {
  t = await startTestSystem('attack_status', { PUBLIC_READS: 'false' });
  mock = (await registerMockServices(t.api, 2)).mock;
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

test('with PUBLIC_READS=false an anonymous GET /status does not name task services', async () => {
  expect((await t.anonymous('GET', '/task-services')).status).toBe(401);
  const status = await t.anonymous('GET', '/status');
  console.log('anonymous /status:', status.status, JSON.stringify(status.body.warnings));
  expect(status.status).toBe(200);
  for (const name of mock.serviceNames) expect(JSON.stringify(status.body)).not.toContain(name);
});
