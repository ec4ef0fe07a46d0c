/**
 * mock-task-service: a scriptable stand-in for the task services a release coordinator drives.
 * Protocol: docs/task-service-protocol.md (GET /status, POST /tasks, PATCH callbacks).
 * One Bun.serve process serves the root service at `/` and any number of named services at `/s/<name>/`.
 */
import type { Server } from 'bun';
import { type ClaimValue, createTokenCheck } from './auth.ts';
import {
  type Behaviour,
  BehaviourBook,
  type BehaviourRule,
  type BehaviourTarget,
  DEFAULT_BEHAVIOUR,
  MOCK_ACTIONS,
  type MockAction,
  pickLatency,
  type TaskState,
} from './behaviour.ts';
import { handleControl } from './control.ts';
import {
  checkOutageStatus,
  checkWindow,
  type OutageOptions,
  type RestartOptions,
  reportRestartFailure,
} from './outage.ts';
import { parseScenario, type Scenario } from './scenario.ts';
import { advance, isFinal, nextChangeAt, progressOf, renderState, type Task, taskBody } from './tasks.ts';

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

interface Service {
  name: string;
  tasks: Map<string, Task>;
  flap: number;
  /** Date.now() until which the service is in an outage (0 = none). */
  outageUntil: number;
  /** Code answered during the outage; 0 = reset the connection. */
  outageStatus: number;
  /** Aborted when the service's requests in progress must end (outage, restart, stop). */
  interrupt: AbortController;
}

const CALLBACK_STATES: ReadonlySet<TaskState> = new Set(['staged', 'published', 'failed']);
const ACTIONS: ReadonlySet<string> = new Set(MOCK_ACTIONS);

function json(body: unknown, status: number): Response {
  return Response.json(body, { status });
}

/** A response whose body errors at once: Bun closes the socket before writing the status line. */
function droppedResponse(): Response {
  return new Response(
    new ReadableStream({
      start(controller) {
        controller.error();
      },
    }),
  );
}

function headersOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  req.headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

/** Validates a POST /tasks body; records its task, release and action on `rec`. Returns the problems, or null. */
function taskRequestProblem(input: unknown, rec: CallRecord): string | null {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return 'request body must be a JSON object';
  }
  const { action, task_id, release_id, studies } = input as Record<string, unknown>;
  if (typeof task_id === 'string') rec.taskId = task_id;
  if (typeof release_id === 'string') rec.releaseId = release_id;
  const problems: string[] = [];
  if (typeof action !== 'string' || !ACTIONS.has(action)) {
    problems.push(`action must be one of ${MOCK_ACTIONS.join(', ')}`);
  }
  if (typeof task_id !== 'string' || task_id === '')
    problems.push('task_id is required (a non-empty string)');
  if (typeof release_id !== 'string' || release_id === '') {
    problems.push('release_id is required (a non-empty string)');
  }
  if (studies !== undefined && (!Array.isArray(studies) || studies.some((s) => typeof s !== 'string'))) {
    problems.push('studies must be an array of strings');
  }
  if (problems.length > 0) return problems.join('; ');
  rec.action = action as MockAction;
  return null;
}

function newService(name: string): Service {
  return {
    name,
    tasks: new Map(),
    flap: 0,
    outageUntil: 0,
    outageStatus: 0,
    interrupt: new AbortController(),
  };
}

/** Ends the requests in progress at a service. */
function interrupt(svc: Service): void {
  svc.interrupt.abort();
  svc.interrupt = new AbortController();
}

