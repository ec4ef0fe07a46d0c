/**
 * Control API, served by the mock itself under /_control (never recorded, never disturbed by
 * behaviours, no JWT). See README.md "Control API".
 */
import { z } from 'zod';
import { type Behaviour, type BehaviourTarget, behaviourSchema, targetSchema } from './behaviour.ts';
import type { MockHandle } from './index.ts';
import { outageSchema, reportRestartFailure, restartSchema } from './outage.ts';
import { describeIssues } from './scenario.ts';

export interface ControlApi {
  handle: MockHandle;
  setRule(b: Partial<Behaviour>, service?: string, action?: BehaviourTarget, times?: number): void;
}

const behaviourRequest = z.strictObject({
  service: z.string().optional(),
  action: targetSchema.optional(),
  behaviour: behaviourSchema,
  times: z.number().int().min(1).optional(),
});
const forgetRequest = z.strictObject({ service: z.string().optional() });
const outageRequest = outageSchema.extend({ service: z.string().optional() });

const json = (body: unknown, status = 200) => Response.json(body, { status });

async function readJson(
  req: Request,
): Promise<{ ok: true; value: unknown } | { ok: false; response: Response }> {
  const text = await req.text();
  if (text.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, response: json({ message: 'request body is not valid JSON' }, 400) };
  }
}

function knownService(api: ControlApi, name: string | undefined | null): Response | null {
  if (name === undefined || name === null) return null;
  if (name === api.handle.name || api.handle.serviceNames.includes(name)) return null;
  return json({ message: `unknown service: ${name}` }, 404);
}

/** Reads a JSON body, validates it, and checks the service it names; otherwise the 400/404 to answer. */
async function readRequest<T extends object>(
  req: Request,
  schema: z.ZodType<T>,
  api: ControlApi,
): Promise<{ ok: true; value: T } | { ok: false; response: Response }> {
  const body = await readJson(req);
  if (!body.ok) return body;
  const parsed = schema.safeParse(body.value);
  if (!parsed.success) return { ok: false, response: json({ message: describeIssues(parsed.error) }, 400) };
  const service = 'service' in parsed.data ? (parsed.data.service as string | undefined) : undefined;
  const unknown = knownService(api, service);
  if (unknown) return { ok: false, response: unknown };
  return { ok: true, value: parsed.data };
}

const ENDPOINTS = [
  'GET /_control/services',
  'GET /_control/calls?service=&action=&taskId=&releaseId=&since=&limit=',
  'DELETE /_control/calls',
  'GET /_control/callbacks',
  'GET /_control/tasks?service=',
  'GET /_control/behaviour?service=&action=',
  'POST /_control/behaviour {service?, action?, behaviour, times?}',
  'POST /_control/reset',
  'POST /_control/forget {service?}',
  'POST /_control/outage {service?, ms, httpStatus?, forget?}',
  'POST /_control/restart {ms, forget?}',
  'GET /_control/tasks-without-cancel?releaseId=',
];

type Route = (api: ControlApi, query: URLSearchParams, req: Request) => Response | Promise<Response>;

function overview({ handle }: ControlApi): Response {
  return json({
    name: handle.name,
    url: handle.url,
    services: handle.serviceNames.length,
    calls: handle.calls.length,
    callbacks: handle.callbacks.length,
    callbackErrors: handle.callbackErrors,
    endpoints: ENDPOINTS,
  });
}

function listServices({ handle }: ControlApi): Response {
  return json({
    root: { name: handle.name, url: handle.url },
    services: handle.serviceNames.map((name) => ({ name, url: handle.serviceUrl(name) })),
  });
}

function listCalls({ handle }: ControlApi, query: URLSearchParams): Response {
  const service = query.get('service') ?? undefined;
  const action = query.get('action') ?? undefined;
  const taskId = query.get('taskId') ?? undefined;
  const releaseId = query.get('releaseId') ?? undefined;
  const since = Number(query.get('since') ?? 0);
  const limit = Number(query.get('limit') ?? 1000);
  const all =
    service || action || taskId || releaseId
      ? handle.callsFor({ service, action, taskId, releaseId })
      : handle.calls;
  const matching = all.filter((c) => c.at >= since);
  return json({ total: matching.length, calls: matching.slice(Math.max(0, matching.length - limit)) });
}

