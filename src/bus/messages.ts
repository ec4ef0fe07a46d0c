import type { Action } from '../lifecycle/states';

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
        idempotencyKey?: string;
      };
    }
  | { type: 'release.cancel'; id: string; releaseId: string; reason?: string }
  | { type: 'release.publish'; id: string; releaseId: string }
  | { type: 'release.timeout'; id: string; releaseId: string; what: string }
  | {
      type: 'task.report';
      id: string;
      releaseId: string;
      taskId: string;
      state?: string;
      progress?: unknown;
    }
  | { type: 'task_service.down'; id: string; releaseId: string; serviceId: string; reason: string }
  /** the answer to a call never came (the command was lost, e.g. NATS lost its store) */
  | { type: 'task.no_answer'; id: string; releaseId: string; taskId: string; action: Action; reason: string };

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
}
export interface HealthCommand {
  id: string;
  kind: 'health';
  serviceId: string;
  url: string;
}
export type Command = TaskCommand | HealthCommand;

export interface TaskResult {
  id: string;
  kind: 'task';
  commandId: string;
  action: Action;
  taskId: string;
  releaseId: string;
  ok: boolean;
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
  status?: number;
  error?: string;
  latencyMs: number;
}
export type Result = TaskResult | HealthResult;

/** What the coordinator answers to an intent that carried a reply subject. */
export interface IntentReply {
  status: number;
  body: unknown;
}

export const REPLY_HEADER = 'Rc-Reply-To';
