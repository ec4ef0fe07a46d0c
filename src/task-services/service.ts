import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { taskServices } from '../db/schema';
import type { GatewayDeps } from '../http/context';
import { Invalid, NotFound } from '../http/errors';
import { newKfId } from '../shared/ids';
import type { TaskServiceRow } from './repo';
import { checkServiceUrl } from './url-check';

/**
 * The rules of task-service writes (the live URL check included), shared by the REST routes and
 * the GraphQL mutations. They throw the ApiError types.
 */

type Deps = Pick<GatewayDeps, 'db' | 'config' | 'fetch' | 'lookup' | 'auth'>;

export interface TaskServiceInput {
  name: string;
  url: string;
  description: string;
  author: string;
  enabled: boolean;
}

/** The address policy, then GET {url}/status within a deadline; 400 `{url: [reason]}` when refused. */
export async function checkTaskServiceUrl(deps: Deps, url: string): Promise<void> {
  const reason = await checkServiceUrl(url, {
    allowPrivate: deps.config.ALLOW_PRIVATE_SERVICE_URLS,
    timeoutMs: Math.min(deps.config.REQUEST_TIMEOUT_MS, 10_000),
    fetch: deps.fetch,
    lookup: deps.lookup,
    headers: { authorization: await deps.auth.outbound.authorization(url) },
  });
  if (reason) throw Invalid({ url: [reason] });
}

/** A task service that is not removed, or 404. */
export async function findTaskService(deps: Pick<GatewayDeps, 'db'>, id: string): Promise<TaskServiceRow> {
  const [row] = await deps.db
    .select()
    .from(taskServices)
    .where(and(eq(taskServices.kfId, id), eq(taskServices.deleted, false)));
  if (!row) throw NotFound();
  return row;
}

export async function createTaskService(deps: Deps, input: TaskServiceInput): Promise<TaskServiceRow> {
  await checkTaskServiceUrl(deps, input.url);
  return insertTaskService(deps.db, input);
}

/** The row of a service whose URL was checked (in the caller's transaction, when it has one). */
export async function insertTaskService(db: Db | Tx, input: TaskServiceInput): Promise<TaskServiceRow> {
  const [row] = await db
    .insert(taskServices)
    .values({ kfId: newKfId('TS'), ...input, nextHealthAt: new Date() })
    .returning();
  return row!;
}

/** Changes the given fields; a new URL is checked like on registration. */
export async function updateTaskService(
  deps: Deps,
  id: string,
  input: Partial<TaskServiceInput>,
): Promise<TaskServiceRow> {
  const current = await findTaskService(deps, id);
  if (input.url !== undefined && input.url !== current.url) await checkTaskServiceUrl(deps, input.url);
  if (Object.keys(input).length === 0) return current;
  const [row] = await deps.db
    .update(taskServices)
    .set(input)
    .where(eq(taskServices.kfId, current.kfId))
    .returning();
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
