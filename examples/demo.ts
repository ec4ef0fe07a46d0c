#!/usr/bin/env bun
/**
 * `npm run demo`: the coordinator (all roles, embedded defaults unless DATABASE_URL/NATS_URL are
 * set) plus three mock task services, registered and ready; then one release is driven through
 * to `published` so a newcomer sees it move. Keeps running until Ctrl-C, printing the commands
 * to drive more releases by hand. `--no-run` skips the automatic release.
 */
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { type Config, ConfigError, loadConfig } from '../src/config';
import { authConfigProblem } from '../src/infra/auth';
import { createLogger } from '../src/infra/logger';
import { explainStartFailure, exposureWarning, stopOnSignals } from '../src/startup';
import { type System, startSystem } from '../src/system';

const SERVICES = ['search-index', 'file-portal', 'variant-store'];
const STUDY = 'SD_DEM00001';

const env = {
  ALLOW_PRIVATE_SERVICE_URLS: 'true',
  POLL_INTERVAL_MS: '1000',
  SCHEDULER_TICK_MS: '250',
  ...process.env,
};
let config: Config;
try {
  config = loadConfig(env);
  // the same rule as npm start, before anything starts: production needs an identity provider
  const problem = authConfigProblem(config);
  if (problem) throw new ConfigError(problem);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(2);
}
const log = await createLogger({
  level: process.env.LOG_LEVEL ?? 'warn',
  format: config.LOG_FORMAT,
  production: false,
});
let system: System;
try {
  system = await startSystem(config, log);
} catch (err) {
  const failure = explainStartFailure(err, config, 'npm run demo');
  console.error(failure.message);
  process.exit(failure.exitCode);
}
const exposure = exposureWarning(config.HOST, system.auth.mode);
if (exposure) console.warn(`\n${exposure}\n`);
const base = system.config.PUBLIC_URL;
// demo mode has no identity provider: the coordinator verifies tokens signed with its own key
const token = system.auth.mint
  ? await system.auth.mint({ username: 'demo-admin', roles: ['ADMIN'], ttl: '12h' })
  : undefined;
const bearer = token ? ` -H "Authorization: Bearer $TOKEN"` : '';
const mockPort = Number(process.env.DEMO_MOCK_PORT ?? config.PORT + 1);
let mock: MockHandle;
try {
  mock = await startMock({
    port: mockPort,
    services: SERVICES,
    stageMs: 4_000,
    publishMs: 2_000,
    coordinatorUrl: base,
    behaviour: { callback: 'after' },
    // the mock services call back PATCH /tasks/{id} with a client-credentials (task-service) token
    callbackToken: system.auth.mint
      ? await system.auth.mint({ username: 'demo-task-services', roles: [], service: true, ttl: '12h' })
      : undefined,
  });
} catch (err) {
  const inUse = (err as { code?: string }).code === 'EADDRINUSE' || /in use/i.test(String(err));
  console.error(
    inUse
      ? `Port ${mockPort} for the demo's task services is already in use by another program. Stop it, or choose other ports, e.g. PORT=3100 npm run demo (the services then listen on PORT+1), or set DEMO_MOCK_PORT.`
      : `The demo's task services could not start: ${(err as Error).message}`,
  );
  await system.stop();
  process.exit(1);
}

stopOnSignals(
  async () => {
    console.log('stopping…');
    await mock.stop();
    await system.stop();
  },
  (_signal, ms) => console.log(`stopped in ${ms} ms`),
);

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const existing = (await api('GET', '/task-services?limit=100')).body.results as Array<{
  kf_id: string;
  url: string;
}>;
for (const name of SERVICES) {
  const url = mock.serviceUrl(name);
  if (existing.some((s) => s.url === url)) continue;
  const res = await api('POST', '/task-services', { name, url, description: `demo ${name}`, author: 'demo' });
  if (res.status !== 201) throw new Error(`could not register ${name}: ${JSON.stringify(res.body)}`);
}
await api('POST', '/studies', { kf_id: STUDY, name: 'Demo study' });

const line = '─'.repeat(72);
console.log(`\n${line}\n Release Coordinator demo\n${line}`);
console.log(
  ` API           ${base}   (database: ${system.database.kind}, NATS prefix: ${config.NATS_PREFIX})`,
);
for (const name of SERVICES) console.log(` task service  ${name.padEnd(14)} ${mock.serviceUrl(name)}`);
console.log(` API docs      ${base}/docs   (OpenAPI: ${base}/openapi.json)`);
if (token) {
  console.log(`\n An ADMIN token for 12 hours (writes need it; reads are public):
   export TOKEN=${token}
 The same with the command line (\`npm run rc -- …\`, or \`rc …\` once bin/ is on your PATH):
   export RC_URL=${base}
   export RC_TOKEN=$(npm run --silent rc -- token --dev)
   npm run --silent rc -- releases create --name "My release" --study ${STUDY}`);
} else {
  console.log(`\n Auth mode "${system.auth.mode}": bring a token from your identity provider as $TOKEN.`);
}
console.log(`\n Drive a release yourself:
   curl -s -XPOST ${base}/releases${bearer} -H 'content-type: application/json' \\
        -d '{"name":"My release","studies":["${STUDY}"]}'
   curl -s ${base}/releases/RE_XXXXXXXX            # watch state: initializing → running → staged
   curl -s -XPOST ${base}/releases/RE_XXXXXXXX/publish${bearer}
   curl -s -XDELETE ${base}/releases/RE_XXXXXXXX${bearer}    # cancel instead
   curl -s '${base}/events?release=RE_XXXXXXXX'
${line}\n`);

if (!process.argv.includes('--no-run')) {
  const created = await api('POST', '/releases', { name: 'Demo release', studies: [STUDY], author: 'demo' });
  const id = created.body.kf_id as string;
  console.log(`created ${id} (version ${created.body.version}), state ${created.body.state}`);
  let last = '';
  const deadline = Date.now() + 60_000;
  let published = false;
  while (Date.now() < deadline) {
    const r = (await api('GET', `/releases/${id}`)).body;
    const tasks = (r.tasks as Array<{ service_name: string; state: string; progress: number | null }>)
      .map((t) => `${t.service_name}:${t.state}${t.progress != null ? `(${Math.round(t.progress)}%)` : ''}`)
      .join('  ');
    const now = `${r.state.padEnd(11)} ${tasks}`;
    if (now !== last) console.log(`  ${id}  ${now}`);
    last = now;
    if (r.state === 'staged' && !published) {
      published = true;
      console.log(`staged: publishing ${id}`);
      await api('POST', `/releases/${id}/publish`);
    }
    if (['published', 'canceled', 'failed'].includes(r.state)) {
      console.log(`\n${id} finished: ${r.state}, version ${r.version}\n`);
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
console.log('coordinator and mock services keep running; Ctrl-C stops them.');
