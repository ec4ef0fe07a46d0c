import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/infra/logger';
import { type System, startSystem } from '../src/system';
import { createStudy, waitForState } from './support/fixtures';
import { makeApi, NATS_URL, startTestSystem, type TestSystem } from './support/system';
import { TcpProxy } from './support/tcp-proxy';
import { until } from './support/until';

/**
 * Attack: a network partition between one gateway and NATS (the connection stays open, packets
 * are held, and delivered when the partition heals, as TCP does). README, Reliability, "What was
 * answered does not happen later" names one window left (a COMMIT that reached Postgres just
 * before the connection broke), and "NATS known down: 503 at once" covers a connection that
 * reports itself down. A partition is neither: the connection still looks up, the JetStream
 * publish waits for its acknowledgement until it times out, the caller gets 503 ("retry
 * shortly"), and the PUB already written to the socket reaches the server when the partition
 * heals. FAILS today: the create answered 503 is applied afterwards, so the client's retry (which
 * the 503 invites) makes a second release.
 */

let t: TestSystem;
let proxy: TcpProxy;
let gateway: System | undefined;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('attack_nats_partition');
  study = await createStudy(t.api);
  const nats = new URL(NATS_URL);
  proxy = await TcpProxy.start({ hostname: nats.hostname, port: Number(nats.port || 4222) });
  // a second gateway, on the same database and prefix, whose NATS connection goes through the proxy
  const config = loadConfig({
    NODE_ENV: 'test',
    ROLE: 'gateway',
    DATABASE_URL: t.databaseUrl,
    NATS_URL: proxy.url(NATS_URL),
    NATS_PREFIX: t.prefix,
    PORT: '0',
    HOST: '127.0.0.1',
    ALLOW_PRIVATE_SERVICE_URLS: 'true',
    SHUTDOWN_GRACE_MS: '500',
    LOG_LEVEL: 'silent',
  });
  gateway = await startSystem(
    config,
    await createLogger({ level: 'silent', format: 'json', production: false }),
    {
      migrate: false,
    },
  );
});
afterAll(async () => {
  proxy?.setMode('pass');
  await gateway?.stop();
  proxy?.setMode('refuse');
  await t?.stop();
});

describe('a partition between a gateway and NATS', () => {
  /**
   * Before the fix, a create answered 503 during the partition was applied when it healed (the
   * gateway's NATS client held the bytes), so the retry a 503 invites made a second release.
   * Now intents are stored in Postgres first: the create is applied from there (the gateway reads
   * the coordinator's answer there too), and the late copy from NATS is applied once.
   */
  test('a create during the partition is applied once: answered 201/202, one release after it heals', async () => {
    const api = makeApi(gateway!.server!.url, t.adminToken);
    const count = async () => (await t.api('GET', '/releases?limit=1')).body.count as number;
    const before = await count();
    proxy.setMode('blackhole');
    const started = performance.now();
    const res = await api('POST', '/releases', { name: 'during the partition', studies: [study] });
    const ms = Math.round(performance.now() - started);
    console.log(`create during the partition: ${res.status} after ${ms} ms`, JSON.stringify(res.body));
    expect([201, 202]).toContain(res.status);
    await until(async () => (await t.api('GET', `/releases/${res.body.kf_id}`)).status === 200, {
      timeoutMs: 10_000,
      message: 'the release to exist',
    });
    proxy.setMode('pass');
    // the held copy arrives after the heal: give it time, then count
    await waitForState(t.api, res.body.kf_id, ['staged', 'failed', 'canceled'], 20_000);
    const after = await count();
    console.log(`releases before: ${before}, after the partition healed: ${after}`);
    expect(after).toBe(before + 1);
  });
});
