import { and, eq } from 'drizzle-orm';
import { AUTH_REFUSALS, Conflict, Forbidden, Invalid, NotFound, Unauthorized } from '../../../domain/errors';
import { newKfId, newMessageId } from '../../../domain/ids';
import { isFinalRelease, type ReleaseState } from '../../../domain/lifecycle/states';
import type { ReleaseWithRelations, TaskRecord } from '../../../domain/representations';
import { hasRole, type Principal, type Role } from '../../../infra/auth/principal';
import type { IntentReply } from '../../../infra/bus/messages';
import { inIds } from '../../../infra/db/raw-select';
import { releases, studies } from '../../../infra/db/schema';
import type { GatewayDeps } from '../../http/context';
import { errorOfReply } from '../../http/errors';
import { sha256 } from '../../http/idempotency';
import { keptEarlier, sendIntent } from './intents';
import { type ReleaseRow, withRelations } from './queries';

/**
 * The rules of every release write, shared by the REST routes and the GraphQL mutations: both
 * call these, so a release started, canceled or published either way is the same intent on NATS.
 * They throw the ApiError types; each surface turns those into its own answer.
 */

type Deps = Pick<GatewayDeps, 'db' | 'intents' | 'knownTasks' | 'log'>;

export interface StartReleaseInput {
  name: string;
  description: string;
  studies: string[];
  tags: string[];
  author: string;
  isMajor: boolean;
}

export type StartReleaseResult =
  /** created now or earlier with the same key: the release from the coordinator's snapshot, else read */
  | { status: 'created'; releaseId: string; record: ReleaseWithRelations }
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
 * Checks who may start a release of the studies, and the studies, then sends `release.create`.
 * `privileged`: roles that may start a release of any study (REST: ADMIN; others need every study
 * in their groups). A key this caller used before for the same request names the release that
 * request made, checked against the caller's rights like a new one.
 */
export async function startRelease(
  deps: Deps,
  principal: Principal | null,
  input: StartReleaseInput,
  opts: { idempotencyKey?: string; privileged?: Role[] } = {},
): Promise<StartReleaseResult> {
  const { db } = deps;
  const wanted = [...new Set(input.studies)];
  mayStartRelease(principal, wanted, opts.privileged ?? ['ADMIN']);
  const release = {
    name: input.name,
    description: input.description,
    studies: wanted,
    tags: input.tags,
    author: input.author || principal?.username || '',
    isMajor: input.isMajor,
  };
  const key = opts.idempotencyKey
    ? {
        caller: principal!.subject,
        key: opts.idempotencyKey,
        requestHash: await sha256(JSON.stringify({ ...release, studies: [...wanted].sort() })),
      }
    : undefined;
  if (!key || !(await keptEarlier(deps, 'release.create', key))) {
    const known = await db
      .select({ kfId: studies.kfId })
      .from(studies)
      .where(and(inIds(studies.kfId, wanted), eq(studies.deleted, false)));
    const missing = wanted.filter((s) => !known.some((k) => k.kfId === s));
    if (missing.length > 0) throw Invalid({ studies: missing.map((s) => `Study ${s} does not exist.`) });
  }
  const sent = await sendIntent(
    deps,
    { type: 'release.create', id: newMessageId(), release: { kfId: newKfId('RE'), ...release } },
    key,
  );
  const kfId = sent.intent.release.kfId;
  const reply = sent.reply;
  if (!reply) return { status: 'accepted', releaseId: kfId };
  failOn(reply);
  const r = reply.body as {
    releaseId: string;
    snapshot?: { release: ReleaseRow; studies: string[]; tasks: TaskRecord[] };
  };
  if (r.snapshot) {
    deps.knownTasks?.remember(r.snapshot.tasks.map(asTaskRecord));
    return { status: 'created', releaseId: r.releaseId, record: { ...r.snapshot, notes: [] } };
  }
  // a release too large for its snapshot to travel (thousands of tasks): read it once here, for the
  // answer and for its tasks' callbacks, or each callback would read its own task, all at once
  const record = await releaseRecord(deps, r.releaseId);
  deps.knownTasks?.remember(record.tasks);
  return { status: 'created', releaseId: r.releaseId, record };
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
  if (!p) throw Unauthorized(AUTH_REFUSALS.noCredentials);
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

/**
 * Changes what a release is called and tagged here; `is_major`, which decides the version it gets,
 * is release state and goes to the coordinator (a `release.amend` intent, refused with 409 once
 * publishing has begun), first, so a refused change leaves the other fields as they were.
 * `accepted`: the is_major change is stored, not yet applied.
 */
export async function updateRelease(
  deps: Deps,
  id: string,
  input: UpdateReleaseInput,
  actor?: string,
): Promise<{ releaseId: string; accepted: boolean }> {
  const row = await findRelease(deps, id);
  let accepted = false;
  // sent even when the row already shows this value: an earlier change may be stored and not yet
  // applied, and intents are applied in order, so this request's value is the one that stays
  if (input.isMajor !== undefined) {
    const { reply } = await sendIntent(deps, {
      type: 'release.amend',
      id: newMessageId(),
      releaseId: row.kfId,
      isMajor: input.isMajor,
      actor,
    });
    if (reply) failOn(reply);
    accepted = !reply;
  }
  const set = {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.tags !== undefined ? { tags: input.tags } : {}),
  };
  if (Object.keys(set).length > 0) await deps.db.update(releases).set(set).where(eq(releases.kfId, row.kfId));
  return { releaseId: row.kfId, accepted };
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
  const { reply } = await sendIntent(deps, {
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
  const { reply } = await sendIntent(deps, {
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
