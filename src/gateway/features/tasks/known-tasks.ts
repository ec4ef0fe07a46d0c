import { LRUCache } from 'lru-cache';
import type { TaskRecord } from '../../../domain/representations';

/**
 * What never changes about a task (its release, service, creation time), remembered by the
 * gateway: from the snapshot of a release it created, or from the first callback's read. A
 * task-service callback then needs no database read; its state comes back in the coordinator's
 * answer. Bounded, and entries expire so a renamed service shows up within a minute.
 */
export class KnownTasks {
  /** a few releases of 10,000 tasks; a record is about 300 bytes */
  private readonly cache = new LRUCache<string, TaskRecord>({ max: 50_000, ttl: 60_000 });

  get(id: string): TaskRecord | undefined {
    return this.cache.get(id);
  }

  remember(tasks: Iterable<TaskRecord>) {
    for (const t of tasks) this.cache.set(t.kfId, t);
  }
}
