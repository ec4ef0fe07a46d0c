/**
 * Callbacks to the coordinator: PATCH {coordinatorUrl}/tasks/{task_id} with {state, progress},
 * once per state, either before the start/publish reply or after it (on a timer).
 */
import type { Behaviour, TaskState } from './behaviour.ts';
import type { CallbackRecord } from './index.ts';
import type { MockState, Service } from './state.ts';
import { advance, nextChangeAt, progressOf, renderState, type Task } from './tasks.ts';

/** States a task calls back about. */
export const CALLBACK_STATES: ReadonlySet<TaskState> = new Set(['staged', 'published', 'failed']);

function callbackHeaders(state: MockState, svc: Service, b: Behaviour): Record<string, string> {
  const token = b.callbackToken ?? state.callbackToken;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `mock-task-service (${svc.name})`,
  };
  if (token && b.callbackAuth === 'bearer') headers.authorization = `Bearer ${token}`;
  return headers;
}

/** Sends the PATCH of `rec` and writes its outcome (status, error) into `rec`. */
async function deliver(state: MockState, rec: CallbackRecord, svc: Service, b: Behaviour): Promise<void> {
  try {
    const res = await fetch(rec.url, {
      method: 'PATCH',
      headers: callbackHeaders(state, svc, b),
      body: JSON.stringify(rec.body),
      signal: AbortSignal.any([AbortSignal.timeout(b.callbackTimeoutMs), state.stopSignal]),
    });
    rec.status = res.status;
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) {
      rec.error = `HTTP ${res.status}`;
      state.callbackErrors++;
    }
  } catch (e) {
    rec.error = (e as Error).name === 'TimeoutError' ? 'timeout' : String((e as Error).message ?? e);
    state.callbackErrors++;
  }
}

/** Calls back the task's current state, unless it was already called back. */
export async function sendCallback(state: MockState, svc: Service, t: Task, b: Behaviour): Promise<void> {
  if (t.notified === t.state) return;
  t.notified = t.state;
  const now = Date.now();
  const rec: CallbackRecord = {
    service: svc.name,
    taskId: t.kf_id,
    url: `${state.coordinatorUrl ?? ''}/tasks/${encodeURIComponent(t.kf_id)}`,
    body: { state: renderState(t.state, b), progress: Math.floor(progressOf(t, now)) },
    at: now,
    status: 0,
    durationMs: 0,
  };
  state.callbacks.push(rec);
  if (!state.coordinatorUrl) {
    rec.error = 'no coordinatorUrl configured';
    state.callbackErrors++;
    return;
  }
  await deliver(state, rec, svc, b);
  rec.durationMs = Date.now() - now;
}

/** 'after' mode: a timer fires when the task's state changes next, and calls back. */
export function scheduleCallback(state: MockState, svc: Service, t: Task, b: Behaviour): void {
  const now = Date.now();
  advance(t, now);
  const pendingNotify = CALLBACK_STATES.has(t.state) && t.notified !== t.state;
  const at = pendingNotify ? now + 1 : nextChangeAt(t);
  if (at === null) return;
  const fire = () => {
    if (svc.tasks.get(t.kf_id) !== t) return; // forgotten
    const back = state.unavailableUntil(svc);
    if (back !== 0) {
      state.later(back - Date.now(), fire); // a service that is down calls back once it is up again
      return;
    }
    advance(t, Date.now());
    const next = () => scheduleCallback(state, svc, t, b);
    if (CALLBACK_STATES.has(t.state) && t.notified !== t.state)
      void sendCallback(state, svc, t, b).then(next);
    else next();
  };
  state.later(at - now, fire);
}
