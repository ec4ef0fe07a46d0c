import { describe, expect, test } from 'bun:test';
import type { ReleaseView, TaskView } from '../domain/lifecycle/lifecycle';
import type { ReleaseRecord } from '../domain/representations';
import { urls } from '../domain/urls';
import { buildNotification, NOTIFIED_TASKS_MAX, type NotifiedRelease } from './notifications';

const RE = 'RE_00000001';
const at = new Date('2026-12-01T00:00:00Z');

function release(tasks: number): { view: ReleaseView; notified: NotifiedRelease } {
  const taskViews: TaskView[] = Array.from({ length: tasks }, (_, i) => ({
    kfId: `TA_${String(i).padStart(8, '0')}`,
    taskServiceId: `TS_${String(i).padStart(8, '0')}`,
    serviceName: `service-${i}`,
    state: i % 10 === 0 ? 'running' : 'staged',
    progress: 100,
    awaiting: null,
    awaitingUntil: null,
    unconfirmedUntil: null,
    unreachableSince: null,
    pollDelayMs: null,
    hintedAt: null,
    deadlines: { request: 1_000, start: 1_000, publish: 1_000 },
  })) as TaskView[];
  const view = {
    kfId: RE,
    state: 'staged',
    version: '0.1.1',
    isMajor: false,
    halt: null,
    publish: null,
    highestPublished: null,
    tasks: taskViews,
  } as ReleaseView;
  const row: ReleaseRecord = {
    kfId: RE,
    name: 'big',
    description: '',
    state: 'running',
    version: '0.1.1',
    isMajor: false,
    tags: [],
    author: 'a',
    createdAt: at,
    stateChangedAt: at,
    haltReason: null,
    haltTaskId: null,
    haltServiceId: null,
    haltServiceName: null,
    haltMessage: null,
    haltedBy: null,
    haltedAt: null,
    publishedBy: null,
    publishRequestedAt: null,
    publishedAt: null,
    statesAt: {},
  };
  const taskMeta = new Map(
    taskViews.map((t) => [t.kfId, { createdAt: at, serviceName: t.serviceName, statesAt: {} }]),
  );
  return { view, notified: { row, taskMeta, studies: ['SD_00000001'] } };
}

const staged = { entity: 'release', kfId: RE, from: 'running', to: 'staged' } as const;
const build = (tasks: number) => {
  const { view, notified } = release(tasks);
  return buildNotification(
    notified,
    view,
    staged,
    [],
    { urls: urls({ PUBLIC_URL: 'http://localhost:3000' }), source: 'src', time: new Date().toISOString() },
    'id',
  );
};

describe('release notifications stay within what NATS takes (1 MiB)', () => {
  test(`up to ${NOTIFIED_TASKS_MAX} tasks: every task is listed`, () => {
    const n = build(NOTIFIED_TASKS_MAX);
    expect(n.data.tasks).toHaveLength(NOTIFIED_TASKS_MAX);
    expect(n.data.tasks_total).toBeUndefined();
  });

  test('more: no task list, the counts by state instead, and 10,000 tasks fit in a message', () => {
    const n = build(10_000);
    expect(n.data.tasks).toEqual([]);
    expect(n.data.tasks_total).toBe(10_000);
    expect(n.data.tasks_by_state).toEqual({ running: 1_000, staged: 9_000 });
    expect(JSON.stringify(n).length).toBeLessThan(64 * 1024);
    expect(JSON.stringify(build(NOTIFIED_TASKS_MAX)).length).toBeLessThan(512 * 1024);
  });
});
