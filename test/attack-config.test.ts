import { afterAll, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { createStudy, registerMockServices, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

/**
 * Attack: tuning values the configuration accepts. docs/configuration.md: "A bad value stops the
 * process at once with exit code 2 and one line naming the variable". COMMAND_ACK_WAIT_MS=1000
 * (and COORDINATOR_ACK_WAIT_MS below 1000) pass validation (`min(1)`), but the pull requests
 * derived from them expire in under 1 s (worker: heartbeat × 3 = 999 ms; coordinator:
 * min(5 s, ack wait)), which nats.js refuses ("'expires' must be at least 1000ms"). The worker
 * (or coordinator) then never attaches to its consumer: one warning line, and every release
 * waits in `initializing` for ever. FAILS today: either the value must be refused at start, or
 * the system must work with it.
 */

let t: TestSystem | undefined;
let mock: MockHandle | undefined;
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

for (const [name, value] of [
  ['COMMAND_ACK_WAIT_MS', '1000'],
  ['COORDINATOR_ACK_WAIT_MS', '900'],
] as const) {
  test(`${name}=${value} is refused at start or works`, async () => {
    await mock?.stop();
    await t?.stop();
    mock = undefined;
    t = undefined;
    try {
      t = await startTestSystem(`attack_config_${name.slice(0, 5)}`, { [name]: value });
    } catch (err) {
      // refused at start, naming the variable: what the docs promise for a bad value
      expect(String(err)).toContain(name);
      return;
    }
    const study = await createStudy(t.api);
    mock = (await registerMockServices(t.api, 1)).mock;
    // the coordinator may never answer (202): the release id is in the body either way
    const created = (await t.api('POST', '/releases', { name: 'config attack', studies: [study] })).body;
    let state = 'unknown';
    try {
      state = (await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 15_000)).state;
    } catch {
      state =
        (await t.api('GET', `/releases/${created.kf_id}`)).body.state ??
        'not created (404), though the create was answered 202';
    }
    console.log(`${name}=${value}: accepted at start; the release is ${state} after 15 s`);
    expect(state).toBe('staged');
  });
}
