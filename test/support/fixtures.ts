import { type MockHandle, type MockOptions, startMock } from '../../mock-task-service/src/index';
import { freePort } from './harness';
import type { Api } from './system';
import { until } from './until';

let studyCounter = 0;

/** A study id that is valid and unique within this process. */
export function studyId(): string {
  const n = (Date.now() % 1e6) * 100 + (studyCounter++ % 100);
  return `SD_${n
    .toString(32)
    .toUpperCase()
    .padStart(8, '0')
    .slice(-8)
    .replace(/[ILOU]/g, 'X')}`;
}

export async function createStudy(api: Api, kfId = studyId()): Promise<string> {
  const res = await api('POST', '/studies', { kf_id: kfId, name: `study ${kfId}` });
  if (res.status !== 201) throw new Error(`study not created: ${res.status} ${JSON.stringify(res.body)}`);
  return kfId;
}

/** Starts a mock with `count` named services and registers each with the coordinator. */
export async function registerMockServices(
  api: Api,
  count: number,
  options: MockOptions = {},
): Promise<{ mock: MockHandle; serviceIds: string[] }> {
  const mock = await startMock({ services: count, stageMs: 30, publishMs: 30, ...options });
  return { mock, serviceIds: await registerServices(api, mock) };
}

/** Registers every service of a running mock with the coordinator (each must be a 201); their ids. */
export async function registerServices(api: Api, mock: MockHandle): Promise<string[]> {
  const serviceIds: string[] = [];
  for (const name of mock.serviceNames) {
    const res = await api('POST', '/task-services', { name, url: mock.serviceUrl(name), author: 'test' });
    if (res.status !== 201)
      throw new Error(`service not registered: ${res.status} ${JSON.stringify(res.body)}`);
    serviceIds.push(res.body.kf_id);
  }
  return serviceIds;
}

export async function createRelease(api: Api, studies: string[], extra: Record<string, unknown> = {}) {
  const res = await api('POST', '/releases', { name: 'Test release', studies, ...extra });
  if (res.status !== 201) throw new Error(`release not created: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { kf_id: string; state: string; version: string; tasks: Array<{ kf_id: string }> };
}

export async function waitForState(
  api: Api,
  releaseId: string,
  state: string | string[],
  timeoutMs = 15_000,
) {
  const wanted = Array.isArray(state) ? state : [state];
  return until(
    async () => {
      const r = await api('GET', `/releases/${releaseId}`);
      return wanted.includes(r.body.state) ? r.body : undefined;
    },
    { timeoutMs, message: `release ${releaseId} to reach ${wanted.join('|')}` },
  );
}

// --- helpers added for the API / failure / callback suites ---

/** a TCP port on 127.0.0.1 that was free a moment ago (to give the gateway a fixed PUBLIC_URL) */
export { freePort };

/**
 * startTestSystem on a port chosen up front, with PUBLIC_URL set to it, so every absolute URL in
 * responses (related records and paging links) points at the running gateway.
 */
export async function startTestSystemWithPublicUrl(label: string, env: Record<string, string> = {}) {
  const { startTestSystem } = await import('./system');
  const port = await freePort();
  return startTestSystem(label, { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, ...env });
}

/** Every event message of a release (oldest first), read through GET /events?release=. */
export async function eventsOf(
  api: Api,
  releaseId: string,
): Promise<Array<{ kf_id: string; event_type: string; message: string; task: string | null }>> {
  const out: Array<{ kf_id: string; event_type: string; message: string; task: string | null }> = [];
  for (let offset = 0; ; offset += 100) {
    const res = await api('GET', `/events?release=${releaseId}&limit=100&offset=${offset}`);
    if (res.status !== 200) throw new Error(`events not listed: ${res.status} ${JSON.stringify(res.body)}`);
    out.push(...res.body.results);
    if (!res.body.next) break;
  }
  return out.reverse();
}

/** Waits until every task of the release is in one of the given states; returns the release. */
export async function waitForTaskStates(
  api: Api,
  releaseId: string,
  states: string | string[],
  timeoutMs = 15_000,
) {
  const wanted = Array.isArray(states) ? states : [states];
  return until(
    async () => {
      const r = await api('GET', `/releases/${releaseId}`);
      const tasks = r.body.tasks as Array<{ state: string }>;
      return tasks.length > 0 && tasks.every((t) => wanted.includes(t.state)) ? r.body : undefined;
    },
    { timeoutMs, message: `tasks of ${releaseId} to reach ${wanted.join('|')}` },
  );
}

// --- helpers added for the outcome / exactly-once / concurrency suites ---

/**
 * Disables every enabled task service, then starts a fresh mock with `count` services and
 * registers them, so the next releases get tasks only for these (tests of one file stay apart).
 */
export async function replaceServices(
  api: Api,
  count: number,
  options: MockOptions = {},
): Promise<{ mock: MockHandle; serviceIds: string[] }> {
  await disableAllServices(api);
  return registerMockServices(api, count, options);
}

/** Sets enabled=false on every enabled task service. */
export async function disableAllServices(api: Api): Promise<void> {
  for (;;) {
    const list = await api('GET', '/task-services?enabled=true&limit=100');
    if (list.status !== 200) throw new Error(`services not listed: ${list.status}`);
    const ids = (list.body.results as Array<{ kf_id: string }>).map((s) => s.kf_id);
    if (ids.length === 0) return;
    for (const id of ids) {
      const res = await api('PATCH', `/task-services/${id}`, { enabled: false });
      if (res.status !== 200) throw new Error(`service ${id} not disabled: ${res.status}`);
    }
  }
}

export interface TaskJson {
  kf_id: string;
  state: string;
  progress: number | null;
  service_name: string;
}

/** The tasks of a release body keyed by the name of their service. */
export function tasksByService(release: { tasks: TaskJson[] }): Map<string, TaskJson> {
  return new Map(release.tasks.map((x) => [x.service_name, x]));
}

/** Creates a release and waits until every task is running (the services still working). */
export async function createRunningRelease(api: Api, studies: string[], timeoutMs = 15_000) {
  const created = await createRelease(api, studies);
  await waitForState(api, created.kf_id, 'running', timeoutMs);
  await waitForTaskStates(api, created.kf_id, 'running', timeoutMs);
  return created;
}