/** A restart of the whole process in progress. */
interface Restarting {
  /** Date.now() when it listens again. */
  until: number;
  /** The socket is closed and the relisten timer armed. */
  closed: boolean;
  timer?: ReturnType<typeof setTimeout>;
  done: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** How long a restart keeps trying to bind its port again (someone else may hold it briefly). */
const RELISTEN_RETRY_MS = 5_000;

function serviceNamesFrom(services: number | string[] | undefined): string[] {
  if (services === undefined) return [];
  if (typeof services === 'number') return Array.from({ length: services }, (_, i) => `svc-${i}`);
  return [...services];
}

export async function startMock(opts: MockOptions = {}): Promise<MockHandle> {
  const scenario = opts.scenario ? parseScenario(opts.scenario) : {};
  const rootName = opts.name ?? scenario.name ?? 'mock-task-service';
  const names = serviceNamesFrom(opts.services ?? scenario.services);
  const coordinatorUrl = (opts.coordinatorUrl ?? scenario.coordinatorUrl)?.replace(/\/+$/, '');
  const callbackToken = opts.callbackToken ?? scenario.callbackToken;
  const maxCalls = opts.maxCalls ?? 100_000;
  if (opts.jwtRequiredClaims && !opts.jwksUrl) throw new Error('jwtRequiredClaims needs jwksUrl');

  const services = new Map<string, Service>();
  const root = newService(rootName);
  services.set(rootName, root);
  for (const n of names) {
    if (services.has(n)) throw new Error(`duplicate service name: ${n}`);
    services.set(n, newService(n));
  }
  const servicesOf = (service: string | undefined): Service[] =>
    service === undefined ? [...services.values()] : [requireService(service)];
  const requireService = (name: string): Service => {
    const s = services.get(name);
    if (!s) throw new Error(`unknown service: ${name}`);
    return s;
  };

  const base: Behaviour = {
    ...DEFAULT_BEHAVIOUR,
    stageMs: opts.stageMs ?? scenario.stageMs ?? DEFAULT_BEHAVIOUR.stageMs,
    publishMs: opts.publishMs ?? scenario.publishMs ?? DEFAULT_BEHAVIOUR.publishMs,
  };
  const staticRules: BehaviourRule[] = [];
  if (scenario.behaviour) staticRules.push({ behaviour: scenario.behaviour });
  if (opts.behaviour) staticRules.push({ behaviour: opts.behaviour });
  for (const [service, b] of Object.entries(scenario.perService ?? {}))
    staticRules.push({ service, behaviour: b });
  for (const [service, b] of Object.entries(opts.perService ?? {}))
    staticRules.push({ service, behaviour: b });
  const countedRules: BehaviourRule[] = [];
  for (const r of scenario.rules ?? []) {
    if (r.times !== undefined) countedRules.push(r);
    else staticRules.push({ service: r.service, action: r.action, behaviour: r.behaviour });
  }
  for (const r of staticRules) if (r.service !== undefined) requireService(r.service);
  for (const r of countedRules) if (r.service !== undefined) requireService(r.service);
  for (const step of scenario.timeline ?? []) if (step.service !== undefined) requireService(step.service);
  const book = new BehaviourBook(base, staticRules);
  const loadCounted = () => {
    for (const r of countedRules) book.set(r.behaviour, r.service, r.action, r.times);
  };
  loadCounted();

  const calls: CallRecord[] = [];
  const callbacks: CallbackRecord[] = [];
  let callbackErrors = 0;
  const stopController = new AbortController();
  const stopSignal = stopController.signal;
  /** Timers not tied to a request (callbacks 'after', timeline steps, restarts); stop() clears them. */
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const later = (ms: number, fn: () => void): ReturnType<typeof setTimeout> => {
    const t = setTimeout(
      () => {
        timers.delete(t);
        fn();
      },
      Math.max(0, ms),
    );
    timers.add(t);
    return t;
  };
  const cancelLater = (t: ReturnType<typeof setTimeout> | undefined) => {
    if (t === undefined) return;
    clearTimeout(t);
    timers.delete(t);
  };
  /** Waits ms inside a request; resolves early when `signal` aborts (outage, restart, stop). */
  const wait = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      if (ms <= 0 || signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });

  const record = (rec: CallRecord) => {
    calls.push(rec);
    if (calls.length > maxCalls + Math.ceil(maxCalls / 10)) calls.splice(0, calls.length - maxCalls);
  };

  // --- JWT verification (optional) ---
  const checkToken = opts.jwksUrl
    ? createTokenCheck({
        jwksUrl: opts.jwksUrl,
        audience: opts.jwtAudience,
        requiredClaims: opts.jwtRequiredClaims,
      })
    : null;

  // --- outages and restarts ---
  /** Set while the whole process is restarting (from restart() until it listens again). */
  let restarting: Restarting | null = null;
  /** Whether the service is in an outage now (clears an outage that has ended). */
  const inOutage = (svc: Service): boolean => {
    if (svc.outageUntil === 0) return false;
    if (svc.outageUntil > Date.now()) return true;
    svc.outageUntil = 0;
    return false;
  };
  /** Until when the service cannot answer or call back (outage or process restart); 0 = available. */
  const unavailableUntil = (svc: Service): number => {
    const until = Math.max(svc.outageUntil, restarting?.until ?? 0);
    return until > Date.now() ? until : 0;
  };
  /** The answer of a service in an outage, or of a request cut short by an outage, restart or stop. */
  const unavailable = (req: Request, svc: Service, rec: CallRecord): Response => {
    if (svc.outageStatus !== 0 && svc.outageUntil > Date.now() && !restarting && !stopSignal.aborted) {
      return answer(req, rec, { message: `${svc.name} is restarting (mock outage)` }, svc.outageStatus);
    }
    rec.status = 0;
    return droppedResponse();
  };

