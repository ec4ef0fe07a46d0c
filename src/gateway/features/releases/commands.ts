import { and, eq } from 'drizzle-orm';
import { Conflict, Forbidden, Invalid, NotFound, Unauthorized } from '../../../domain/errors';
import { kfIdFor, newKfId, newMessageId } from '../../../domain/ids';
import { isFinalRelease, type ReleaseState } from '../../../domain/lifecycle/states';
import type { ReleaseWithRelations, TaskRecord } from '../../../domain/representations';
import { hasRole, type Principal, type Role } from '../../../infra/auth/principal';
import type { IntentReply } from '../../../infra/bus/messages';
import { inIds } from '../../../infra/db/raw-select';
import { releases, studies } from '../../../infra/db/schema';
import { currentBudget } from '../../../infra/request-budget';
import { sleep } from '../../../infra/time';
import type { GatewayDeps } from '../../http/context';
import { errorOfReply } from '../../http/errors';
import { type ReleaseRow, withRelations } from './queries';

/**
 * The rules of every release write, shared by the REST routes and the GraphQL mutations: both
 * call these, so a release started, canceled or published either way is the same intent on NATS.
 * They throw the ApiError types; each surface turns those into its own answer.
 */

type Deps = Pick<GatewayDeps, 'db' | 'intents' | 'knownTasks'>;

export interface StartReleaseInput {
  name: string;
  description: string;
  studies: string[];
  tags: string[];
  author: string;
  isMajor: boolean;
}

export type StartReleaseResult =
  /** created now (snapshot from the coordinator's answer when it sent one) or earlier with the same key */
  | { status: 'created'; releaseId: string; record?: ReleaseWithRelations }
  /** stored; the coordinator did not answer in time and will start it */
  | { status: 'accepted'; releaseId: string };

export async function findRelease(deps: Pick<GatewayDeps, 'db'>, id: string): Promise<ReleaseRow> {
  const [row] = await deps.db.select().from(releases).where(eq(releases.kfId, id));
  if (!row) throw NotFound();
  return row;
}

const failOn = (reply: IntentReply) => {
  if (reply.status >= 400) throw errorOfReply(reply);
};

/**
 * Checks the studies and who may start a release of them, then sends `release.create`.
 * `privileged`: roles that may start a release of any study (REST: ADMIN; others need every study
 * in their groups).
 */
export async function startRelease(
  deps: Deps,
  principal: Principal | null,
  input: StartReleaseInput,
  opts: { idempotencyKey?: string; privileged?: Role[] } = {},
): Promise<StartReleaseResult> {
  const { db, intents } = deps;
  const key = opts.idempotencyKey;
  if (key) {
    const [existing] = await db.select().from(releases).where(eq(releases.idempotencyKey, key));
    if (existing) return { status: 'created', releaseId: existing.kfId };
  }
  const wanted = [...new Set(input.studies)];
  const known = await db
    .select({ kfId: studies.kfId })
    .from(studies)
    .where(and(inIds(studies.kfId, wanted), eq(studies.deleted, false)));
  const missing = wanted.filter((s) => !known.some((k) => k.kfId === s));
  if (missing.length > 0) throw Invalid({ studies: missing.map((s) => `Study ${s} does not exist.`) });
  mayStartRelease(principal, wanted, opts.privileged ?? ['ADMIN']);
  // With a key, every request carrying it names the same release before any is stored: a twin
  // that arrives at the same time (whose intent JetStream drops as a duplicate) hands out the id
  // that the first one's intent creates.
  const kfId = key ? await kfIdFor('RE', `release:${key}`) : newKfId('RE');
  const delivery = await intents.deliver({
    type: 'release.create',
    id: key ? `create:${key}` : newMessageId(),
    release: {
      kfId,
      name: input.name,
      description: input.description,
      studies: wanted,
      tags: input.tags,
      author: input.author || principal?.username || '',
      isMajor: input.isMajor,
      idempotencyKey: key,
    },
  });
  if (delivery.duplicate) return awaitTwin(deps, kfId);
  const reply = delivery.reply;
  if (!reply) return { status: 'accepted', releaseId: kfId };
  failOn(reply);
  const r = reply.body as {
    releaseId: string;
    snapshot?: { release: ReleaseRow; studies: string[]; tasks: TaskRecord[] };
  };
  if (r.snapshot) deps.knownTasks?.remember(r.snapshot.tasks.map(asTaskRecord));
  return {
    status: 'created',
    releaseId: r.releaseId,
    record: r.snapshot ? { ...r.snapshot, notes: [] } : undefined,
  };
}

