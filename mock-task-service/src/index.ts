/**
 * mock-task-service: a scriptable stand-in for the task services a release coordinator drives.
 * Protocol: /work/shared/spec/task-service-protocol.md (GET /status, POST /tasks, PATCH callbacks).
 * One Bun.serve process serves the root service at `/` and any number of named services at `/s/<name>/`.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
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
import { parseScenario, type Scenario } from './scenario.ts';
import { advance, isFinal, nextChangeAt, progressOf, renderState, type Task, taskBody } from './tasks.ts';

export type {
  Behaviour,
  BehaviourRule,
  BehaviourTarget,
  CallbackMode,
  Latency,
  MockAction,
  ProgressForm,
  StatusMode,
  StatusShape,
  TaskState,
} from './behaviour.ts';
export { behaviourSchema, DEFAULT_BEHAVIOUR } from './behaviour.ts';
export type { Scenario, ScenarioRule, ScenarioStep } from './scenario.ts';
export { loadScenario, parseScenario } from './scenario.ts';

/** One request received by a mock service. */
export interface CallRecord {
  service: string;
  action: MockAction | 'status' | 'invalid';
  taskId?: string;
  releaseId?: string;
  /** Date.now() when the request arrived. */
  at: number;
  /** HTTP status answered; 0 while pending, or if hung/dropped/aborted. */
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
  /** Expected JWT audience (optional). */
  jwtAudience?: string;
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
  callsFor(filter: { service?: string; action?: string; taskId?: string }): CallRecord[];
  /** service omitted = all services; action given = only for that action ('status' = GET /status). */
  setBehaviour(b: Partial<Behaviour>, service?: string, action?: BehaviourTarget): void;
  /** Tasks of one service (or all), canonical state names, integer progress (plus service and start count). */
  tasks(service?: string): TaskView[];
  /** Clear calls, callbacks and runtime behaviours (back to the options); tasks are kept. */
  reset(): void;
  /** Forget tasks (all services, or one), as after a restart. */
  forgetTasks(service?: string): void;
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

interface Service {
  name: string;
  tasks: Map<string, Task>;
  flap: number;
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

