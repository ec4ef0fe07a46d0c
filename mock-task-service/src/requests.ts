/**
 * The task service protocol as a service of the mock answers it: GET /status and POST /tasks,
 * disturbed by the service's behaviour (latency, hang, drop, error codes, outages).
 */
import { type Behaviour, MOCK_ACTIONS, type MockAction, pickLatency, type TaskState } from './behaviour.ts';
import { CALLBACK_STATES, scheduleCallback, sendCallback } from './callbacks.ts';
import type { CallRecord } from './index.ts';
import type { MockState, Service } from './state.ts';
import { advance, isFinal, nextChangeAt, progressOf, type Task, taskBody } from './tasks.ts';

const ACTIONS: ReadonlySet<string> = new Set(MOCK_ACTIONS);

export function isMockAction(action: string): boolean {
  return ACTIONS.has(action);
}

export function json(body: unknown, status: number): Response {
  return Response.json(body, { status });
}

/** A response whose body errors at once: Bun closes the socket before writing the status line. */
export function droppedResponse(): Response {
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

/** Records a request as it arrives (status 0 until answered). */
function recordCall(state: MockState, req: Request, svc: Service, action: CallRecord['action']): CallRecord {
  const rec: CallRecord = { service: svc.name, action, at: Date.now(), status: 0, headers: headersOf(req) };
  state.record(rec);
  return rec;
}

/** Waits ms inside a request; resolves early when `signal` aborts (outage, restart, stop). */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

function answer(req: Request, rec: CallRecord, body: unknown, status: number): Response {
  rec.status = req.signal.aborted ? 0 : status;
  return json(body, status);
}

/** The answer of a service in an outage, or of a request cut short by an outage, restart or stop. */
function unavailable(state: MockState, req: Request, svc: Service, rec: CallRecord): Response {
  const outage = svc.outageStatus !== 0 && svc.outageUntil > Date.now();
  if (outage && !state.restarting && !state.stopSignal.aborted) {
    return answer(req, rec, { message: `${svc.name} is restarting (mock outage)` }, svc.outageStatus);
  }
  rec.status = 0;
  return droppedResponse();
}

/** One request being answered by a service. */
interface Exchange {
  state: MockState;
  req: Request;
  svc: Service;
  rec: CallRecord;
  /** Aborts when the service's requests in progress must end (outage, restart, stop). */
  signal: AbortSignal;
}

/** Holds the request until the client aborts, or the service's requests are cut short. */
function hang({ state, req, svc, rec, signal }: Exchange): Promise<Response> {
  return new Promise<Response>((resolve) => {
    rec.status = 0;
    const finish = () => {
      signal.removeEventListener('abort', finish);
      req.signal.removeEventListener('abort', finish);
      resolve(signal.aborted ? unavailable(state, req, svc, rec) : droppedResponse());
    };
    if (signal.aborted) return finish();
    signal.addEventListener('abort', finish);
    req.signal.addEventListener('abort', finish);
  });
}

/** latency, drop, hang: common to every request. Returns a response to send, or null to continue. */
async function disturb(x: Exchange, b: Behaviour, extra = 0): Promise<Response | null> {
  const delay = pickLatency(b.latencyMs) + extra;
  if (delay > 0) {
    await wait(delay, x.signal);
    if (x.signal.aborted) return unavailable(x.state, x.req, x.svc, x.rec);
  }
  if (b.drop) {
    x.rec.status = 0;
    return droppedResponse();
  }
  if (b.hang) return hang(x);
  return null;
}

/**
 * Outage and JWT check, common to every request: the response to send, or the exchange to go on
 * with. The signal is taken before the JWT check, so an outage beginning meanwhile cuts it short.
 */
async function admit(
  state: MockState,
  req: Request,
  svc: Service,
  rec: CallRecord,
): Promise<Response | Exchange> {
  if (state.inOutage(svc)) return unavailable(state, req, svc, rec);
  const signal = svc.interrupt.signal;
  const denied = state.checkToken && (await state.checkToken(rec.headers.authorization));
  if (denied) return answer(req, rec, { message: denied }, 401);
  return { state, req, svc, rec, signal };
}

/** GET /status */
export async function handleStatus(state: MockState, req: Request, svc: Service): Promise<Response> {
  const rec = recordCall(state, req, svc, 'status');
  const x = await admit(state, req, svc, rec);
  if (x instanceof Response) return x;
  const b = state.book.resolve(svc.name, 'status');
  const early = await disturb(x, b, pickLatency(b.statusLatencyMs));
  if (early) return early;
  let down = b.statusMode === 'down';
  if (b.statusMode === 'flap')
    down = b.flapProbability > 0 ? Math.random() < b.flapProbability : svc.flap++ % 2 === 1;
  if (down) return answer(req, rec, { message: `${svc.name} is unavailable` }, b.statusDownCode);
  return statusReply(req, rec, svc, b);
}

/** The answer of a service that is up, in the shape its behaviour asks for. */
function statusReply(req: Request, rec: CallRecord, svc: Service, b: Behaviour): Response {
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
}

/** A valid POST /tasks body. */
interface TaskRequest {
  action: MockAction;
  task_id: string;
  release_id: string;
  studies?: string[];
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

/** Reads and validates a POST /tasks body, recording it on `rec`. */
async function readTaskRequest(
  req: Request,
  rec: CallRecord,
): Promise<{ request: TaskRequest; problem: null } | { problem: string }> {
  const text = await req.text();
  try {
    const input: unknown = JSON.parse(text);
    rec.body = input;
    const problem = taskRequestProblem(input, rec);
    return problem === null ? { request: input as TaskRequest, problem } : { problem };
  } catch {
    rec.body = text;
    return { problem: 'request body is not valid JSON' };
  }
}

/** A POST /tasks request that passed every check: the action is about to be done. */
interface TaskExchange extends Exchange {
  b: Behaviour;
  request: TaskRequest;
}

/** POST /tasks */
export async function handleTasks(state: MockState, req: Request, svc: Service): Promise<Response> {
  const rec = recordCall(state, req, svc, 'invalid');
  const read = await readTaskRequest(req, rec);
  const x = await admit(state, req, svc, rec);
  if (x instanceof Response) return x;
  if (read.problem !== null) return answer(req, rec, { message: read.problem }, 400);
  const act = read.request.action;
  const b = state.book.resolve(svc.name, act);
  const early = await disturb(x, b);
  if (early) return early;
  if (b.httpStatus !== 0) {
    return answer(
      req,
      rec,
      { message: `${svc.name} rejected ${act} (mock status ${b.httpStatus})` },
      b.httpStatus,
    );
  }
  return doAction({ ...x, b, request: read.request });
}

/** The action's answer, unless the reply is lost after the action (dropReply). */
function reply(x: TaskExchange, payload: unknown, status: number): Response {
  if (!x.b.dropReply) return answer(x.req, x.rec, payload, status);
  x.rec.status = 0;
  return droppedResponse();
}

async function doAction(x: TaskExchange): Promise<Response> {
  const { svc, b, request } = x;
  const at = Date.now();
  const id = request.task_id;
  if (request.action === 'initialize') {
    const t = svc.tasks.get(id) ?? createTask(svc, request, at);
    advance(t, at);
    return reply(x, taskBody(svc.name, t, at, b), 200);
  }
  const t = svc.tasks.get(id);
  if (!t) return reply(x, { message: `task ${id} not found` }, b.unknownTaskStatus);
  advance(t, at);
  switch (request.action) {
    case 'get_status':
      return reply(x, taskBody(svc.name, t, at, b), 200);
    case 'cancel':
      cancel(t, at);
      return reply(x, taskBody(svc.name, t, at, b), 200);
    case 'start':
    case 'publish':
      return startOrPublish(x, t, request.action, at);
  }
}

function createTask(svc: Service, request: TaskRequest, at: number): Task {
  const t: Task = {
    kf_id: request.task_id,
    release_id: request.release_id,
    date_submitted: new Date(at).toISOString(),
    state: 'pending',
    phaseStart: 0,
    phaseMs: 0,
    failAt: null,
    progress: 0,
    starts: 0,
  };
  if (request.studies) t.studies = request.studies;
  svc.tasks.set(request.task_id, t);
  return t;
}

function cancel(t: Task, at: number): void {
  if (isFinal(t.state)) return;
  t.progress = progressOf(t, at);
  t.state = 'canceled';
  t.failAt = null;
}

async function startOrPublish(
  x: TaskExchange,
  t: Task,
  act: 'start' | 'publish',
  at: number,
): Promise<Response> {
  const { state, svc, b } = x;
  const from: TaskState = act === 'start' ? 'pending' : 'staged';
  if (act === 'start') t.starts++;
  if (t.state !== from) {
    if (act === 'publish' && t.state !== 'publishing' && t.state !== 'published') {
      return reply(x, { message: `cannot publish task ${t.kf_id} in state ${t.state}` }, 400);
    }
    return reply(x, taskBody(svc.name, t, at, b), 200); // repeated start/publish: no restart
  }
  beginPhase(t, act, b, at);
  if (b.replyWhenDone || b.callback === 'before') {
    await waitForPhaseEnd(t, x.signal);
    if (x.signal.aborted) return unavailable(state, x.req, svc, x.rec);
    if (b.callback === 'before' && CALLBACK_STATES.has(t.state)) await sendCallback(state, svc, t, b);
  }
  if (b.callback !== 'never') scheduleCallback(state, svc, t, b);
  return reply(x, taskBody(svc.name, t, Date.now(), b), 200);
}

/** pending → running, or staged → publishing, for as long as the behaviour says. */
function beginPhase(t: Task, act: 'start' | 'publish', b: Behaviour, at: number): void {
  t.state = act === 'start' ? 'running' : 'publishing';
  t.phaseStart = at;
  t.phaseMs = b.immediate ? 0 : act === 'start' ? b.stageMs : b.publishMs;
  t.progress = 0;
  if (b.failAfterMs !== null) t.failAt = at + b.failAfterMs;
  else if (act === 'start') t.failAt = null;
  advance(t, at);
}

/**
 * Waits until the phase has ended (done, failed or canceled meanwhile). The work goes on if the
 * caller gives up: only an outage, a restart or stop() (`signal`) ends the wait.
 */
async function waitForPhaseEnd(t: Task, signal: AbortSignal): Promise<void> {
  for (;;) {
    const changeAt = t.state === 'running' || t.state === 'publishing' ? nextChangeAt(t) : null;
    if (changeAt === null || signal.aborted) break;
    await wait(changeAt - Date.now(), signal);
    advance(t, Date.now());
  }
}
