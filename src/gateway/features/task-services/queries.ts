import type { taskServices } from '../../../infra/db/schema';
import { iso, type Urls } from '../../http/context';

export type TaskServiceRow = typeof taskServices.$inferSelect;

export function taskServiceJson(s: TaskServiceRow, _urls?: Urls) {
  return {
    kf_id: s.kfId,
    name: s.name,
    description: s.description,
    last_ok_status: s.lastOkStatus,
    author: s.author,
    health_status: s.healthStatus,
    url: s.url,
    created_at: iso(s.createdAt),
    enabled: s.enabled,
    request_timeout_ms: s.requestTimeoutMs,
    start_timeout_ms: s.startTimeoutMs,
    publish_timeout_ms: s.publishTimeoutMs,
    token_subject: s.tokenSubject,
    token_audience: s.tokenAudience,
  };
}
