import { sql } from 'drizzle-orm';
import { LRUCache } from 'lru-cache';
import { AUTH_REFUSALS, Forbidden, Unauthorized } from '../../../domain/errors';
import { OPEN_RELEASE_STATES, OPEN_TASK_STATES } from '../../../domain/lifecycle/states';
import { hasRole, type Principal } from '../../../infra/auth/principal';
import type { Db } from '../../../infra/db/client';
import { inStates } from '../../../infra/db/raw-select';
import { queryRows } from '../../../infra/db/rows';

/**
 * Who may report on a task (docs/lifecycle.md, "Callbacks without credentials"): an ADMIN on any
 * task; a service token on the tasks of a service bound to its subject, or of any unbound service.
 * The binding (`token_subject` of the task's service) is read once per service every few seconds,
 * so a callback still costs no database read in the common case.
 */
export class CallbackRules {
  private readonly bindings = new LRUCache<string, { subject: string | null }>({ max: 10_000, ttl: 5_000 });
  /** last hint this gateway forwarded per task: hints beyond one a second are answered but not forwarded */
  private readonly hinted = new LRUCache<string, number>({ max: 100_000, ttl: 60_000 });

  constructor(
    private readonly db: Db,
    private readonly hintIntervalMs: number,
  ) {}

  /** Before the task is looked up: only an ADMIN or a task-service token may report at all. */
  mayReportAtAll(p: Principal): void {
    if (!hasRole(p, 'ADMIN') && !p.service) {
      throw Forbidden(
        'You do not have permission to perform this action (needs ADMIN or a task-service token).',
      );
    }
  }

  /** ... and a service token only on tasks of a service bound to its subject, or of an unbound one. */
  async mayReport(p: Principal, task: { kfId: string; taskServiceId: string }): Promise<void> {
    this.mayReportAtAll(p);
    if (hasRole(p, 'ADMIN')) return;
    const bound = await this.bindingOf(task.taskServiceId);
    if (bound !== null && bound !== p.subject) {
      throw Forbidden(
        `This token (subject ${p.subject}) may not report on tasks of task service ${task.taskServiceId}: that service is bound to another token subject.`,
      );
    }
  }

  /** Forget a service's binding at once (this gateway changed it). */
  forget(serviceId: string) {
    this.bindings.delete(serviceId);
  }

  /** Whether this hint should reach the coordinator (it also limits, but need not see a flood). */
  shouldForwardHint(taskId: string, now = Date.now()): boolean {
    const last = this.hinted.get(taskId);
    if (last !== undefined && now - last < this.hintIntervalMs) return false;
    this.hinted.set(taskId, now);
    return true;
  }

  private async bindingOf(serviceId: string): Promise<string | null> {
    const hit = this.bindings.get(serviceId);
    if (hit) return hit.subject;
    const [row] = await queryRows<{ token_subject: string | null }>(
      this.db,
      sql`select token_subject from task_services where kf_id = ${serviceId}`,
    );
    const subject = row?.token_subject ?? null;
    this.bindings.set(serviceId, { subject });
    return subject;
  }
}

/** A task a credential-less callback may hint about: it and its release are still in flight. */
export async function taskInFlight(db: Db, taskId: string): Promise<{ releaseId: string } | undefined> {
  const [row] = await queryRows<{ release_id: string }>(
    db,
    sql`select t.release_id from tasks t join releases r on r.kf_id = t.release_id
        where t.kf_id = ${taskId}
          and ${inStates('t.state', OPEN_TASK_STATES)}
          and ${inStates('r.state', OPEN_RELEASE_STATES)}`,
  );
  return row ? { releaseId: row.release_id } : undefined;
}

export const noCredentials = () => Unauthorized(AUTH_REFUSALS.noCredentials);