  const services = new Map<string, Service>();
  const root: Service = { name: rootName, tasks: new Map(), flap: 0 };
  services.set(rootName, root);
  for (const n of names) {
    if (services.has(n)) throw new Error(`duplicate service name: ${n}`);
    services.set(n, { name: n, tasks: new Map(), flap: 0 });
  }
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
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hangs = new Set<() => void>();

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(
      () => {
        timers.delete(t);
        fn();
      },
      Math.max(0, ms),
    );
    timers.add(t);
  };
  /** Waits ms (resolves early on stop). */
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      if (ms <= 0 || stopSignal.aborted) return resolve();
      const t = setTimeout(() => {
        timers.delete(t);
        stopSignal.removeEventListener('abort', onStop);
        resolve();
      }, ms);
      timers.add(t);
      const onStop = () => resolve();
      stopSignal.addEventListener('abort', onStop, { once: true });
    });

  const record = (rec: CallRecord) => {
    calls.push(rec);
    if (calls.length > maxCalls + Math.ceil(maxCalls / 10)) calls.splice(0, calls.length - maxCalls);
  };

  // --- JWT verification (optional) ---
  const jwks = opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl)) : null;
  const verified = new Map<string, number>();
  const authError = async (headers: Record<string, string>): Promise<string | null> => {
    if (!jwks) return null;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
    if (!m) return 'missing bearer token';
    const token = m[1]!;
    const until = verified.get(token);
    if (until !== undefined && until > Date.now()) return null;
    try {
      const { payload } = await jwtVerify(
        token,
        jwks,
        opts.jwtAudience ? { audience: opts.jwtAudience } : {},
      );
      if (verified.size >= 10_000) verified.clear();
      verified.set(token, payload.exp ? payload.exp * 1000 : Date.now() + 60_000);
      return null;
    } catch (e) {
      const err = e as { code?: string; message?: string };
      return `invalid token: ${err.code ?? err.message ?? 'verification failed'}`;
    }
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
    if (token) headers.authorization = `Bearer ${token}`;
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
    later(at - now, () => {
      if (svc.tasks.get(t.kf_id) !== t) return; // forgotten
      advance(t, Date.now());
      const next = () => scheduleCallback(svc, t, b);
      if (CALLBACK_STATES.has(t.state) && t.notified !== t.state) void sendCallback(svc, t, b).then(next);
      else next();
    });
  };

  // --- request handling ---
  const answer = (req: Request, rec: CallRecord, body: unknown, status: number): Response => {
    rec.status = req.signal.aborted ? 0 : status;
    return json(body, status);
  };

  const hang = (req: Request, rec: CallRecord) =>
    new Promise<Response>((resolve) => {
      rec.status = 0;
      const finish = () => {
        hangs.delete(finish);
        resolve(droppedResponse());
      };
      hangs.add(finish);
      req.signal.addEventListener('abort', finish, { once: true });
    });

  /** latency, drop, hang: common to every request. Returns a response to send, or null to continue. */
  const disturb = async (
    req: Request,
    rec: CallRecord,
    b: Behaviour,
    extra = 0,
  ): Promise<Response | null> => {
    const delay = pickLatency(b.latencyMs) + extra;
    if (delay > 0) await wait(delay);
    if (b.drop) {
      rec.status = 0;
      return droppedResponse();
    }
    if (b.hang) return hang(req, rec);
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
    const denied = await authError(rec.headers);
    if (denied) return answer(req, rec, { message: denied }, 401);
    const b = book.resolve(svc.name, 'status');
    const early = await disturb(req, rec, b, pickLatency(b.statusLatencyMs));
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
    let isJson = true;
    try {
      input = JSON.parse(text);
      rec.body = input;
    } catch {
      isJson = false;
      rec.body = text;
    }
    const denied = await authError(rec.headers);
    if (denied) return answer(req, rec, { message: denied }, 401);
    if (!isJson) {
      return answer(req, rec, { message: 'request body is not valid JSON' }, 400);
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      return answer(req, rec, { message: 'request body must be a JSON object' }, 400);
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
    if (problems.length > 0) return answer(req, rec, { message: problems.join('; ') }, 400);
    const act = action as MockAction;
    rec.action = act;
    const b = book.resolve(svc.name, act);
    const early = await disturb(req, rec, b);
    if (early) return early;
    if (b.httpStatus !== 0) {
      return answer(
        req,
        rec,
        { message: `${svc.name} rejected ${act} (mock status ${b.httpStatus})` },
        b.httpStatus,
      );
    }
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
      return answer(req, rec, taskBody(svc.name, t, at, b), 200);
    }
    if (!t) return answer(req, rec, { message: `task ${id} not found` }, b.unknownTaskStatus);
    advance(t, at);
    switch (act) {
      case 'get_status':
        return answer(req, rec, taskBody(svc.name, t, at, b), 200);
      case 'cancel':
        if (!isFinal(t.state)) {
          t.progress = progressOf(t, at);
          t.state = 'canceled';
          t.failAt = null;
        }
        return answer(req, rec, taskBody(svc.name, t, at, b), 200);
      case 'start':
      case 'publish': {
        const from: TaskState = act === 'start' ? 'pending' : 'staged';
        if (act === 'start') t.starts++;
        if (t.state !== from) {
          if (act === 'publish' && t.state !== 'publishing' && t.state !== 'published') {
            return answer(req, rec, { message: `cannot publish task ${id} in state ${t.state}` }, 400);
          }
          return answer(req, rec, taskBody(svc.name, t, at, b), 200); // repeated start/publish: no restart
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
          for (;;) {
            const changeAt = t.state === 'running' || t.state === 'publishing' ? nextChangeAt(t) : null;
            if (changeAt === null || stopSignal.aborted) break;
            await wait(changeAt - Date.now());
            advance(t, Date.now());
          }
          if (b.callback === 'before' && CALLBACK_STATES.has(t.state)) await sendCallback(svc, t, b);
        }
        if (b.callback !== 'never') scheduleCallback(svc, t, b);
        return answer(req, rec, taskBody(svc.name, t, Date.now(), b), 200);
      }
    }
    return answer(req, rec, { message: 'unreachable' }, 500);
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
          (filter.taskId === undefined || c.taskId === filter.taskId),
      );
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
      const list = service === undefined ? [...services.values()] : [requireService(service)];
      const out: TaskView[] = [];
      for (const s of list) {
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
      for (const s of services.values()) s.flap = 0;
    },
    forgetTasks(service?: string) {
      const list = service === undefined ? [...services.values()] : [requireService(service)];
      for (const s of list) s.tasks.clear();
    },
    async stop() {
      if (stopSignal.aborted) return;
      stopController.abort();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const finish of [...hangs]) finish();
      await server.stop(true);
    },
  };

  const server = Bun.serve({
    port: opts.port ?? 0,
    hostname: opts.hostname ?? '127.0.0.1',
    idleTimeout: 0, // hung and slow replies stay open until the client gives up
    development: false,
    async fetch(req) {
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
    },
    error(e) {
      return json({ message: `mock-task-service error: ${e.message}` }, 500);
    },
  });

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
    });
  }

  return handle;
}
