import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { spawn } from 'bun';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { deleteStreams } from '../src/infra/bus/streams';
import { busNames } from '../src/infra/bus/subjects';
import { createStudy, waitForState } from './support/fixtures';
import { ARTIFACTS, Cluster, freePort } from './support/processes';
import { type Api, makeApi, NATS_URL } from './support/system';
import { localSigningKey } from './support/tokens';
import { until } from './support/until';

// Secrets never reach the logs. The roles run as processes with LOG_LEVEL=debug; an ADMIN uses
// the API, a task service calls back with its own token, the coordinator sends its tokens to the
// services (the mock records them), refused tokens are tried too. Then every log file of every
// process is searched for each token (and its signature alone), and for anything shaped like a JWT.

const LABEL = `abuse_secrets_${crypto.randomUUID().slice(0, 6)}`;
const JWT_SHAPE = /eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]{10,}/;
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
const secrets = new Map<string, string>();

beforeAll(async () => {
  const key = await localSigningKey();
  cluster = await Cluster.create(LABEL, {
    LOG_LEVEL: 'debug',
    SIGNING_KEY: key.signingKey,
    OAUTH_CLIENT_SECRET: 'unused-but-secret-value-4f1b9c',
  });
  const admin = await key.mint({ username: 'secret-admin', roles: ['ADMIN'] });
  const service = await key.mint({ username: 'secret-service', roles: [], service: true });
  secrets.set('ADMIN token', admin);
  secrets.set('service callback token', service);
  await Promise.all([cluster.start('gateway'), cluster.start('coordinator'), cluster.start('worker')]);
  api = makeApi(cluster.gatewayUrl, admin);
  mock = await startMock({
    services: 2,
    stageMs: 100,
    publishMs: 100,
    coordinatorUrl: cluster.gatewayUrl,
    callbackToken: service,
    behaviour: { callback: 'after' },
  });
  for (const name of mock.serviceNames) {
    expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

function logFiles(prefix: string): string[] {
  return readdirSync(ARTIFACTS)
    .filter((f) => f.startsWith(`${prefix}-`))
    .map((f) => join(ARTIFACTS, f));
}

function leaks(files: string[], named: Map<string, string>) {
  const found: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const [what, secret] of named) {
      const signature = secret.split('.')[2];
      if (text.includes(secret)) found.push(`${what} in ${file}`);
      else if (signature && signature.length > 10 && text.includes(signature))
        found.push(`${what} (signature) in ${file}`);
    }
    const jwt = JWT_SHAPE.exec(text);
    if (jwt) found.push(`a JWT (${jwt[0].slice(0, 24)}…) in ${file}`);
  }
  return found;
}

describe('secrets in logs', () => {
  test('no token (incoming, callback, outgoing or refused) appears in any log line at debug level', async () => {
    const study = await createStudy(api);
    const created = await api('POST', '/releases', { name: 'secrets', studies: [study] });
    expect(created.status).toBe(201);
    const id = created.body.kf_id;
    await waitForState(api, id, 'staged', 30_000);
    expect((await api('POST', `/releases/${id}/publish`)).status).toBe(200);
    await waitForState(api, id, 'published', 30_000);
    // the services called back with their token, and it was accepted
    await until(() => mock.callbacks.some((c) => c.status === 200), {
      timeoutMs: 10_000,
      message: 'a callback',
    });
    // refused tokens: a forged one, and a valid one in the wrong place
    const forged = `${secrets.get('ADMIN token')!.slice(0, -6)}AAAAAA`;
    secrets.set('forged token', forged);
    expect(
      (await api('POST', '/studies', { kf_id: 'SD_ZZZZZZZZ' }, { authorization: `Bearer ${forged}` })).status,
    ).toBe(401);
    expect(
      (
        await api(
          'PATCH',
          '/tasks/TA_00000000',
          { state: 'staged' },
          { authorization: `Bearer ${secrets.get('service callback token')}` },
        )
      ).status,
    ).toBe(404);
    expect(
      (await api('GET', '/releases', undefined, { authorization: `Basic ${btoa('user:pa55word-xyz')}` }))
        .status,
    ).toBe(401);
    secrets.set('basic credentials', btoa('user:pa55word-xyz'));
    // what the coordinator sent to the services
    const outgoing = new Set(
      mock.calls.map((c) => c.headers.authorization?.replace(/^Bearer /, '')).filter((x): x is string => !!x),
    );
    expect(outgoing.size).toBeGreaterThan(0);
    let n = 0;
    for (const token of outgoing) secrets.set(`outgoing token ${++n}`, token);
    secrets.set('OAUTH_CLIENT_SECRET', 'unused-but-secret-value-4f1b9c');

    const files = logFiles(LABEL);
    const all = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    // the logs are there and really at debug level (calls to task services, batches)
    expect(files.length).toBeGreaterThanOrEqual(3);
    expect(all).toContain('task-service call done');
    expect(all).toContain('batch applied');
    console.log(
      `secrets: ${secrets.size} secrets searched in ${files.length} log files (${all.length} bytes)`,
    );
    expect(leaks(files, secrets)).toEqual([]);
  }, 90_000);

  test('development mode on a non-terminal: the demo ADMIN token is not written to the structured log', async () => {
    // `npm start` prints a demo token for a person at a terminal; logs collected from a pipe or a
    // file must not carry a credential that works for 12 hours
    const port = await freePort();
    const key = await localSigningKey();
    const logFile = join(ARTIFACTS, `${LABEL}_dev-all.log`);
    const devPrefix = `${cluster.env.NATS_PREFIX}dev`;
    const proc = spawn([process.execPath, 'src/main.ts'], {
      cwd: join(import.meta.dir, '..'),
      env: {
        ...cluster.env,
        NODE_ENV: 'development',
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'debug',
        NATS_URL,
        NATS_PREFIX: devPrefix,
        PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        SIGNING_KEY: key.signingKey,
        ROLE: 'gateway',
      },
      stdout: Bun.file(logFile),
      stderr: Bun.file(`${logFile}.err`),
    });
    try {
      await until(() => readFileSync(logFile, 'utf8').includes('release coordinator ready'), {
        timeoutMs: 20_000,
        message: 'the development gateway to start',
      });
      // give the start-up lines that follow "ready" their chance to be written
      await until(async () => (await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined))?.ok, {
        timeoutMs: 10_000,
        message: 'the development gateway to answer',
      });
    } finally {
      proc.kill('SIGTERM');
      await proc.exited;
      // its own prefix: the cluster removes only the streams of its own
      const nc = await connect({ servers: NATS_URL });
      await deleteStreams(nc, busNames(devPrefix));
      await nc.close();
    }
    const text = readFileSync(logFile, 'utf8') + readFileSync(`${logFile}.err`, 'utf8');
    const jwt = JWT_SHAPE.exec(text)?.[0];
    expect(jwt === undefined ? 'no token in the log' : `a token in the log: ${jwt.slice(0, 24)}…`).toBe(
      'no token in the log',
    );
  }, 60_000);
});
