import type { Action } from '../../domain/lifecycle/states';

/** Requests from the gateway (or the scheduler) for the coordinator to change state. */
export type Intent =
  | {
      type: 'release.create';
      id: string;
      release: {
        kfId: string;
        name: string;
        description: string;
        studies: string[];
        tags: string[];
        author: string;
        isMajor: boolean;
      };
    }
  /** `actor`: who asked (the caller's username), recorded as why the release halted */
  | { type: 'release.cancel'; id: string; releaseId: string; reason?: string; actor?: string }
  | { type: 'release.publish'; id: string; releaseId: string; actor?: string }
  /** a change of what decides the release's version (is_major), until publishing begins */
  | { type: 'release.amend'; id: string; releaseId: string; isMajor: boolean; actor?: string }
  | { type: 'release.timeout'; id: string; releaseId: string; what: string; taskId?: string }
  | {
      type: 'task.report';
      id: string;
      releaseId: string;
      taskId: string;
      state?: string;
      progress?: unknown;
    }
  /** a callback without credentials: nothing is applied, the task is polled now (at most once a second) */
  | { type: 'task.poll_hint'; id: string; releaseId: string; taskId: string }
  | { type: 'task_service.down'; id: string; releaseId: string; serviceId: string; reason: string }
  /**
   * the answer to a call can no longer come (the command or its result was lost, e.g. NATS lost its
   * store or was purged); `neverSent`: a start/publish proven never sent (see SentMarks)
   */
  | {
      type: 'task.no_answer';
      id: string;
      releaseId: string;
      taskId: string;
      action: Action;
      reason: string;
      neverSent?: boolean;
    };

/**
 * Task-service callbacks the gateway received within one tick, in one message: each intent keeps
 * its own id (applied exactly once) and its own reply subject.
 */
export interface IntentBatch {
  id: string;
  kind: 'batch';
  intents: Array<{ intent: Intent; replyTo?: string }>;
}

/** One HTTP call for a worker to make. */
export interface TaskCommand {
  id: string;
  kind: 'task';
  action: Action;
  taskId: string;
  releaseId: string;
  serviceId: string;
  url: string;
  studies: string[];
  /** deadline of the call (per action, possibly overridden per service) */
  timeoutMs?: number;
  /** audience of the token sent with the call (default: the service URL) */
  audience?: string | null;
}
export interface HealthCommand {
  id: string;
  kind: 'health';
  serviceId: string;
  url: string;
  timeoutMs?: number;
  audience?: string | null;
}
/**
 * One message carrying many task commands (a fan-out of one release, or a round of polls): the
 * worker makes the calls concurrently and acks the chunk once every result is published.
 */
export interface CommandChunk {
  id: string;
  kind: 'chunk';
  commands: TaskCommand[];
}
export type Command = TaskCommand | HealthCommand;
/** what travels on the command stream */
export type CommandMessage = Command | CommandChunk;

/** most task commands in one chunk (a worker runs them concurrently, within its own limit) */
export const COMMAND_CHUNK = 64;

export interface TaskResult {
  id: string;
  kind: 'task';
  commandId: string;
  action: Action;
  taskId: string;
  releaseId: string;
  ok: boolean;
  /**
   * How a call without a usable answer ended: `refused` (an HTTP answer other than 200, or a URL the
   * address policy refuses), `unknown` (no answer: timeout, reset, refused connection, aborted; and
   * for get_status also 502/503/504), `not_sent` (it never went out: the release halted before,
   * or no token could be had for it).
   */
  outcome?: 'refused' | 'unknown' | 'not_sent';
  status?: number;
  state?: unknown;
  progress?: unknown;
  error?: string;
  /** failed attempts before the final outcome (cancel and poll retries) */
  retryErrors?: string[];
  latencyMs: number;
}
export interface HealthResult {
  id: string;
  kind: 'health';
  serviceId: string;
  ok: boolean;
  /** nothing was asked (no token could be had for the call): neither a success nor a failure of the service */
  notChecked?: boolean;
  status?: number;
  error?: string;
  latencyMs: number;
}
export type Result = TaskResult | HealthResult;
/** Many task results in one message; each keeps its own id, so each is applied exactly once. */
export interface ResultBatch {
  id: string;
  kind: 'batch';
  results: TaskResult[];
}

/** What the coordinator answers to an intent that carried a reply subject. */
export interface IntentReply {
  status: number;
  body: unknown;
}

export const REPLY_HEADER = 'Rc-Reply-To';

/** Intents the gateway stores in Postgres before sending (the intents table): what callers ask of releases. */
export type StoredIntent = Extract<
  Intent,
  { type: 'release.create' | 'release.cancel' | 'release.publish' | 'release.amend' }
>;

export function isStoredIntent(i: Intent): i is StoredIntent {
  return (
    i.type === 'release.create' ||
    i.type === 'release.cancel' ||
    i.type === 'release.publish' ||
    i.type === 'release.amend'
  );
}
