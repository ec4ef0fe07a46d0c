import { z } from 'zod';

/** The actions of POST /tasks. */
export type MockAction = 'initialize' | 'start' | 'get_status' | 'publish' | 'cancel';
/** What a behaviour rule can target: a task action, or GET /status. */
export type BehaviourTarget = MockAction | 'status';

export const MOCK_ACTIONS: readonly MockAction[] = ['initialize', 'start', 'get_status', 'publish', 'cancel'];

/** Task states at the service (canonical names; see `stateAliases` to answer others). */
export type TaskState = 'pending' | 'running' | 'staged' | 'publishing' | 'published' | 'canceled' | 'failed';
export const TASK_STATES: readonly TaskState[] = [
  'pending',
  'running',
  'staged',
  'publishing',
  'published',
  'canceled',
  'failed',
];

/** Fixed milliseconds, or a random value in [min, max]. */
export type Latency = number | [number, number];
/** How `progress` is written in replies: 42, 42.37, "42%", null, or left out. */
export type ProgressForm = 'int' | 'float' | 'string' | 'null' | 'missing';
/** GET /status: up (200), down (statusDownCode), flap (alternate, or random with flapProbability). */
export type StatusMode = 'up' | 'down' | 'flap';
/** Body of a 200 /status: `flat` {name,message,version}; `nested` {message:{name,version}}; `bare` {}; `text` plain "OK". */
export type StatusShape = 'flat' | 'nested' | 'bare' | 'text';
/** Callbacks to the coordinator: never (poll only), before the start/publish reply, or after it (timer). */
export type CallbackMode = 'never' | 'before' | 'after';
/** Credentials of callbacks: the bearer token, or none at all (as one real service sends them). */
export type CallbackAuth = 'bearer' | 'none';

export interface Behaviour {
  /** Delay before answering (every request of the service/action, /status included). */
  latencyMs: Latency;
  /** Extra delay for GET /status only ("slow status"). */
  statusLatencyMs: Latency;
  /** Answer this HTTP status with `{message}` instead of doing the action (task unchanged). 0 = normal. Not applied to /status. */
  httpStatus: number;
  /** Accept the request and never answer (until the client aborts or stop()). */
  hang: boolean;
  /** Close the connection without sending any response (before the action: the task is unchanged). */
  drop: boolean;
  /** POST /tasks: do the action, then close the connection instead of answering (the reply is lost). */
  dropReply: boolean;
  /** GET /status mode. */
  statusMode: StatusMode;
  /** Code answered by /status when down (or on the down half of a flap). */
  statusDownCode: number;
  /** With statusMode 'flap': probability of a down answer; 0 = strict alternation ok, down, ok, ... */
  flapProbability: number;
  /** Shape of the 200 /status body. */
  statusShape: StatusShape;
  /** Version string reported by /status. */
  version: string;
  /** Time from start to staged. */
  stageMs: number;
  /** Time from publish to published. */
  publishMs: number;
  /** The task turns `failed` this many ms after the start/publish request that carried this behaviour. null = never. */
  failAfterMs: number | null;
  /** start answers `staged` and publish answers `published` at once. */
  immediate: boolean;
  /** start/publish reply only when the work is done (after stageMs/publishMs), with the final state. */
  replyWhenDone: boolean;
  /** State names to answer instead of the canonical ones, e.g. { pending: 'initialized', canceled: 'cancelled' }. */
  stateAliases: Partial<Record<TaskState, string>>;
  /** Answer state names in upper case (applied after stateAliases). */
  upperCaseStates: boolean;
  /** How progress is written. */
  progressForm: ProgressForm;
  /** Status for an action on a task the service does not know (404 per spec; some services answer 400). */
  unknownTaskStatus: number;
  /** Callback mode for staged/published/failed. */
  callback: CallbackMode;
  /** Deadline of one callback request. */
  callbackTimeoutMs: number;
  /** Bearer token for callbacks (overrides the callbackToken option). */
  callbackToken: string | null;
  /** 'none': callbacks carry no Authorization header even when a token is configured. */
  callbackAuth: CallbackAuth;
}

export const DEFAULT_BEHAVIOUR: Readonly<Behaviour> = Object.freeze({
  latencyMs: 0,
  statusLatencyMs: 0,
  httpStatus: 0,
  hang: false,
  drop: false,
  dropReply: false,
  statusMode: 'up',
  statusDownCode: 503,
  flapProbability: 0,
  statusShape: 'flat',
  version: '1.0.0',
  stageMs: 50,
  publishMs: 50,
  failAfterMs: null,
  immediate: false,
  replyWhenDone: false,
  stateAliases: {},
  upperCaseStates: false,
  progressForm: 'int',
  unknownTaskStatus: 404,
  callback: 'never',
  callbackTimeoutMs: 2000,
  callbackToken: null,
  callbackAuth: 'bearer',
});

const ms = z.number().int().min(0);
const latency = z.union([ms, z.tuple([ms, ms]).refine(([a, b]) => a <= b, 'latency range needs min <= max')]);
const httpCode = z.number().int().min(100).max(599);

