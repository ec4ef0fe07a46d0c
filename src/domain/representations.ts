import { iso, type Urls } from './urls';

/**
 * The JSON of each resource, in the field order of the original API (docs/api.md), shared by the
 * REST API, the notifications and the dashboard. Pure: the records are plain data; the stores that
 * read them from Postgres give rows of their tables, which fit these shapes (tsc checks it).
 */

export interface ReleaseRecord {
  kfId: string;
  name: string;
  description: string;
  state: string;
  version: string;
  isMajor: boolean;
  tags: string[];
  author: string;
  createdAt: Date;
  stateChangedAt: Date;
  haltReason: string | null;
  haltTaskId: string | null;
  haltServiceId: string | null;
  haltServiceName: string | null;
  haltMessage: string | null;
  haltedBy: string | null;
  haltedAt: Date | null;
  publishedBy: string | null;
  publishRequestedAt: Date | null;
  publishedAt: Date | null;
  statesAt: Record<string, string>;
}

export interface TaskRecord {
  kfId: string;
  state: string;
  progress: number | null;
  releaseId: string;
  taskServiceId: string;
  createdAt: Date;
  serviceName: string;
  statesAt: Record<string, string>;
}

export interface ReleaseNoteRecord {
  kfId: string;
  description: string;
  author: string;
  createdAt: Date;
  releaseId: string;
  studyId: string;
}

export interface TaskServiceRecord {
  kfId: string;
  name: string;
  description: string;
  lastOkStatus: number;
  author: string;
  healthStatus: string;
  url: string;
  createdAt: Date;
  enabled: boolean;
  requestTimeoutMs: number | null;
  startTimeoutMs: number | null;
  publishTimeoutMs: number | null;
  tokenSubject: string | null;
  tokenAudience: string | null;
}

export interface EventRecord {
  kfId: string;
  eventType: string;
  message: string;
  releaseId: string | null;
  taskServiceId: string | null;
  taskId: string | null;
  createdAt: Date;
}

/** A release with what its JSON nests or lists. */
export interface ReleaseWithRelations {
  release: ReleaseRecord;
  studies: string[];
  tasks: TaskRecord[];
  notes: ReleaseNoteRecord[];
}

export function releaseJson(r: ReleaseWithRelations, urls: Urls) {
  const rel = r.release;
  return {
    kf_id: rel.kfId,
    name: rel.name,
    description: rel.description,
    notes: r.notes.map((n) => releaseNoteJson(n, urls)),
    state: rel.state,
    studies: r.studies,
    tasks: r.tasks.map((t) => taskJson(t, urls)),
    version: rel.version,
    created_at: iso(rel.createdAt),
    tags: rel.tags,
    author: rel.author,
    is_major: rel.isMajor,
    halt: haltJson(rel, urls),
    published_by: rel.publishedBy,
    publish_requested_at: iso(rel.publishRequestedAt),
    published_at: iso(rel.publishedAt),
    states_at: rel.statesAt,
  };
}

/** Why a halted release halted (docs/lifecycle.md, "Why a release halted"); null while it did not. */
export function haltJson(rel: ReleaseRecord, urls: Urls) {
  if (!rel.haltReason) return null;
  return {
    reason: rel.haltReason === 'fail' ? ('failed' as const) : ('canceled' as const),
    task: urls.task(rel.haltTaskId),
    task_service: urls.taskService(rel.haltServiceId),
    service_name: rel.haltServiceName,
    message: rel.haltMessage ?? '',
    canceled_by: rel.haltedBy,
    at: iso(rel.haltedAt ?? rel.stateChangedAt),
  };
}

export function taskJson(t: TaskRecord, urls: Urls) {
  return {
    kf_id: t.kfId,
    state: t.state,
    progress: t.progress === null ? null : Math.round(t.progress * 100) / 100,
    release: urls.release(t.releaseId),
    task_service: urls.taskService(t.taskServiceId),
    created_at: iso(t.createdAt),
    service_name: t.serviceName,
    states_at: t.statesAt,
  };
}

export function releaseNoteJson(n: ReleaseNoteRecord, urls: Urls) {
  return {
    kf_id: n.kfId,
    description: n.description,
    author: n.author,
    created_at: iso(n.createdAt),
    release: urls.release(n.releaseId),
    study: urls.study(n.studyId),
  };
}

export function taskServiceJson(s: TaskServiceRecord) {
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

export function eventJson(e: EventRecord, urls: Urls) {
  return {
    kf_id: e.kfId,
    event_type: e.eventType,
    message: e.message,
    release: urls.release(e.releaseId),
    task_service: urls.taskService(e.taskServiceId),
    task: urls.task(e.taskId),
    created_at: iso(e.createdAt),
  };
}