/**
 * The intent of this key was already on the bus (a twin request, or a retry in the duplicate
 * window), so the coordinator answers the first sender only: look for the release for as long
 * as a reply would have been awaited.
 */
async function awaitTwin(deps: Deps, releaseId: string): Promise<StartReleaseResult> {
  const budget = currentBudget();
  const waitMs = Math.min(deps.intents.replyTimeoutMs, (budget?.remainingMs() ?? Infinity) - 1_000);
  const until = performance.now() + waitMs;
  for (let pause = 20; ; pause = Math.min(pause * 2, 250)) {
    const [row] = await deps.db
      .select({ kfId: releases.kfId })
      .from(releases)
      .where(eq(releases.kfId, releaseId));
    if (row) return { status: 'created', releaseId };
    if (performance.now() + pause >= until) return { status: 'accepted', releaseId };
    await sleep(pause);
  }
}

/** A task of the coordinator's snapshot as a gateway record (dates arrive as JSON strings). */
function asTaskRecord(t: TaskRecord): TaskRecord {
  return {
    kfId: t.kfId,
    state: t.state,
    progress: t.progress,
    releaseId: t.releaseId,
    taskServiceId: t.taskServiceId,
    createdAt: new Date(t.createdAt),
    serviceName: t.serviceName,
    statesAt: t.statesAt ?? {},
  };
}

/** ADMIN (or another privileged role), or a user whose groups hold every study of the release. */
function mayStartRelease(p: Principal | null, studies: string[], privileged: Role[]) {
  if (!p) throw Unauthorized('Authentication credentials were not provided.');
  if (hasRole(p, ...privileged)) return;
  const missing = studies.filter((s) => !p.groups.includes(s));
  if (missing.length > 0) {
    throw Forbidden(
      `You may only start releases of your own studies (not a member of ${missing.join(', ')}).`,
    );
  }
}

export interface UpdateReleaseInput {
  name?: string;
  description?: string;
  tags?: string[];
  isMajor?: boolean;
}

/** Changes the editable fields (never state or version); returns the release id. */
export async function updateRelease(deps: Pick<GatewayDeps, 'db'>, id: string, input: UpdateReleaseInput) {
  const row = await findRelease(deps, id);
  const set = {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.tags !== undefined ? { tags: input.tags } : {}),
    ...(input.isMajor !== undefined ? { isMajor: input.isMajor } : {}),
  };
  if (Object.keys(set).length > 0) await deps.db.update(releases).set(set).where(eq(releases.kfId, row.kfId));
  return row.kfId;
}

/**
 * Sends `release.cancel` unless the release is final; `actor` (the caller) is recorded as who
 * canceled it. `accepted`: stored, not yet applied.
 */
export async function cancelRelease(
  deps: Deps,
  id: string,
  actor?: string,
): Promise<{ releaseId: string; accepted: boolean }> {
  const row = await findRelease(deps, id);
  if (isFinalRelease(row.state as ReleaseState))
    throw Conflict(`The release in state ${row.state} may not be canceled.`);
  const reply = await deps.intents.send({
    type: 'release.cancel',
    id: newMessageId(),
    releaseId: row.kfId,
    actor,
  });
  if (!reply) return { releaseId: row.kfId, accepted: true };
  failOn(reply);
  return { releaseId: row.kfId, accepted: false };
}

/** Sends `release.publish` when the release is staged (`actor`: who asked). `accepted`: stored, not yet applied. */
export async function publishRelease(
  deps: Deps,
  id: string,
  actor?: string,
): Promise<{ releaseId: string; accepted: boolean }> {
  const row = await findRelease(deps, id);
  if (row.state !== 'staged') throw Conflict(`The release in state ${row.state} may not be published.`);
  const reply = await deps.intents.send({
    type: 'release.publish',
    id: newMessageId(),
    releaseId: row.kfId,
    actor,
  });
  if (!reply) return { releaseId: row.kfId, accepted: true };
  failOn(reply);
  return { releaseId: row.kfId, accepted: false };
}

/** The release with its studies, tasks and notes. */
export async function releaseRecord(
  deps: Pick<GatewayDeps, 'db'>,
  id: string,
): Promise<ReleaseWithRelations> {
  const [record] = await withRelations(deps.db, [await findRelease(deps, id)]);
  return record!;
}
