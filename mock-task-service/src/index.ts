/**
 * mock-task-service: a scriptable stand-in for the task services a release coordinator drives.
 * Protocol: docs/task-service-protocol.md (GET /status, POST /tasks, PATCH callbacks).
 * One Bun.serve process serves the root service at `/` and any number of named services at `/s/<name>/`.
 */
import type { ClaimValue } from './auth.ts';
import type { Behaviour, BehaviourTarget, MockAction } from './behaviour.ts';
import { Mock } from './mock.ts';
import { type OutageOptions, type RestartOptions, reportRestartFailure } from './outage.ts';
import type { Scenario, ScenarioStep } from './scenario.ts';
import { MockState } from './state.ts';

export type { ClaimValue } from './auth.ts';
export type {
  Behaviour,
  BehaviourRule,
  BehaviourTarget,
  CallbackAuth,
  CallbackMode,
  Latency,
  MockAction,
  ProgressForm,
  StatusMode,
  StatusShape,
  TaskState,
} from './behaviour.ts';
export { behaviourSchema, DEFAULT_BEHAVIOUR } from './behaviour.ts';
export type { OutageOptions, RestartOptions } from './outage.ts';
export type { Scenario, ScenarioRule, ScenarioStep } from './scenario.ts';
export { loadScenario, parseScenario } from './scenario.ts';

/** One request received by a mock service. */
export interface CallRecord {
  service: string;
  /** 'invalid' when the body was not a valid task request (answered 400, or 401/outage first). */
  action: MockAction | 'status' | 'invalid';
  taskId?: string;
  releaseId?: string;
  /** Date.now() when the request arrived. */
  at: number;
  /** HTTP status answered; 0 while pending, or if hung/dropped/reset/aborted. */
  status: number;
  /** Request headers, lowercased keys (authorization, user-agent, ...). */
  headers: Record<string, string>;
  /** Parsed JSON body (or the raw text when it was not JSON). */
  body?: unknown;
}

/** One callback the mock sent to the coordinator (PATCH {coordinatorUrl}/tasks/{task_id}). */
export interface CallbackRecord {
  service: string;
  taskId: string;
  url: string;
  body: { state: string; progress: number };
  /** Date.now() when it was sent. */
  at: number;
  /** HTTP status of the coordinator's answer; 0 on a network error or timeout. */
  status: number;
  /** Set when the callback failed (network error, timeout, non-2xx). */
  error?: string;
  durationMs: number;
}

export interface MockOptions {
  /** 0 (default) = random free port. */
  port?: number;
  /** Default '127.0.0.1'. */
  hostname?: string;
  /** Extra named services under /s/<name>/...; a number n gives svc-0..svc-(n-1). */
  services?: number | string[];
  /** Name of the root service (GET /status, POST /tasks at /). Default 'mock-task-service'. */
  name?: string;
  /** Default time from start to staged (50). */
  stageMs?: number;
  /** Default time from publish to published (50). */
  publishMs?: number;
  /** Defaults for every service. */
  behaviour?: Partial<Behaviour>;
  /** Per-service overrides. */
  perService?: Record<string, Partial<Behaviour>>;
  /** Base URL for callbacks: PATCH {coordinatorUrl}/tasks/{task_id}. */
  coordinatorUrl?: string;
  /** Bearer token for callbacks. */
  callbackToken?: string;
  /** If set, incoming requests need `Authorization: Bearer <JWT>` valid against this JWKS (else 401). */
  jwksUrl?: string;
  /** Expected JWT audience (optional; any string, not necessarily the service URL). */
  jwtAudience?: string;
  /** With jwksUrl: claims the token must carry with exactly these values, e.g. { gty: 'client-credentials' }. */
  jwtRequiredClaims?: Record<string, ClaimValue>;
  /** Same shape as a scenario JSON file; explicit options win over its fields. */
  scenario?: Scenario;
  /** Keep at most this many CallRecords (oldest dropped). Default 100,000. */
  maxCalls?: number;
}

/** A task as `tasks()` lists it: the contract's {kf_id, release_id, state, progress}, plus service and starts. */
export interface TaskView {
  service: string;
  kf_id: string;
  release_id: string;
  state: string;
  progress: number;
  starts: number;
}

export interface MockHandle {
  /** Base URL of the root service, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Base URL of a named service (or of the root service by its name). */
  serviceUrl(name: string): string;
  /** Names of the named services. */
  serviceNames: string[];
  /** Live array, appended as requests arrive. */
  calls: CallRecord[];
  callsFor(filter: CallFilter): CallRecord[];
  /** service omitted = all services; action given = only for that action ('status' = GET /status). */
  setBehaviour(b: Partial<Behaviour>, service?: string, action?: BehaviourTarget): void;
  /** Tasks of one service (or all), canonical state names, integer progress (plus service and start count). */
  tasks(service?: string): TaskView[];
  /** Clear calls, callbacks and runtime behaviours (back to the options); tasks are kept. */
  reset(): void;
  /** Forget tasks (all services, or one), as after a restart. */
  forgetTasks(service?: string): void;
  /**
   * For the next `ms`, every request to the service (every service when omitted), /status and
   * /tasks, is reset without an answer (or answered `httpStatus`); requests in progress end the
   * same way. `ms` 0 ends an outage early. Callbacks due meanwhile are sent when it ends.
   */
  outage(service: string | undefined, ms: number, options?: OutageOptions): void;
  /**
   * Restarts the process: closes the listening socket and every connection (clients see
   * ECONNREFUSED or a reset), listens again on the same port after `ms`. Resolves once it listens
   * again (or on stop()). Restarting while down moves the end of the window to `ms` from now.
   */
  restart(ms: number, options?: RestartOptions): Promise<void>;
  /** Tasks of a release that were sent some action but never a cancel: [{service, taskId}]. */
  tasksWithoutCancel(releaseId: string): Array<{ service: string; taskId: string }>;
  stop(): Promise<void>;

  // Additions beyond the contract.
  /** Name of the root service. */
  name: string;
  /** Callbacks sent to the coordinator (live array). */
  callbacks: CallbackRecord[];
  /** Number of callbacks that failed (network error, timeout, non-2xx). */
  readonly callbackErrors: number;
  /** Effective behaviour of a service for an action (inspection only). */
  behaviourOf(service: string, action: BehaviourTarget): Behaviour;
  /** Base URL of the control API. */
  controlUrl: string;
}

/** Filter of callsFor (every given field must match). */
export interface CallFilter {
  service?: string;
  action?: string;
  taskId?: string;
  releaseId?: string;
}

/** Starts a mock: the root service, the named services and the control API, on one port. */
export async function startMock(opts: MockOptions = {}): Promise<MockHandle> {
  const state = new MockState(opts);
  const mock = new Mock(state, opts);
  scheduleTimeline(state, mock, state.scenario.timeline ?? []);
  return mock;
}

/** The scenario's timeline: each step changes behaviour, forgets tasks, or begins an outage or restart. */
function scheduleTimeline(state: MockState, mock: MockHandle, timeline: ScenarioStep[]): void {
  for (const step of timeline) {
    state.later(step.atMs, () => {
      if (step.behaviour) state.book.set(step.behaviour, step.service, step.action);
      if (step.forget) mock.forgetTasks(step.service);
      if (step.outage) mock.outage(step.service, step.outage.ms, step.outage);
      if (step.restart) mock.restart(step.restart.ms, step.restart).catch(reportRestartFailure);
    });
  }
}