function clearCalls({ handle }: ControlApi): Response {
  handle.calls.length = 0;
  return json({ ok: true });
}

function listCallbacks({ handle }: ControlApi): Response {
  return json({ errors: handle.callbackErrors, callbacks: handle.callbacks });
}

function listTasks(api: ControlApi, query: URLSearchParams): Response {
  const service = query.get('service');
  const unknown = knownService(api, service);
  if (unknown) return unknown;
  return json({ tasks: api.handle.tasks(service ?? undefined) });
}

function showBehaviour(api: ControlApi, query: URLSearchParams): Response {
  const { handle } = api;
  const service = query.get('service') ?? handle.name;
  const unknown = knownService(api, service);
  if (unknown) return unknown;
  const action = targetSchema.safeParse(query.get('action') ?? 'get_status');
  if (!action.success) return json({ message: 'action must be a task action or status' }, 400);
  return json({ service, action: action.data, behaviour: handle.behaviourOf(service, action.data) });
}

async function addBehaviour(api: ControlApi, _query: URLSearchParams, req: Request): Promise<Response> {
  const request = await readRequest(req, behaviourRequest, api);
  if (!request.ok) return request.response;
  const { service, action, behaviour, times } = request.value;
  api.setRule(behaviour as Partial<Behaviour>, service, action, times);
  return json({ ok: true });
}

function reset({ handle }: ControlApi): Response {
  handle.reset();
  return json({ ok: true });
}

async function forget(api: ControlApi, _query: URLSearchParams, req: Request): Promise<Response> {
  const request = await readRequest(req, forgetRequest, api);
  if (!request.ok) return request.response;
  api.handle.forgetTasks(request.value.service);
  return json({ ok: true });
}

async function outage(api: ControlApi, _query: URLSearchParams, req: Request): Promise<Response> {
  const request = await readRequest(req, outageRequest, api);
  if (!request.ok) return request.response;
  const { service, ms, ...options } = request.value;
  api.handle.outage(service, ms, options);
  return json({ ok: true });
}

async function restart(api: ControlApi, _query: URLSearchParams, req: Request): Promise<Response> {
  const request = await readRequest(req, restartSchema, api);
  if (!request.ok) return request.response;
  // The answer goes out before the socket closes (the restart waits one turn).
  api.handle.restart(request.value.ms, request.value).catch(reportRestartFailure);
  return json({ ok: true });
}

function tasksWithoutCancel({ handle }: ControlApi, query: URLSearchParams): Response {
  const releaseId = query.get('releaseId');
  if (!releaseId) return json({ message: 'releaseId is required' }, 400);
  return json({ tasks: handle.tasksWithoutCancel(releaseId) });
}

/** "METHOD /path" → handler. */
const ROUTES: Record<string, Route> = {
  'GET /': overview,
  'GET /services': listServices,
  'GET /calls': listCalls,
  'DELETE /calls': clearCalls,
  'GET /callbacks': listCallbacks,
  'GET /tasks': listTasks,
  'GET /behaviour': showBehaviour,
  'POST /behaviour': addBehaviour,
  'POST /reset': reset,
  'POST /forget': forget,
  'POST /outage': outage,
  'POST /restart': restart,
  'GET /tasks-without-cancel': tasksWithoutCancel,
};

export async function handleControl(req: Request, sub: string, api: ControlApi): Promise<Response> {
  const route = `${req.method} ${sub === '' ? '/' : sub}`;
  const handler = Object.hasOwn(ROUTES, route) ? ROUTES[route] : undefined;
  if (!handler) return json({ message: `no control route ${route}` }, 404);
  return handler(api, new URL(req.url).searchParams, req);
}