  // --- callbacks ---
  const sendCallback = async (svc: Service, t: Task, b: Behaviour): Promise<void> => {
    if (t.notified === t.state) return;
    t.notified = t.state;
    const now = Date.now();
    const body = { state: renderState(t.state, b), progress: Math.floor(progressOf(t, now)) };
    const url = `${coordinatorUrl ?? ''}/tasks/${encodeURIComponent(t.kf_id)}`;
    const rec: CallbackRecord = {
      service: svc.name,
      taskId: t.kf_id,
      url,
      body,
      at: now,
      status: 0,
      durationMs: 0,
    };
    callbacks.push(rec);
    if (!coordinatorUrl) {
      rec.error = 'no coordinatorUrl configured';
      callbackErrors++;
      return;
    }
    const token = b.callbackToken ?? callbackToken;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': `mock-task-service (${svc.name})`,
    };
    if (token && b.callbackAuth === 'bearer') headers.authorization = `Bearer ${token}`;
    try {
      const res = await fetch(url, {
        method: 'PATCH',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.any([AbortSignal.timeout(b.callbackTimeoutMs), stopSignal]),
      });
      rec.status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) {
        rec.error = `HTTP ${res.status}`;
        callbackErrors++;
      }
    } catch (e) {
      rec.error = (e as Error).name === 'TimeoutError' ? 'timeout' : String((e as Error).message ?? e);
      callbackErrors++;
    }
    rec.durationMs = Date.now() - now;
  };

  /** 'after' mode: a timer fires when the task's state changes next, and calls back. */
  const scheduleCallback = (svc: Service, t: Task, b: Behaviour) => {
    const now = Date.now();
    advance(t, now);
    const pendingNotify = CALLBACK_STATES.has(t.state) && t.notified !== t.state;
    const at = pendingNotify ? now + 1 : nextChangeAt(t);
    if (at === null) return;
    const fire = () => {
      if (svc.tasks.get(t.kf_id) !== t) return; // forgotten
      const back = unavailableUntil(svc);
      if (back !== 0) {
        later(back - Date.now(), fire); // a service that is down calls back once it is up again
        return;
      }
      advance(t, Date.now());
      const next = () => scheduleCallback(svc, t, b);
      if (CALLBACK_STATES.has(t.state) && t.notified !== t.state) void sendCallback(svc, t, b).then(next);
      else next();
    };
    later(at - now, fire);
  };

  // --- request handling ---
  const answer = (req: Request, rec: CallRecord, body: unknown, status: number): Response => {
    rec.status = req.signal.aborted ? 0 : status;
    return json(body, status);
  };

  /** Holds the request until the client aborts, or the service's requests are cut short. */
  const hang = (req: Request, svc: Service, rec: CallRecord, signal: AbortSignal) =>
    new Promise<Response>((resolve) => {
      rec.status = 0;
      const finish = () => {
        signal.removeEventListener('abort', finish);
        req.signal.removeEventListener('abort', finish);
        resolve(signal.aborted ? unavailable(req, svc, rec) : droppedResponse());
      };
      if (signal.aborted) return finish();
      signal.addEventListener('abort', finish);
      req.signal.addEventListener('abort', finish);
    });

  /** latency, drop, hang: common to every request. Returns a response to send, or null to continue. */
  const disturb = async (
    req: Request,
    svc: Service,
    rec: CallRecord,
    b: Behaviour,
    signal: AbortSignal,
    extra = 0,
  ): Promise<Response | null> => {
    const delay = pickLatency(b.latencyMs) + extra;
    if (delay > 0) {
      await wait(delay, signal);
      if (signal.aborted) return unavailable(req, svc, rec);
    }
    if (b.drop) {
      rec.status = 0;
      return droppedResponse();
    }
    if (b.hang) return hang(req, svc, rec, signal);
    return null;
  };

  const handleStatus = async (req: Request, svc: Service): Promise<Response> => {
    const rec: CallRecord = {
      service: svc.name,
      action: 'status',
      at: Date.now(),
      status: 0,
      headers: headersOf(req),
    };
    record(rec);
    if (inOutage(svc)) return unavailable(req, svc, rec);
    const signal = svc.interrupt.signal;
    const denied = checkToken && (await checkToken(rec.headers.authorization));
    if (denied) return answer(req, rec, { message: denied }, 401);
    const b = book.resolve(svc.name, 'status');
    const early = await disturb(req, svc, rec, b, signal, pickLatency(b.statusLatencyMs));
    if (early) return early;
    let down = b.statusMode === 'down';
    if (b.statusMode === 'flap')
      down = b.flapProbability > 0 ? Math.random() < b.flapProbability : svc.flap++ % 2 === 1;
    if (down) return answer(req, rec, { message: `${svc.name} is unavailable` }, b.statusDownCode);
    switch (b.statusShape) {
      case 'nested':
        return answer(req, rec, { message: { name: svc.name, version: b.version } }, 200);
      case 'bare':
        return answer(req, rec, {}, 200);
      case 'text':
        rec.status = req.signal.aborted ? 0 : 200;
        return new Response('OK', { headers: { 'content-type': 'text/plain' } });
      default:
        return answer(req, rec, { name: svc.name, message: 'ready', version: b.version }, 200);
    }
  };

  const handleTasks = async (req: Request, svc: Service): Promise<Response> => {
    const now = Date.now();
    const rec: CallRecord = {
      service: svc.name,
      action: 'invalid',
      at: now,
      status: 0,
      headers: headersOf(req),
    };
    record(rec);
    const text = await req.text();
    let input: unknown;
    let problem: string | null;
    try {
      input = JSON.parse(text);
      rec.body = input;
      problem = taskRequestProblem(input, rec);
    } catch {
      rec.body = text;
      problem = 'request body is not valid JSON';
    }
    if (inOutage(svc)) return unavailable(req, svc, rec);
    const signal = svc.interrupt.signal;
    const denied = checkToken && (await checkToken(rec.headers.authorization));
    if (denied) return answer(req, rec, { message: denied }, 401);
    if (problem !== null) return answer(req, rec, { message: problem }, 400);
    const { action, task_id, release_id, studies } = input as Record<string, unknown>;
    const act = action as MockAction;
    const b = book.resolve(svc.name, act);
    const early = await disturb(req, svc, rec, b, signal);
    if (early) return early;
    if (b.httpStatus !== 0) {
      return answer(
        req,
        rec,
        { message: `${svc.name} rejected ${act} (mock status ${b.httpStatus})` },
        b.httpStatus,
      );
    }
    /** The action's answer, unless the reply is lost after the action (dropReply). */
    const reply = (payload: unknown, status: number): Response => {
      if (!b.dropReply) return answer(req, rec, payload, status);
      rec.status = 0;
      return droppedResponse();
    };
    const at = Date.now();
    const id = task_id as string;
    let t = svc.tasks.get(id);
    if (act === 'initialize') {
      if (!t) {
        t = {
          kf_id: id,
          release_id: release_id as string,
          date_submitted: new Date(at).toISOString(),
          state: 'pending',
          phaseStart: 0,
          phaseMs: 0,
          failAt: null,
          progress: 0,
          starts: 0,
        };
        if (studies) t.studies = studies as string[];
        svc.tasks.set(id, t);
      }
      advance(t, at);
      return reply(taskBody(svc.name, t, at, b), 200);
    }
    if (!t) return reply({ message: `task ${id} not found` }, b.unknownTaskStatus);
    advance(t, at);
    switch (act) {
      case 'get_status':
        return reply(taskBody(svc.name, t, at, b), 200);
      case 'cancel':
        if (!isFinal(t.state)) {
          t.progress = progressOf(t, at);
          t.state = 'canceled';
          t.failAt = null;
        }
        return reply(taskBody(svc.name, t, at, b), 200);
      case 'start':
      case 'publish': {
        const from: TaskState = act === 'start' ? 'pending' : 'staged';
        if (act === 'start') t.starts++;
        if (t.state !== from) {
          if (act === 'publish' && t.state !== 'publishing' && t.state !== 'published') {
            return reply({ message: `cannot publish task ${id} in state ${t.state}` }, 400);
          }
          return reply(taskBody(svc.name, t, at, b), 200); // repeated start/publish: no restart
        }
        t.state = act === 'start' ? 'running' : 'publishing';
        t.phaseStart = at;
        t.phaseMs = b.immediate ? 0 : act === 'start' ? b.stageMs : b.publishMs;
        t.progress = 0;
        if (b.failAfterMs !== null) t.failAt = at + b.failAfterMs;
        else if (act === 'start') t.failAt = null;
        advance(t, at);
        if (b.replyWhenDone || b.callback === 'before') {
          // Reply only once the phase has ended (done, failed or canceled meanwhile).
          // The work goes on if the caller gives up: only an outage, a restart or stop() ends the wait.
          for (;;) {
            const changeAt = t.state === 'running' || t.state === 'publishing' ? nextChangeAt(t) : null;
            if (changeAt === null || signal.aborted) break;
            await wait(changeAt - Date.now(), signal);
            advance(t, Date.now());
          }
          if (signal.aborted) return unavailable(req, svc, rec);
          if (b.callback === 'before' && CALLBACK_STATES.has(t.state)) await sendCallback(svc, t, b);
        }
        if (b.callback !== 'never') scheduleCallback(svc, t, b);
        return reply(taskBody(svc.name, t, Date.now(), b), 200);
      }
    }
    return reply({ message: 'unreachable' }, 500);
  };

  const handle: MockHandle = {
    url: '',
    controlUrl: '',
    name: rootName,
    serviceNames: names,
    calls,
    callbacks,
    get callbackErrors() {
      return callbackErrors;
    },
    serviceUrl(name: string): string {
      requireService(name);
      return name === rootName ? handle.url : `${handle.url}/s/${encodeURIComponent(name)}`;
    },
    callsFor(filter) {
      return calls.filter(
        (c) =>
          (filter.service === undefined || c.service === filter.service) &&
          (filter.action === undefined || c.action === filter.action) &&
          (filter.taskId === undefined || c.taskId === filter.taskId) &&
          (filter.releaseId === undefined || c.releaseId === filter.releaseId),
      );
    },
    tasksWithoutCancel(releaseId) {
      const sent = new Map<string, { service: string; taskId: string }>();
      const canceled = new Set<string>();
      for (const c of calls) {
        if (c.releaseId !== releaseId || c.taskId === undefined || c.action === 'invalid') continue;
        const key = `${c.service}\u0000${c.taskId}`;
        if (c.action === 'cancel') canceled.add(key);
        else if (!sent.has(key)) sent.set(key, { service: c.service, taskId: c.taskId });
      }
      return [...sent].filter(([key]) => !canceled.has(key)).map(([, task]) => task);
    },
    setBehaviour(b, service, action) {
      if (service !== undefined) requireService(service);
      if (action !== undefined && action !== 'status' && !ACTIONS.has(action)) {
        throw new Error(`unknown action: ${action}`);
      }
      book.set(b, service, action);
    },
    behaviourOf(service, action) {
      requireService(service);
      return book.peek(service, action);
    },
    tasks(service?: string): TaskView[] {
      const now = Date.now();
      const out: TaskView[] = [];
      for (const s of servicesOf(service)) {
        for (const t of s.tasks.values()) {
          advance(t, now);
          out.push({
            service: s.name,
            kf_id: t.kf_id,
            release_id: t.release_id,
            state: t.state,
            progress: Math.floor(progressOf(t, now)),
            starts: t.starts,
          });
        }
      }
      return out;
    },
    reset() {
      calls.length = 0;
      callbacks.length = 0;
      callbackErrors = 0;
      book.reset();
      loadCounted();
      for (const s of services.values()) {
        s.flap = 0;
        s.outageUntil = 0;
      }
    },
    forgetTasks(service?: string) {
      for (const s of servicesOf(service)) s.tasks.clear();
    },
    outage(service, ms, options = {}) {
      checkWindow('outage', ms);
      checkOutageStatus(options.httpStatus);
      const list = servicesOf(service);
      const until = Date.now() + ms;
      for (const s of list) {
        s.outageUntil = ms > 0 ? until : 0;
        s.outageStatus = options.httpStatus ?? 0;
        if (options.forget) s.tasks.clear();
        if (ms > 0) interrupt(s);
      }
    },
    restart(ms, options = {}) {
      checkWindow('restart', ms);
      if (stopSignal.aborted) return Promise.reject(new Error('the mock is stopped'));
      if (options.forget) handle.forgetTasks();
      const until = Date.now() + ms;
      if (restarting) {
        restarting.until = until;
        if (restarting.closed) {
          cancelLater(restarting.timer);
          armRelisten(restarting);
        }
        return restarting.done;
      }
      let resolve = () => {};
      let reject: (e: Error) => void = () => {};
      const done = new Promise<void>((ok, fail) => {
        resolve = ok;
        reject = fail;
      });
      const d: Restarting = { until, closed: false, resolve, reject, done };
      restarting = d;
      for (const s of services.values()) interrupt(s);
      // One turn later, so that the answer to the request asking for the restart (control API) is sent.
      d.timer = later(0, () => {
        void server.stop(true).then(() => {
          if (restarting !== d) return; // stopped meanwhile
          d.closed = true;
          armRelisten(d);
        });
      });
      return done;
    },
    async stop() {
      if (stopSignal.aborted) return;
      stopController.abort();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of services.values()) s.interrupt.abort();
      const wasRestarting = restarting;
      restarting = null;
      wasRestarting?.resolve();
      await server.stop(true);
    },
  };

  const armRelisten = (d: Restarting) => {
    d.timer = later(d.until - Date.now(), () => relisten(d));
  };
  const relisten = (d: Restarting) => {
    if (restarting !== d) return;
    try {
      server = listen(port);
    } catch (e) {
      if (Date.now() - d.until < RELISTEN_RETRY_MS) {
        d.timer = later(50, () => relisten(d));
        return;
      }
      restarting = null;
      d.reject(new Error(`cannot listen again on port ${port}: ${(e as Error).message}`));
      return;
    }
    restarting = null;
    d.resolve();
  };

  const fetchHandler = async (req: Request): Promise<Response> => {
    if (restarting) return droppedResponse(); // arrived in the turn between restart() and the close
    const url = req.url;
    const start = url.indexOf('/', url.indexOf('//') + 2);
    const q = url.indexOf('?', start);
    const path = q < 0 ? url.slice(start) : url.slice(start, q);
    if (path.startsWith('/_control')) return handleControl(req, path.slice('/_control'.length), controlApi);
    let svc: Service | undefined = root;
    let rest = path;
    if (path.startsWith('/s/')) {
      const slash = path.indexOf('/', 3);
      const raw = slash < 0 ? path.slice(3) : path.slice(3, slash);
      svc = services.get(raw.includes('%') ? decodeURIComponent(raw) : raw);
      rest = slash < 0 ? '' : path.slice(slash);
    }
    if (!svc) return json({ message: 'unknown service' }, 404);
    if (rest === '/tasks') {
      if (req.method === 'POST') return handleTasks(req, svc);
    } else if (rest === '/status') {
      if (req.method === 'GET') return handleStatus(req, svc);
    } else {
      return json({ message: `not found: ${path}` }, 404);
    }
    return json({ message: `method ${req.method} not allowed on ${path}` }, 405);
  };
  const listen = (listenPort: number): Server<undefined> =>
    Bun.serve({
      port: listenPort,
      hostname: opts.hostname ?? '127.0.0.1',
      idleTimeout: 0, // hung and slow replies stay open until the client gives up
      development: false,
      fetch: fetchHandler,
      error(e) {
        return json({ message: `mock-task-service error: ${e.message}` }, 500);
      },
    });

  let server = listen(opts.port ?? 0);
  const port = server.port as number;
  const host = server.hostname === '0.0.0.0' || server.hostname === '::' ? '127.0.0.1' : server.hostname;
  handle.url = `http://${host?.includes(':') ? `[${host}]` : host}:${server.port}`;
  handle.controlUrl = `${handle.url}/_control`;

  const controlApi = {
    handle,
    setRule: (b: Partial<Behaviour>, service?: string, action?: BehaviourTarget, times?: number) => {
      if (service !== undefined) requireService(service);
      book.set(b, service, action, times);
    },
  };

  for (const step of scenario.timeline ?? []) {
    later(step.atMs, () => {
      if (step.behaviour) book.set(step.behaviour, step.service, step.action);
      if (step.forget) handle.forgetTasks(step.service);
      if (step.outage) handle.outage(step.service, step.outage.ms, step.outage);
      if (step.restart) handle.restart(step.restart.ms, step.restart).catch(reportRestartFailure);
    });
  }

  return handle;
}
