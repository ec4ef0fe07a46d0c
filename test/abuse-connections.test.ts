import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Socket } from 'bun';
import { soakOr } from './support/faults';
import { createStudy } from './support/fixtures';
import { Cluster } from './support/processes';
import { type Api, makeApi } from './support/system';
import { until } from './support/until';

// The gateway (its own process) holds many idle connections and slowloris-style partial
// requests (headers sent a few bytes at a time, a body that never completes) while ordinary
// clients keep using it: they must all be answered. Timings are measured and printed; only a
// generous bound is asserted.

const IDLE = soakOr(500, 2_000);
const SLOW = soakOr(50, 200);
let cluster: Cluster;
let api: Api;
let port: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  cluster = await Cluster.create('abuse_conns');
  await cluster.start('all');
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  port = Number(new URL(cluster.gatewayUrl).port);
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.end();
  await cluster?.stop();
});

const connect = () =>
  Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {}, error() {}, close() {} } });

async function timedRequests(n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await api('GET', '/releases?limit=5');
    expect(res.status).toBe(200);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b);
}

describe('slow clients and idle connections', () => {
  test(`${IDLE} idle connections and ${SLOW} slowloris requests do not stop the gateway serving others`, async () => {
    const study = await createStudy(api);
    const baseline = await timedRequests(20);
    // idle: connected, nothing sent
    for (let i = 0; i < IDLE; i++) sockets.push(await connect());
    // slowloris: a request line and part of the headers, then one more header byte now and then
    const slow: Socket[] = [];
    for (let i = 0; i < SLOW; i++) {
      const s = await connect();
      s.write(`POST /releases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: `);
      slow.push(s);
      sockets.push(s);
    }
    // and a few that send whole headers but only the start of a long body
    for (let i = 0; i < 10; i++) {
      const s = await connect();
      s.write(
        `POST /studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${cluster.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"kf_id":`,
      );
      sockets.push(s);
    }
    const drip = setInterval(() => {
      for (const s of slow) s.write('a');
    }, 200);
    try {
      const during = await timedRequests(20);
      // writes go through too
      const write = await api('POST', '/releases', { name: 'under load', studies: [study] });
      expect(write.status).toBe(201);
      const median = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
      console.log(
        `connections: ${IDLE} idle + ${SLOW} slowloris + 10 partial bodies; GET median ${median(baseline).toFixed(1)} ms before, ${median(during).toFixed(1)} ms during (max ${during.at(-1)!.toFixed(1)} ms)`,
      );
      expect(during.at(-1)!).toBeLessThan(5_000);
      // the gateway is still healthy, and a fresh client after all this is served
      const status = await until(async () => (await api('GET', '/status')).status === 200, {
        timeoutMs: 5_000,
        message: '/status to answer 200',
      });
      expect(status).toBe(true);
    } finally {
      clearInterval(drip);
    }
  }, 60_000);
});
