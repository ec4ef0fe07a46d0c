import { and, eq, ne, or, sql } from 'drizzle-orm';
import { Conflict, Invalid, NotFound } from '../../../domain/errors';
import { newKfId } from '../../../domain/ids';
import type { TaskServiceRecord } from '../../../domain/representations';
import { TokenError } from '../../../infra/auth/outbound';
import type { Db, Tx } from '../../../infra/db/client';
import { TASK_SERVICE_UNIQUE, taskServices, urlKeyOf } from '../../../infra/db/schema';
import { uniqueViolation } from '../../../infra/errors';
import { deriveTiming } from '../../../timing';
import type { GatewayDeps } from '../../http/context';
import { ApiError } from '../../http/errors';
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

/**
 * The address policy, then GET {url}/status within a deadline (with the token the service will
 * get): 400 `{url: [reason]}` when refused, 400 `{token_audience: [reason]}` when the OAuth token
 * endpoint refuses a token for the service's audience, 503 when it cannot be reached.
 */
export async function checkTaskServiceUrl(deps: Deps, url: string, audience?: string | null): Promise<void> {
  const reason = await checkServiceUrl(url, {
    allowPrivate: deps.config.ALLOW_PRIVATE_SERVICE_URLS,
    timeoutMs: deriveTiming(deps.config).registrationCheckMs,
    fetch: deps.fetch,
    lookup: deps.lookup,
    authorization: () => authorizationFor(deps, url, audience),
  });
  if (reason) throw Invalid({ url: [reason] });
}

async function authorizationFor(deps: Deps, url: string, audience?: string | null): Promise<string> {
  try {
    return await deps.auth.outbound.authorization(url, audience);
  } catch (err) {
    if (err instanceof TokenError && !err.transient) {
      const hint = audience
        ? 'Use an audience the coordinator may ask tokens for, or leave it empty.'
        : 'Set token_audience to an audience the coordinator may ask tokens for.';
      throw Invalid({ token_audience: [`${err.message} ${hint}`] });
    }
    throw new ApiError(503, {
      detail: 'The OAuth token endpoint cannot be reached, so the service cannot be checked; retry shortly.',
    });
  }
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

/**
 * A second registration of a URL (or a name) already registered would give every later release a
 * task for each copy: 409 naming the existing service. URLs are compared as the unique index
 * compares them (schema.ts urlKeyOf: scheme and host in any case, default port, trailing slashes).
 * This check gives the friendly answer; the unique indexes make it hold for registrations at the
 * same moment (see duplicateOf).
 */
async function refuseDuplicate(db: Db | Tx, input: { name?: string; url?: string }, self?: string) {
  if (input.name === undefined && input.url === undefined) return;
  const inputKey = input.url === undefined ? undefined : urlKeyOf(sql`${input.url}::text`);
  const [clash] = await db
    .select({
      kfId: taskServices.kfId,
      name: taskServices.name,
      url: taskServices.url,
      sameUrl: inputKey ? sql<boolean>`${taskServices.urlKey} = ${inputKey}` : sql<boolean>`false`,
    })
    .from(taskServices)
    .where(
      and(
        eq(taskServices.deleted, false),
        eq(taskServices.enabled, true),
        self ? ne(taskServices.kfId, self) : undefined,
        or(
          inputKey ? eq(taskServices.urlKey, inputKey) : undefined,
          input.name === undefined ? undefined : eq(taskServices.name, input.name),
        ),
      ),
    )
    .limit(1);
  if (!clash) return;
  throw Conflict(
    `A task service with this ${clash.sameUrl ? 'URL' : 'name'} is already registered: ${clash.kfId} (${clash.name}, ${clash.url}).`,
  );
}

/**
 * A write refused by a unique index (a twin was written at the same moment): the 409 of
 * refuseDuplicate, naming the twin, or naming the field when the twin is gone again.
 */
async function duplicateOf(
  db: Db | Tx,
  input: { name?: string; url?: string },
  constraint: string | undefined,
  self?: string,
): Promise<never> {
  await refuseDuplicate(db, input, self);
  const field =
    constraint === TASK_SERVICE_UNIQUE.name
      ? 'name'
      : constraint === TASK_SERVICE_UNIQUE.url
        ? 'URL'
        : 'URL or name';
  throw Conflict(`A task service with this ${field} is already registered.`);
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
  if (input.enabled) await refuseDuplicate(deps.db, input);
  await checkTaskServiceUrl(deps, input.url, input.token_audience);
}

/**
 * The row of a service whose URL was checked (in the caller's transaction, when it has one). A
 * twin inserted at the same moment makes the unique index refuse this row: 409.
 */
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
    // a unique index refusing the row leaves the transaction usable, to name the twin
    .onConflictDoNothing()
    .returning();
  if (!row) return duplicateOf(db, input, undefined);
  return row;
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
      deps.db,
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
  const row = await deps.db
    .update(taskServices)
    .set(set)
    .where(eq(taskServices.kfId, current.kfId))
    .returning()
    .then(
      ([updated]) => updated,
      (err: unknown) => {
        const constraint = uniqueViolation(err);
        if (constraint === undefined) throw err;
        const { name, url } = { ...current, ...input };
        return duplicateOf(deps.db, { name, url }, constraint, current.kfId);
      },
    );
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
