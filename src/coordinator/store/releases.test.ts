import { describe, expect, test } from 'bun:test';
import { commandsFor, copyView, type LockedTaskRow, loadedOf, releaseRow, taskViewOf } from './releases';

/*
 * The coordinator store's mapping of rows to the lifecycle's views (no database: rows as either
 * driver returns them). The statements themselves are checked against Postgres and PGlite by
 * test/store-contract.test.ts.
 */

const AT = '2026-11-23T10:00:00.000Z';
const epoch = Date.parse(AT);
const defaults = { request: 15_000, start: 300_000, publish: 300_000 };

const releaseOf = (extra: Record<string, unknown> = {}) =>
  releaseRow.map({
    kf_id: 'RE_00000001',
    name: 'November',
    description: '',
    state: 'running',
    version: '0.1.0',
    is_major: true,
    tags: [],
    author: 'ann',
    created_at: AT,
    seq: 1,
    states_at: {},
    state_changed_at: AT,
    ...extra,
  });

const taskRow = (extra: Partial<LockedTaskRow> = {}): LockedTaskRow => ({
  kf_id: 'TA_00000001',
  state: 'running',
  progress: '0.5',
  release_id: 'RE_00000001',
  task_service_id: 'TS_00000001',
  created_at: AT,
  service_name: 'search-index',
  awaiting: null,
  awaiting_until: null,
  unconfirmed_until: null,
  unreachable_since: null,
  poll_delay_ms: null,
  hinted_at: null,
  states_at: {},
  url: 'https://search.example.org',
  token_audience: null,
  request_timeout_ms: null,
  start_timeout_ms: null,
  publish_timeout_ms: null,
  ...extra,
});

describe('a release row as the lifecycle sees it', () => {
  test('state, version and kind; no halt and no publish request when none was recorded', () => {
    const { view } = loadedOf(releaseOf());
    expect(view).toEqual({
      kfId: 'RE_00000001',
      state: 'running',
      version: '0.1.0',
      isMajor: true,
      halt: null,
      publish: null,
      highestPublished: null,
      tasks: [],
    });
  });

  test('what halted it and who asked to publish, times as epoch milliseconds', () => {
    const { view } = loadedOf(
      releaseOf({
        state: 'canceling',
        halt_reason: 'fail',
        halt_task_id: 'TA_00000001',
        halt_service_id: 'TS_00000001',
        halt_service_name: 'search-index',
        halt_message: 'HTTP 500',
        halted_by: null,
        halted_at: new Date(AT),
        published_by: 'bob',
        publish_requested_at: AT,
      }),
    );
    expect(view.halt).toEqual({
      reason: 'fail',
      taskId: 'TA_00000001',
      serviceId: 'TS_00000001',
      serviceName: 'search-index',
      message: 'HTTP 500',
      by: null,
      at: epoch,
    });
    expect(view.publish).toEqual({ by: 'bob', at: epoch });
  });
});

describe('a task row (joined with its service) as the lifecycle sees it', () => {
  test('times as epoch milliseconds from text or Date; missing ones stay null; progress a number', () => {
    const view = taskViewOf(
      taskRow({
        awaiting: 'start',
        awaiting_until: AT,
        unconfirmed_until: new Date(epoch + 1),
        unreachable_since: null,
        poll_delay_ms: 2_000,
        hinted_at: '2026-11-23 10:00:00.002+00',
      }),
      defaults,
    );
    expect(view).toEqual({
      kfId: 'TA_00000001',
      taskServiceId: 'TS_00000001',
      serviceName: 'search-index',
      state: 'running',
      progress: 0.5,
      awaiting: 'start',
      awaitingUntil: epoch,
      unconfirmedUntil: epoch + 1,
      unreachableSince: null,
      pollDelayMs: 2_000,
      hintedAt: epoch + 2,
      deadlines: defaults,
    });
  });

  test('a service’s own deadlines override the defaults, one by one', () => {
    expect(taskViewOf(taskRow({ start_timeout_ms: 5_000 }), defaults).deadlines).toEqual({
      request: 15_000,
      start: 5_000,
      publish: 300_000,
    });
    expect(taskViewOf(taskRow({ progress: null }), defaults).progress).toBeNull();
  });
});

describe('views and commands', () => {
  test('copyView copies tasks, halt and publish: changing the copy leaves the loaded view as it was', () => {
    const loaded = loadedOf(releaseOf({ halt_reason: 'cancel', halted_at: AT, publish_requested_at: AT }));
    loaded.view.tasks.push(taskViewOf(taskRow(), defaults));
    const copy = copyView(loaded.view);
    copy.tasks[0]!.state = 'failed';
    copy.halt!.message = 'changed';
    copy.publish!.by = 'someone';
    expect(loaded.view.tasks[0]!.state).toBe('running');
    expect(loaded.view.halt!.message).toBe('');
    expect(loaded.view.publish!.by).toBeNull();
  });

  test('a command goes to its task’s service URL with its audience; its id is derived from what caused it', () => {
    const loaded = loadedOf(releaseOf());
    loaded.view.tasks.push(taskViewOf(taskRow(), defaults));
    loaded.services.set('TS_00000001', { url: 'https://search.example.org', audience: 'search' });
    expect(
      commandsFor(loaded, [{ action: 'publish', taskId: 'TA_00000001', timeoutMs: 9 }], 'msg-1'),
    ).toEqual([
      {
        id: 'msg-1:publish:TA_00000001',
        action: 'publish',
        taskId: 'TA_00000001',
        serviceId: 'TS_00000001',
        url: 'https://search.example.org',
        audience: 'search',
        timeoutMs: 9,
      },
    ]);
  });
});
