import { type MockHandle, type MockOptions, startMock } from '../../mock-task-service/src/index';
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
  const serviceIds: string[] = [];
  for (const name of mock.serviceNames) {
    const res = await api('POST', '/task-services', { name, url: mock.serviceUrl(name), author: 'test' });
    if (res.status !== 201)
      throw new Error(`service not registered: ${res.status} ${JSON.stringify(res.body)}`);
    serviceIds.push(res.body.kf_id);
  }
  return { mock, serviceIds };
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
