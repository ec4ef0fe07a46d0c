import { and, eq, ne, or, sql } from 'drizzle-orm';
import { Conflict, Invalid, NotFound } from '../../../domain/errors';
import { newKfId } from '../../../domain/ids';
import type { TaskServiceRecord } from '../../../domain/representations';
import type { Db, Tx } from '../../../infra/db/client';
import { taskServices } from '../../../infra/db/schema';
import { deriveTiming } from '../../../timing';
import type { GatewayDeps } from '../../http/context';
import { checkServiceUrl } from './url-check';

/**
 * The rules of task-service writes (the live URL check included), shared by the REST routes and
 * the GraphQL mutations. They throw the ApiError types.
 */

type Deps = Pick<GatewayDeps, 'db' | 'config' | 'fetch' | 'lookup' | 'auth' | 'callbackRules'>;

export interface TaskServiceInput {
  name: string;
  url: string;
  description: string;
  author: string;
  enabled: boolean;
  request_timeout_ms?: number | null;
  start_timeout_ms?: number | null;
  publish_timeout_ms?: number | null;
  token_subject?: string | null;
  token_audience?: string | null;
}

/** The address policy, then GET {url}/status within a deadline; 400 `{url: [reason]}` when refused. */
export async function checkTaskServiceUrl(deps: Deps, url: string, audience?: string | null): Promise<void> {
  const reason = await checkServiceUrl(url, {
    allowPrivate: deps.config.ALLOW_PRIVATE_SERVICE_URLS,
    timeoutMs: deriveTiming(deps.config).registrationCheckMs,
    fetch: deps.fetch,
    lookup: deps.lookup,
    headers: { authorization: await deps.auth.outbound.authorization(url, audience) },
  });
  if (reason) throw Invalid({ url: [reason] });
}

/** A task service that is not removed, or 404. */
export async function findTaskService(deps: Pick<GatewayDeps, 'db'>, id: string): Promise<TaskServiceRecord> {
  const [row] = await deps.db
    .select()
    .from(taskServices)
    .where(and(eq(taskServices.kfId, id), eq(taskServices.deleted, false)));
  if (!row) throw NotFound();
  return row;
}

/** Trailing slashes do not make another service: https://a/x/ and https://a/x are the same one. */
const sameUrl = (url: string) => url.replace(/\/+$/, '');

/**
 * A second registration of a URL (or a name) already registered would give every later release a
 * task for each copy: 409 naming the existing service.
 */
async function refuseDuplicate(
  deps: Pick<GatewayDeps, 'db'>,
  input: { name?: string; url?: string },
  self?: string,
) {
  if (input.name === undefined && input.url === undefined) return;
  const [clash] = await deps.db
    .select({ kfId: taskServices.kfId, name: taskServices.name, url: taskServices.url })
    .from(taskServices)
    .where(
      and(
        eq(taskServices.deleted, false),
        eq(taskServices.enabled, true),
        self ? ne(taskServices.kfId, self) : undefined,
        or(
          input.url === undefined ? undefined : sql`rtrim(${taskServices.url}, '/') = ${sameUrl(input.url)}`,
          input.name === undefined ? undefined : eq(taskServices.name, input.name),
        ),
      ),
    )
    .limit(1);
  if (!clash) return;
  const what = input.url !== undefined && sameUrl(clash.url) === sameUrl(input.url) ? 'URL' : 'name';
  throw Conflict(
    `A task service with this ${what} is already registered: ${clash.kfId} (${clash.name}, ${clash.url}).`,
  );
}

function columnsOf(input: Partial<TaskServiceInput>) {
  const set: Partial<typeof taskServices.$inferInsert> = {};
  if (input.name !== undefined) set.name = input.name;
  if (input.url !== undefined) set.url = input.url;
  if (input.description !== undefined) set.description = input.description;
  if (input.author !== undefined) set.author = input.author;
  if (input.enabled !== undefined) set.enabled = input.enabled;
  if (input.request_timeout_ms !== undefined) set.requestTimeoutMs = input.request_timeout_ms;
  if (input.start_timeout_ms !== undefined) set.startTimeoutMs = input.start_timeout_ms;
  if (input.publish_timeout_ms !== undefined) set.publishTimeoutMs = input.publish_timeout_ms;
  if (input.token_subject !== undefined) set.tokenSubject = input.token_subject;
  if (input.token_audience !== undefined) set.tokenAudience = input.token_audience;
  return set;
}

export async function createTaskService(deps: Deps, input: TaskServiceInput): Promise<TaskServiceRecord> {
  await checkNewTaskService(deps, input);
  return insertTaskService(deps.db, input);
}

/** What must hold before a service is inserted: no enabled twin, and a URL that answers GET /status. */
export async function checkNewTaskService(deps: Deps, input: TaskServiceInput): Promise<void> {
  if (input.enabled) await refuseDuplicate(deps, input);
  await checkTaskServiceUrl(deps, input.url, input.token_audience);
}

/** The row of a service whose URL was checked (in the caller's transaction, when it has one). */
export async function insertTaskService(db: Db | Tx, input: TaskServiceInput): Promise<TaskServiceRecord> {
  const [row] = await db
    .insert(taskServices)
    .values({
      kfId: newKfId('TS'),
      name: input.name,
      url: input.url,
      ...columnsOf(input),
      nextHealthAt: new Date(),
    })
    .returning();
  return row!;
}

/** Changes the given fields; a new URL (or audience) is checked like on registration. */
export async function updateTaskService(
  deps: Deps,
  id: string,
  input: Partial<TaskServiceInput>,
): Promise<TaskServiceRecord> {
  const current = await findTaskService(deps, id);
  const enabling = input.enabled === true && !current.enabled;
  if (input.enabled ?? current.enabled) {
    await refuseDuplicate(
      deps,
      {
        name:
          enabling || (input.name !== undefined && input.name !== current.name)
            ? (input.name ?? current.name)
            : undefined,
        url:
          enabling || (input.url !== undefined && input.url !== current.url)
            ? (input.url ?? current.url)
            : undefined,
      },
      current.kfId,
    );
  }
  const urlChanged = input.url !== undefined && input.url !== current.url;
  const audienceChanged =
    input.token_audience !== undefined && input.token_audience !== current.tokenAudience;
  if (urlChanged || audienceChanged) {
    await checkTaskServiceUrl(deps, input.url ?? current.url, input.token_audience ?? current.tokenAudience);
  }
  const set = columnsOf(input);
  if (Object.keys(set).length === 0) return current;
  const [row] = await deps.db
    .update(taskServices)
    .set(set)
    .where(eq(taskServices.kfId, current.kfId))
    .returning();
  deps.callbackRules?.forget(current.kfId);
  return row!;
}

/** Hides the service (tasks of past releases keep pointing at it) and disables it. */
export async function removeTaskService(deps: Pick<GatewayDeps, 'db'>, id: string): Promise<void> {
  const current = await findTaskService(deps, id);
  await deps.db
    .update(taskServices)
    .set({ deleted: true, enabled: false })
    .where(eq(taskServices.kfId, current.kfId));
}