/** Zod schema for a Partial<Behaviour> (used for scenario files and the control endpoint). Unknown keys are refused. */
export const behaviourSchema = z.strictObject({
  latencyMs: latency.optional(),
  statusLatencyMs: latency.optional(),
  httpStatus: z.union([z.literal(0), httpCode]).optional(),
  hang: z.boolean().optional(),
  drop: z.boolean().optional(),
  dropReply: z.boolean().optional(),
  statusMode: z.enum(['up', 'down', 'flap']).optional(),
  statusDownCode: httpCode.optional(),
  flapProbability: z.number().min(0).max(1).optional(),
  statusShape: z.enum(['flat', 'nested', 'bare', 'text']).optional(),
  version: z.string().optional(),
  stageMs: ms.optional(),
  publishMs: ms.optional(),
  failAfterMs: ms.nullable().optional(),
  immediate: z.boolean().optional(),
  replyWhenDone: z.boolean().optional(),
  stateAliases: z
    .partialRecord(z.enum(TASK_STATES as [TaskState, ...TaskState[]]), z.string().min(1))
    .optional(),
  upperCaseStates: z.boolean().optional(),
  progressForm: z.enum(['int', 'float', 'string', 'null', 'missing']).optional(),
  unknownTaskStatus: httpCode.optional(),
  callback: z.enum(['never', 'before', 'after']).optional(),
  callbackTimeoutMs: ms.optional(),
  callbackToken: z.string().nullable().optional(),
  callbackAuth: z.enum(['bearer', 'none']).optional(),
});

export const targetSchema = z.enum(['initialize', 'start', 'get_status', 'publish', 'cancel', 'status']);

/** One behaviour override: for every service (service omitted) and/or one action (action omitted = all). */
export interface BehaviourRule {
  service?: string;
  action?: BehaviourTarget;
  behaviour: Partial<Behaviour>;
  /** Applies to the next `times` matching requests only, then expires. */
  times?: number;
}

function assignDefined(target: Partial<Behaviour>, source: Partial<Behaviour>): void {
  for (const key of Object.keys(source) as (keyof Behaviour)[]) {
    const value = source[key];
    if (value !== undefined) (target as Record<string, unknown>)[key] = value;
  }
}

function matches(rule: BehaviourRule, service: string, action: BehaviourTarget): boolean {
  return (
    (rule.service === undefined || rule.service === service) &&
    (rule.action === undefined || rule.action === action)
  );
}

/**
 * Behaviour resolution. Effective behaviour of (service, action) = defaults, then every matching
 * static rule (options/scenario) in order, then every matching runtime rule (setBehaviour) in call
 * order, then counted rules (`times`). Results are cached until a rule changes.
 */
export class BehaviourBook {
  private readonly runtime: BehaviourRule[] = [];
  private counted: BehaviourRule[] = [];
  private readonly cache = new Map<string, Behaviour>();

  constructor(
    private readonly base: Behaviour,
    private readonly staticRules: BehaviourRule[],
  ) {}

  /** Adds a runtime rule; fields it sets are dropped from earlier rules with the same target. */
  set(behaviour: Partial<Behaviour>, service?: string, action?: BehaviourTarget, times?: number): void {
    const clean: Partial<Behaviour> = {};
    assignDefined(clean, behaviour);
    if (times !== undefined) {
      if (times > 0) this.counted.push({ service, action, behaviour: clean, times });
      return;
    }
    for (let i = this.runtime.length - 1; i >= 0; i--) {
      const rule = this.runtime[i]!;
      if (rule.service !== service || rule.action !== action) continue;
      for (const key of Object.keys(clean)) delete (rule.behaviour as Record<string, unknown>)[key];
      if (Object.keys(rule.behaviour).length === 0) this.runtime.splice(i, 1);
    }
    this.runtime.push({ service, action, behaviour: clean });
    this.cache.clear();
  }

  reset(): void {
    this.runtime.length = 0;
    this.counted = [];
    this.cache.clear();
  }

  /** Effective behaviour for one request; consumes one use of matching counted rules. */
  resolve(service: string, action: BehaviourTarget): Behaviour {
    const key = `${service}\u0000${action}`;
    let b = this.cache.get(key);
    if (b === undefined) {
      const merged: Partial<Behaviour> = { ...this.base };
      for (const rule of this.staticRules)
        if (matches(rule, service, action)) assignDefined(merged, rule.behaviour);
      for (const rule of this.runtime)
        if (matches(rule, service, action)) assignDefined(merged, rule.behaviour);
      b = merged as Behaviour;
      this.cache.set(key, b);
    }
    if (this.counted.length === 0) return b;
    let out: Behaviour | undefined;
    for (const rule of this.counted) {
      if (!matches(rule, service, action) || (rule.times ?? 0) <= 0) continue;
      out ??= { ...b };
      assignDefined(out, rule.behaviour);
      rule.times = (rule.times ?? 0) - 1;
    }
    if (out) this.counted = this.counted.filter((r) => (r.times ?? 0) > 0);
    return out ?? b;
  }

  /** Effective behaviour without consuming counted rules (for inspection). */
  peek(service: string, action: BehaviourTarget): Behaviour {
    const saved = this.counted;
    this.counted = [];
    try {
      return { ...this.resolve(service, action) };
    } finally {
      this.counted = saved;
    }
  }
}

/** A random or fixed latency in ms. */
export function pickLatency(l: Latency): number {
  if (typeof l === 'number') return l;
  const [min, max] = l;
  return min + Math.floor(Math.random() * (max - min + 1));
}
